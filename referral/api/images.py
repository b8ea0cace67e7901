from __future__ import annotations

import json
import uuid
from typing import Any, BinaryIO, cast

from flask import current_app, redirect, request
from flask.views import MethodView

from referral.api.downloads import attachment, binary_content
from referral.api.parsing import Blueprint
from referral.http import idempotency as idempotent
from referral.http.context import current_actor, db_session, object_store, settings
from referral.http.uploads import HashingSpool
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
)
from referral.schemas.referral_documents import image_document
from referral.services import direct_uploads, image_edits, intake

blp = Blueprint("images", __name__, description="Capture-only radiographs and photos")

def _replay(result: Any) -> Any:
    return idempotent.answer(result, ImageSchema().dump,
                             lambda image_id: intake.read_image(db_session(), current_actor(), image_id))


@blp.route("/referrals/<uuid:referral_id>/images")
class ReferralImages(MethodView):
    @blp.arguments(ImageUploadFormSchema, location="form")
    @blp.arguments(ImageFileSchema, location="files")
    @blp.response(201, ImageSchema)
    @blp.doc(parameters=[idempotent.DOC_PARAMETER])
    def post(self, form: dict[str, Any], files: dict[str, Any], referral_id: uuid.UUID) -> Any:
        """Upload one image, tagged capture only (staff, dentist)"""
        actor = current_actor()
        file_storage = files["file"]
        # UploadRequest spools every file part into a HashingSpool
        spool = cast(HashingSpool, file_storage.stream)
        upload = intake.Upload(stream=cast(BinaryIO, spool), size=spool.size, sha256=spool.sha256,
                               filename=file_storage.filename)
        form_items = sorted((key, value) for key, values in request.form.lists() for value in values)
        retry = idempotent.idempotent_request(actor, f"/referrals/{referral_id}/images", repr(form_items),
                                              spool.sha256, file_storage.filename or "")
        return _replay(intake.intake_image(db_session(), object_store(), actor, referral_id, form, upload,
                                           idempotent=retry))

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
