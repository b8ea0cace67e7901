from __future__ import annotations

import uuid
from typing import Any, BinaryIO, cast

from flask import current_app
from flask.views import MethodView

from referral.api.downloads import attachment, binary_content
from referral.api.parsing import Blueprint
from referral.http.context import current_actor, db_session, object_store, settings, workflow_settings
from referral.http.json import WRITTEN_APART, MarkupSafeJSONProvider
from referral.http.uploads import HashingSpool
from referral.schemas.images import ImageFileSchema
from referral.schemas.referral_documents import referral_detail
from referral.schemas.referrals import (
    CancelSchema,
    ConsentFormFieldsSchema,
    ConsentSchema,
    DeclineSchema,
    ReferralCreateSchema,
    ReferralDetailSchema,
    ReferralListQuerySchema,
    ReferralPageSchema,
    ReferralStateSchema,
    RetakeRequestSchema,
)
from referral.services import consent, referrals, workflow
from referral.services.intake import Upload

blp = Blueprint("referrals", __name__, description="Referrals from a capturing office to a reader")


@blp.route("/referrals")
class Referrals(MethodView):
    @blp.arguments(ReferralCreateSchema)
    @blp.response(201, ReferralDetailSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Open a referral as a draft (staff, dentist)"""
        return referrals.create_referral(db_session(), current_actor(), data, workflow_settings())

    @blp.arguments(ReferralListQuerySchema, location="query")
    @blp.response(200, ReferralPageSchema)
    def get(self, query: dict[str, Any]) -> Any:
        """A reader's inbox or a practice's referrals, by response deadline then id, a page at a time"""
        items, next_cursor = referrals.list_referrals(
            db_session(), current_actor(), view=query.get("view"), statuses=query.get("status"),
            urgency=query.get("urgency"), overdue=query.get("overdue"), cursor=query.get("cursor"),
            limit=query.get("limit"), q=query.get("q"),
        )
        return {"items": items, "next_cursor": next_cursor}


@blp.route("/referrals/<uuid:referral_id>")
class ReferralById(MethodView):
    @blp.response(200, ReferralDetailSchema)
    def get(self, referral_id: uuid.UUID) -> Any:
        """One referral with its patient, images, events and report state (audited)"""
        # Built by hand (referral_documents), identical to the schema's dump: the schema documents the answer.
        referral = referrals.read_case(db_session(), current_actor(), referral_id)
        provider = current_app.json
        images_json = getattr(referral, "images_json", None)
        if images_json is not None and isinstance(provider, MarkupSafeJSONProvider) and provider.writes_compact():
            # The one-statement read (case_reads) writes the images' part of the answer, mostly from earlier reads.
            keep = settings().case_image_answers
            return provider.response_with_text(referral_detail(referral, images=WRITTEN_APART),
                                               lambda dumps: images_json(dumps, keep=keep))
        return provider.response(referral_detail(referral))


@blp.route("/referrals/<uuid:referral_id>/submit", methods=["POST"])
@blp.response(200, ReferralDetailSchema)
def submit(referral_id: uuid.UUID) -> Any:
    """Send the case: checks images, views and consent, then routes it to a reader (referring office)"""
    return workflow.submit(db_session(), current_actor(), referral_id, workflow_settings())


@blp.route("/referrals/<uuid:referral_id>/accept", methods=["POST"])
@blp.response(200, ReferralDetailSchema)
def accept(referral_id: uuid.UUID) -> Any:
    """Take the case (the assigned reader)"""
    return workflow.accept(db_session(), current_actor(), referral_id)


@blp.route("/referrals/<uuid:referral_id>/decline", methods=["POST"])
@blp.arguments(DeclineSchema)
@blp.response(200, ReferralStateSchema)
def decline(data: dict[str, Any], referral_id: uuid.UUID) -> Any:
    """Decline with a reason; the case goes to the next eligible reader (the assigned reader)"""
    return workflow.decline(db_session(), current_actor(), referral_id, data["reason"])


@blp.route("/referrals/<uuid:referral_id>/retake-requests", methods=["POST"])
@blp.arguments(RetakeRequestSchema)
@blp.response(201, ReferralDetailSchema)
def request_retake(data: dict[str, Any], referral_id: uuid.UUID) -> Any:
    """Ask the capturing office to retake images (the assigned reader)"""
    return workflow.request_retake(db_session(), current_actor(), referral_id, data["image_ids"], data["reason"])


@blp.route("/referrals/<uuid:referral_id>/cancel", methods=["POST"])
@blp.arguments(CancelSchema)
@blp.response(200, ReferralDetailSchema)
def cancel(data: dict[str, Any], referral_id: uuid.UUID) -> Any:
    """Withdraw the case before a report is signed (referring office)"""
    return workflow.cancel(db_session(), current_actor(), referral_id, data.get("reason"))


@blp.route("/referrals/<uuid:referral_id>/consent", methods=["PUT"])
@blp.arguments(ConsentSchema)
@blp.response(200, ReferralDetailSchema)
def record_consent(data: dict[str, Any], referral_id: uuid.UUID) -> Any:
    """Record the patient's teledentistry consent (referring office)"""
    return workflow.record_consent(db_session(), current_actor(), referral_id, data)


_FORM_EXTENSIONS = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png", "image/tiff": "tif"}


@blp.route("/referrals/<uuid:referral_id>/consent/form")
class ConsentForm(MethodView):
    @blp.arguments(ConsentFormFieldsSchema, location="form")
    @blp.arguments(ImageFileSchema, location="files")
    @blp.response(200, ReferralDetailSchema)
    def put(self, _fields: dict[str, Any], files: dict[str, Any], referral_id: uuid.UUID) -> Any:
        """Keep the scanned, signed consent form (PDF, JPEG, PNG or TIFF) with the referral (referring office)"""
        file_storage = files["file"]
        spool = cast(HashingSpool, file_storage.stream)
        upload = Upload(stream=cast(BinaryIO, spool), size=spool.size, sha256=spool.sha256,
                        filename=file_storage.filename)
        return consent.store_form(db_session(), object_store(), current_actor(), referral_id, upload)

    @blp.response(200, description="the consent form as uploaded")
    @blp.doc(responses={"200": {"description": "the consent form as uploaded",
                                "content": binary_content(*_FORM_EXTENSIONS, "application/octet-stream")}})
    def get(self, referral_id: uuid.UUID) -> Any:
        """The scanned consent form (audited)"""
        referral, body = consent.open_form(db_session(), object_store(), current_actor(), referral_id)
        content_type = referral.consent_form_content_type or "application/octet-stream"
        extension = _FORM_EXTENSIONS.get(content_type, "bin")
        return attachment(body, content_type=content_type, filename=f"consent-{referral.id}.{extension}")
