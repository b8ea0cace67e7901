from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable
from typing import Any, BinaryIO, cast

from flask import current_app, redirect, request
from flask.views import MethodView
from marshmallow import RAISE

from referral.api.downloads import attachment, binary_content
from referral.api.parsing import Blueprint
from referral.errors import ValidationFailed
from referral.http import idempotency as idempotent
from referral.http.context import current_actor, db_session, object_store, settings
from referral.http.uploads import HashingSpool, UploadRequest
from referral.imaging.sniff import CONTENT_TYPES
from referral.schemas.images import (
    CapturerSchema,
    ContentQuerySchema,
    DirectUploadCompleteSchema,
    DirectUploadSchema,
    DirectUploadStartSchema,
    ImageFileSchema,
    ImageListSchema,
    ImagePatchSchema,
    ImageSchema,
    ImageUploadFormSchema,
    ImageUploadQuerySchema,
)
from referral.schemas.referral_documents import image_document
from referral.services import direct_uploads, image_edits, intake

blp = Blueprint("images", __name__, description="Capture-only radiographs and photos")

def _replay(result: Any) -> Any:
    return idempotent.answer(result, ImageSchema().dump,
                             lambda image_id: intake.read_image(db_session(), current_actor(), image_id))


# A raw-body upload: the file's bytes are the body, typed by one of the types intake takes (the bytes still decide
# what the file is), and the form's fields travel in the query.
RAW_CONTENT_TYPES = tuple(CONTENT_TYPES.values())
# Query parameters of a raw-body upload that say something about the body rather than the image.
_ABOUT_THE_BODY = ("filename", "sha256")
_RAW_BODY_DOC = {
    "description": "`multipart/form-data` with the fields and the file part `file`; or the file's bytes as the "
                   "whole body, typed " + ", ".join(f"`{t}`" for t in RAW_CONTENT_TYPES) + ", with the same "
                   "fields as query parameters (plus optional `filename` and `sha256`). Either way the bytes "
                   "decide the file's type.",
    "content": {content_type: {"schema": {"type": "string", "format": "binary"}} for content_type in RAW_CONTENT_TYPES},
}
_RAW_QUERY_DOC = [
    {"in": "query", "name": name, "required": False, "schema": {"type": "string"},
     "description": "raw-body uploads only: " + (
         field.metadata.get("description") or f"the form field {name}") + (" (required)" if field.required else "")}
    for name, field in ImageUploadQuerySchema().fields.items()
]


def _intake(actor: Any, referral_id: uuid.UUID, fields: dict[str, Any], spool: HashingSpool, filename: str | None,
            field_items: list[tuple[str, str]]) -> Any:
    """The one intake path of both kinds of body. The idempotency fingerprint is the fields as sent, the
    bytes' SHA-256 and the filename, so a multipart request and a raw-body request of the same image with the
    same fields are the same request."""
    upload = intake.Upload(stream=cast(BinaryIO, spool), size=spool.size, sha256=spool.sha256, filename=filename)
    retry = idempotent.idempotent_request(actor, f"/referrals/{referral_id}/images", repr(sorted(field_items)),
                                          spool.sha256, filename or "")
    return _replay(intake.intake_image(db_session(), object_store(), actor, referral_id, fields, upload,
                                       idempotent=retry))


# Unknown query parameters are refused, as unknown form fields are (webargs would drop them from a query).
@blp.arguments(ImageUploadQuerySchema, location="query", unknown=RAISE)
def _raw_body_upload(query: dict[str, Any], referral_id: uuid.UUID) -> Any:
    actor = current_actor()
    fields = {key: value for key, value in query.items() if key not in _ABOUT_THE_BODY}
    spool = cast(UploadRequest, request).spool_body()
    if spool.size == 0:
        raise ValidationFailed("The request body is empty: send the image file's bytes as the body",
                               {"file": ["The body holds no bytes."]})
    declared = query.get("sha256")
    if declared is not None and declared.lower() != spool.sha256:
        raise ValidationFailed("The body's SHA-256 is not the one given in sha256: the file changed or was cut "
                               "short on the way; nothing was stored",
                               {"sha256": [f"The body received has SHA-256 {spool.sha256}."]})
    field_items = [(key, value) for key, values in request.args.lists() if key not in _ABOUT_THE_BODY
                   for value in values]
    return _intake(actor, referral_id, fields, spool, query.get("filename"), field_items)


def _or_raw_body(multipart: Callable[..., Any]) -> Callable[..., Any]:
    """Send a raw-body upload to its own parsing before the multipart form is parsed; any other body is read as
    the form (without one, its fields and file are missing: 422, as it always was)."""
    @functools.wraps(multipart)
    def post(self: MethodView, referral_id: uuid.UUID) -> Any:
        if request.mimetype in RAW_CONTENT_TYPES:
            return _raw_body_upload(referral_id=referral_id)
        return multipart(self, referral_id=referral_id)
    return post


@blp.route("/referrals/<uuid:referral_id>/images")
class ReferralImages(MethodView):
    @blp.response(201, ImageSchema)
    @blp.alt_response(415, description="bytes that are not an image type intake takes")
    @blp.doc(parameters=[idempotent.DOC_PARAMETER, *_RAW_QUERY_DOC], requestBody=_RAW_BODY_DOC)
    @_or_raw_body
    @blp.arguments(ImageUploadFormSchema, location="form")
    @blp.arguments(ImageFileSchema, location="files")
    def post(self, form: dict[str, Any], files: dict[str, Any], referral_id: uuid.UUID) -> Any:
        """Upload one image, tagged capture only, as a multipart form or as a raw body (staff, dentist)"""
        file_storage = files["file"]
        # UploadRequest spools every file part into a HashingSpool
        spool = cast(HashingSpool, file_storage.stream)
        form_items = [(key, value) for key, values in request.form.lists() for value in values]
        return _intake(current_actor(), referral_id, form, spool, file_storage.filename, form_items)

    @blp.response(200, ImageListSchema)
    def get(self, referral_id: uuid.UUID) -> Any:
        """The referral's images"""
        return {"items": intake.list_images(db_session(), current_actor(), referral_id)}


@blp.route("/referrals/<uuid:referral_id>/images/uploads")
class ReferralImageUploads(MethodView):
    @blp.arguments(DirectUploadStartSchema, required=False)
    @blp.response(201, DirectUploadSchema)
    @blp.alt_response(409, description="the referral takes no images now, or the server stores images locally "
                                       "and cannot hand out upload forms (send the file to /images instead)")
    def post(self, body: dict[str, Any], referral_id: uuid.UUID) -> Any:
        """Start a direct-to-storage upload of one large image: a form to POST the file to (staff, dentist)"""
        sha256 = body.get("sha256")
        return direct_uploads.start_upload(db_session(), object_store(), current_actor(), referral_id,
                                           max_bytes=settings().max_upload_bytes,
                                           sha256=sha256.lower() if sha256 is not None else None)


@blp.route("/referrals/<uuid:referral_id>/images/uploads/<uuid:upload_id>/complete")
class ReferralImageUploadCompletion(MethodView):
    @blp.arguments(DirectUploadCompleteSchema)
    @blp.response(201, ImageSchema)
    @blp.alt_response(409, description="nothing uploaded yet, already completed, refused earlier or expired")
    @blp.doc(parameters=[idempotent.DOC_PARAMETER])
    def post(self, body: dict[str, Any], referral_id: uuid.UUID, upload_id: uuid.UUID) -> Any:
        """Check the uploaded file like a direct upload and file it as an image (staff, dentist)"""
        actor = current_actor()
        fields = dict(body)
        declared = direct_uploads.DeclaredFile(size=fields.pop("size"), sha256=fields.pop("sha256").lower(),
                                               filename=fields.pop("filename", None))
        retry = idempotent.idempotent_request(actor, f"/referrals/{referral_id}/images/uploads/{upload_id}/complete",
                                              json.dumps(request.get_json(), sort_keys=True))
        return _replay(direct_uploads.complete_upload(
            db_session(), object_store(), actor, referral_id, upload_id, fields, declared,
            spool_dir=settings().upload_tmp_dir, idempotent=retry))


@blp.route("/images/<uuid:image_id>")
class ImageById(MethodView):
    @blp.response(200, ImageSchema)
    def get(self, image_id: uuid.UUID) -> Any:
        """One image's metadata"""
        # Built by hand (referral_documents), identical to the schema's dump: the schema documents the answer.
        return current_app.json.response(image_document(intake.read_image(db_session(), current_actor(), image_id)))

    @blp.arguments(ImagePatchSchema)
    @blp.response(200, ImageSchema)
    @blp.alt_response(409, description="the case was sent with this image: it can no longer be changed")
    def patch(self, changes: dict[str, Any], image_id: uuid.UUID) -> Any:
        """Fix an image's kind, teeth, area, reason, capture time or provider before the case is sent (staff,
        dentist; audited)"""
        return image_edits.fix_image(db_session(), current_actor(), image_id, changes)

    @blp.response(204)
    @blp.alt_response(409, description="the case was sent with this image, or another image is its retake")
    def delete(self, image_id: uuid.UUID) -> Any:
        """Remove an image and its stored bytes before the case is sent (staff, dentist; audited)"""
        image_edits.remove_image(db_session(), object_store(), current_actor(), image_id)
        return None


@blp.route("/images/<uuid:image_id>/capturer")
class ImageCapturer(MethodView):
    @blp.arguments(CapturerSchema)
    @blp.response(200, ImageSchema)
    def post(self, data: dict[str, Any], image_id: uuid.UUID) -> Any:
        """Confirm who captured an image a DICOM device sent without naming a known provider (staff, dentist)"""
        return intake.confirm_capturer(db_session(), current_actor(), image_id, data["captured_by_provider_id"])


@blp.route("/images/<uuid:image_id>/content")
class ImageContent(MethodView):
    @blp.arguments(ContentQuerySchema, location="query")
    @blp.response(200, description="the exact bytes uploaded")
    @blp.doc(responses={"200": {"description": "the exact bytes uploaded, as the type they were sniffed as",
                                "content": binary_content(*CONTENT_TYPES.values())}})
    @blp.alt_response(303, description="redirect to a short-lived URL for the bytes (when redirect=true)")
    @blp.alt_response(503, description="the stored file is missing or no longer matches its SHA-256 (see the "
                                       "image's integrity_problem), or the store is unreachable")
    def get(self, query: dict[str, Any], image_id: uuid.UUID) -> Any:
        """The exact bytes uploaded, as an attachment (audited)"""
        session, store, actor = db_session(), object_store(), current_actor()
        if query.get("redirect"):
            image, url = intake.image_url(session, store, actor, image_id)
            if url is not None:
                response = redirect(url, code=303)
                response.headers["Cache-Control"] = "no-store"
                return response
        image, body = intake.open_image(session, store, actor, image_id)
        response = attachment(body, content_type=image.content_type, filename=intake.download_name(image),
                              size=image.size)
        response.headers["ETag"] = f'"{image.sha256}"'
        response.headers["X-Content-SHA256"] = image.sha256
        return response


def _inline_jpeg(body: BinaryIO, filename: str) -> Any:
    # Inline, unlike /content: these are JPEGs this server encoded itself from decoded pixels, with
    # no metadata, so a browser may show them in place (an <img> in the viewer). The type stays
    # fixed and nosniff stays on, so the bytes can only ever be treated as a JPEG.
    response = attachment(body, content_type="image/jpeg", filename=filename)
    response.headers["Content-Disposition"] = f'inline; filename="{filename}"'
    return response


@blp.route("/images/<uuid:image_id>/preview")
class ImagePreview(MethodView):
    @blp.response(200, {"type": "string", "format": "binary"}, content_type="image/jpeg",
                  description="a JPEG at most 1600 px on its longer side")
    def get(self, image_id: uuid.UUID) -> Any:
        """A JPEG preview without metadata, shown inline (audited)"""
        _, body = intake.open_preview(db_session(), object_store(), current_actor(), image_id)
        return _inline_jpeg(body, f"image-{image_id}-preview.jpg")


@blp.route("/images/<uuid:image_id>/thumbnail")
class ImageThumbnail(MethodView):
    @blp.response(200, {"type": "string", "format": "binary"}, content_type="image/jpeg",
                  description="a JPEG at most 256 px on its longer side")
    def get(self, image_id: uuid.UUID) -> Any:
        """A JPEG thumbnail without metadata, shown inline (audited)"""
        _, body = intake.open_thumbnail(db_session(), object_store(), current_actor(), image_id)
        return _inline_jpeg(body, f"image-{image_id}-thumbnail.jpg")
