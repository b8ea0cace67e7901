from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any, BinaryIO, cast

from flask import current_app, jsonify, redirect, request
from flask.views import MethodView

from referral.api.context import current_actor, db_session, object_store
from referral.api.downloads import attachment, binary_content
from referral.api.parsing import Blueprint
from referral.imaging.sniff import CONTENT_TYPES
from referral.schemas.images import (
    ContentQuerySchema,
    DirectUploadCompleteSchema,
    DirectUploadSchema,
    ImageFileSchema,
    ImageListSchema,
    ImageSchema,
    ImageUploadFormSchema,
)
from referral.services import access, direct_uploads, idempotency, intake
from referral.services.idempotency import Replay
from referral.uploads import HashingSpool

blp = Blueprint("images", __name__, description="Capture-only radiographs and photos")

def _upload_fingerprint(referral_id: uuid.UUID, spool: HashingSpool, filename: str | None) -> str:
    form_items = sorted((key, value) for key, values in request.form.lists() for value in values)
    return idempotency.fingerprint(
        "POST", f"/referrals/{referral_id}/images", repr(form_items), spool.sha256, filename or ""
    )


@blp.route("/referrals/<uuid:referral_id>/images")
class ReferralImages(MethodView):
    @blp.arguments(ImageUploadFormSchema, location="form")
    @blp.arguments(ImageFileSchema, location="files")
    @blp.response(201, ImageSchema)
    @blp.doc(parameters=[{
        "in": "header", "name": "Idempotency-Key", "required": False, "schema": {"type": "string", "maxLength": 255},
        "description": "retries with the same key and body return the first response and store nothing new",
    }])
    def post(self, form: dict[str, Any], files: dict[str, Any], referral_id: uuid.UUID) -> Any:
        """Upload one image, tagged capture only (staff, dentist)"""
        actor = current_actor()
        session = db_session()
        file_storage = files["file"]
        # UploadRequest spools every file part into a HashingSpool
        spool = cast(HashingSpool, file_storage.stream)
        upload = intake.Upload(stream=cast(BinaryIO, spool), size=spool.size, sha256=spool.sha256,
                               filename=file_storage.filename)
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return intake.intake_image(session, object_store(), actor, referral_id, form, upload)

        _, user_id = access.membership(actor)
        # Access is checked before the key is looked at, so a key cannot reveal another office's data.
        access.get_referral(session, actor, referral_id)
        claimed = idempotency.claim(session, user_id, key,
                                    _upload_fingerprint(referral_id, spool, file_storage.filename))
        if isinstance(claimed, Replay):
            response = jsonify(claimed.body)
            response.status_code = claimed.status
            response.headers["Idempotent-Replayed"] = "true"
            return response
        try:
            return intake.intake_image(
                session, object_store(), actor, referral_id, form, upload,
                before_commit=lambda image: idempotency.complete(claimed, 201, ImageSchema().dump(image)),
            )
        except BaseException:
            idempotency.release(session, claimed)
            raise

    @blp.response(200, ImageListSchema)
    def get(self, referral_id: uuid.UUID) -> Any:
        """The referral's images"""
        return {"items": intake.list_images(db_session(), current_actor(), referral_id)}


@blp.route("/referrals/<uuid:referral_id>/images/uploads")
class ReferralImageUploads(MethodView):
    @blp.response(201, DirectUploadSchema)
    @blp.alt_response(409, description="the referral takes no images now, or the server stores images locally "
                                       "and cannot hand out upload forms (send the file to /images instead)")
    def post(self, referral_id: uuid.UUID) -> Any:
        """Start a direct-to-storage upload of one large image: a form to POST the file to (staff, dentist)"""
        return direct_uploads.start_upload(db_session(), object_store(), current_actor(), referral_id,
                                           max_bytes=current_app.config["MAX_UPLOAD_BYTES"])


@blp.route("/referrals/<uuid:referral_id>/images/uploads/<uuid:upload_id>/complete")
class ReferralImageUploadCompletion(MethodView):
    @blp.arguments(DirectUploadCompleteSchema)
    @blp.response(201, ImageSchema)
    @blp.alt_response(409, description="nothing uploaded yet, already completed, refused earlier or expired")
    @blp.doc(parameters=[{
        "in": "header", "name": "Idempotency-Key", "required": False, "schema": {"type": "string", "maxLength": 255},
        "description": "retries with the same key and body return the first response and store nothing new",
    }])
    def post(self, body: dict[str, Any], referral_id: uuid.UUID, upload_id: uuid.UUID) -> Any:
        """Check the uploaded file like a direct upload and file it as an image (staff, dentist)"""
        actor, session = current_actor(), db_session()
        fields = dict(body)
        declared = direct_uploads.DeclaredFile(size=fields.pop("size"), sha256=fields.pop("sha256").lower(),
                                               filename=fields.pop("filename", None))

        def complete(before_commit: Callable[[Any], None] | None) -> Any:
            return direct_uploads.complete_upload(
                session, object_store(), actor, referral_id, upload_id, fields, declared,
                spool_dir=current_app.config.get("UPLOAD_TMP_DIR"), before_commit=before_commit)

        key = request.headers.get("Idempotency-Key")
        if key is None:
            return complete(None)
        _, user_id = access.membership(actor)
        access.get_referral(session, actor, referral_id)
        claimed = idempotency.claim(session, user_id, key, idempotency.fingerprint(
            "POST", f"/referrals/{referral_id}/images/uploads/{upload_id}/complete",
            json.dumps(request.get_json(), sort_keys=True)))
        if isinstance(claimed, Replay):
            response = jsonify(claimed.body)
            response.status_code = claimed.status
            response.headers["Idempotent-Replayed"] = "true"
            return response
        try:
            return complete(lambda image: idempotency.complete(claimed, 201, ImageSchema().dump(image)))
        except BaseException:
            idempotency.release(session, claimed)
            raise


@blp.route("/images/<uuid:image_id>")
class ImageById(MethodView):
    @blp.response(200, ImageSchema)
    def get(self, image_id: uuid.UUID) -> Any:
        """One image's metadata"""
        return intake.read_image(db_session(), current_actor(), image_id)


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
