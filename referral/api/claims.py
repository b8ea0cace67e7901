from __future__ import annotations

import uuid
from typing import Any

from flask import Response, jsonify, request
from flask.views import MethodView

from referral.api.documents import document_response
from referral.api.parsing import Blueprint
from referral.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from referral.http.context import current_actor, db_session, object_store
from referral.schemas.claims import (
    AcknowledgementSchema,
    ClaimBatchRequestSchema,
    ClaimBatchSchema,
    ClaimListQuerySchema,
    ClaimListSchema,
    ClaimPageSchema,
    ClaimSchema,
    FeeScheduleDumpSchema,
    FeeScheduleSchema,
    NarrativeSchema,
    RemittanceSchema,
)
from referral.services import access, claims, documents, remittances

blp = Blueprint("claims", __name__,
                description="Split claim lines, fee schedules, 837D and FHIR claims, printable claim summaries")

_DOCUMENT = "the claim summary as an attachment"


@blp.route("/referrals/<uuid:referral_id>/claims")
@blp.response(200, ClaimListSchema)
def referral_claims(referral_id: uuid.UUID) -> Any:
    """The caller's own organization's claim(s) for a referral"""
    return {"claims": claims.claims_for_referral(db_session(), current_actor(), referral_id)}


@blp.route("/claims")
@blp.arguments(ClaimListQuerySchema, location="query")
@blp.response(200, ClaimPageSchema)
def list_claims(query: dict[str, Any]) -> Any:
    """The caller's organization's claims, newest first, a page at a time"""
    items, next_cursor = claims.list_claims(
        db_session(), current_actor(), statuses=query.get("status"), referral_id=query.get("referral_id"),
        cursor=query.get("cursor"), limit=query.get("limit"),
    )
    return {"items": items, "next_cursor": next_cursor}


@blp.route("/claims/<uuid:claim_id>")
class OneClaim(MethodView):
    @blp.response(200, ClaimSchema)
    def get(self, claim_id: uuid.UUID) -> Any:
        """One claim of the caller's organization, with its status and the events of its life cycle"""
        return claims.get_claim(db_session(), current_actor(), claim_id)

    @blp.arguments(NarrativeSchema)
    @blp.response(200, ClaimSchema)
    def patch(self, body: dict[str, Any], claim_id: uuid.UUID) -> Any:
        """Billing's own narrative (the 837D claim note) before the claim is sent (billing staff; audited)"""
        return claims.edit_narrative(db_session(), current_actor(), claim_id, body["narrative"])


@blp.route("/claims/<uuid:claim_id>/x12")
@blp.response(200, {"type": "string"}, content_type="application/edi-x12",
              description="an X12 837D 005010X224A2 interchange")
def claim_x12(claim_id: uuid.UUID) -> Any:
    """The claim as an 837D interchange (billing staff; audited)"""
    exported = claims.export_837d(db_session(), current_actor(), claim_id)
    response = Response(exported.text, mimetype="application/edi-x12")
    response.headers["Content-Disposition"] = f'attachment; filename="claim-{exported.claim.id}.x12"'
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.route("/claims/<uuid:claim_id>/fhir")
@blp.response(200, {"type": "object"}, content_type="application/fhir+json", description="a FHIR R4 Claim")
def claim_fhir(claim_id: uuid.UUID) -> Any:
    """The claim as a FHIR R4 Claim resource (billing staff; audited)"""
    exported = claims.export_fhir(db_session(), current_actor(), claim_id)
    response = Response(exported.text, mimetype="application/fhir+json")
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.route("/claims/<uuid:claim_id>/pdf")
@blp.response(200, description=_DOCUMENT)
@blp.doc(responses={"200": {"description": _DOCUMENT, "content": {
    "application/pdf": {"schema": {"type": "string", "format": "binary"}}}}})
def claim_pdf(claim_id: uuid.UUID) -> Any:
    """The claim as a printable summary for filing or sending with an attachment (billing staff; audited)"""
    return document_response(*documents.read_claim_document(db_session(), current_actor(), claim_id, "pdf"))


@blp.route("/claims/<uuid:claim_id>/html")
@blp.response(200, description=_DOCUMENT)
@blp.doc(responses={"200": {"description": _DOCUMENT, "content": {"text/html": {"schema": {"type": "string"}}}}})
def claim_html(claim_id: uuid.UUID) -> Any:
    """The same claim summary as an HTML page (billing staff; audited)"""
    return document_response(*documents.read_claim_document(db_session(), current_actor(), claim_id, "html"))


@blp.route("/claim-batches", methods=["POST"])
@blp.arguments(ClaimBatchRequestSchema)
@blp.response(201, ClaimBatchSchema)
def claim_batch(body: dict[str, Any]) -> Any:
    """Send many ready claims of the caller's practice for one payer as one 837D interchange (billing staff)"""
    return claims.export_batch(db_session(), current_actor(), body["claim_ids"])


@blp.route("/claim-batches/<uuid:batch_id>")
@blp.response(200, ClaimBatchSchema)
def get_claim_batch(batch_id: uuid.UUID) -> Any:
    """An 837D interchange the practice sent, with its control number and claims (billing staff; audited)"""
    return claims.get_batch(db_session(), current_actor(), batch_id)


_EDI_TYPES = ("text/plain", "application/edi-x12", "application/edi")
_EDI_BODY = {"content": {kind: {"schema": {"type": "string"}} for kind in _EDI_TYPES[:2]}}


def _edi_body() -> bytes:
    if request.mimetype not in _EDI_TYPES:
        raise UnsupportedMediaType("Send the file's text with Content-Type text/plain or application/edi-x12",
                                   {"content_type": [request.mimetype or "none"]})
    if request.content_length is not None and request.content_length > remittances.MAX_FILE_BYTES:
        raise ValidationFailed("The file is too large", {"body": ["Too large."]})
    return request.get_data(cache=False)


@blp.route("/remittances", methods=["POST"])
@blp.doc(requestBody=_EDI_BODY)
@blp.response(201, RemittanceSchema, description="posted")
@blp.alt_response(200, schema=RemittanceSchema, description="the same payment was posted before: its result")
def post_remittance() -> Any:
    """Post an 835 payment advice to the practice's claims (billing staff); the body is the file's text"""
    posted = remittances.post_remittance(db_session(), current_actor(), _edi_body())
    return remittances.remittance_summary(posted.remittance), 201 if posted.created else 200


@blp.route("/remittances/<uuid:remittance_id>")
@blp.response(200, RemittanceSchema)
def get_remittance(remittance_id: uuid.UUID) -> Any:
    """A posted 835: per claim and line what was paid and adjusted, and what was not the practice's"""
    return remittances.remittance_summary(remittances.get_remittance(db_session(), current_actor(), remittance_id))


@blp.route("/acknowledgements", methods=["POST"])
@blp.doc(requestBody=_EDI_BODY)
@blp.response(201, AcknowledgementSchema)
def post_acknowledgement() -> Any:
    """Post a 999 or 277CA: the claims it answers become accepted or rejected, with the reason (billing staff)"""
    return remittances.post_acknowledgement(db_session(), current_actor(), _edi_body())


@blp.route("/acknowledgements/<uuid:acknowledgement_id>")
@blp.response(200, AcknowledgementSchema)
def get_acknowledgement(acknowledgement_id: uuid.UUID) -> Any:
    """A posted 999 or 277CA and what it did to the practice's claims"""
    return remittances.get_acknowledgement(db_session(), current_actor(), acknowledgement_id)


@blp.route("/organizations/<uuid:organization_id>/fee-schedule")
class FeeSchedule(MethodView):
    @blp.arguments(FeeScheduleSchema)
    @blp.response(200, FeeScheduleDumpSchema)
    def put(self, fees: dict[str, Any], organization_id: uuid.UUID) -> Any:
        """Replace the organization's fees: {code: amount}; codes left out are billed at 0"""
        schedule = claims.replace_fee_schedule(db_session(), current_actor(), organization_id, fees)
        return _schedule_response(schedule)

    @blp.response(200, FeeScheduleDumpSchema)
    def get(self, organization_id: uuid.UUID) -> Any:
        """The organization's fees"""
        schedule = claims.read_fee_schedule(db_session(), current_actor(), organization_id)
        return _schedule_response(schedule)


FEE_CSV_MAX_BYTES = 100_000
_CSV = {"content": {"text/csv": {"schema": {"type": "string"}}}}


@blp.route("/organizations/<uuid:organization_id>/fee-schedule.csv")
class FeeScheduleCsv(MethodView):
    @blp.doc(responses={"200": {"description": "code,fee lines", **_CSV}})
    def get(self, organization_id: uuid.UUID) -> Any:
        """The organization's fees as CSV: a header line code,fee then one code per line"""
        text = claims.fee_schedule_csv(db_session(), current_actor(), organization_id)
        return Response(text, mimetype="text/csv", headers={
            "Content-Disposition": 'attachment; filename="fee-schedule.csv"'})

    @blp.doc(requestBody={"required": True, **_CSV})
    @blp.response(200, FeeScheduleDumpSchema)
    def put(self, organization_id: uuid.UUID) -> Any:
        """Replace the organization's fees with a CSV file (Content-Type text/csv; code,fee per line, the
        header line optional); a file with any bad line changes nothing"""
        # Another practice's id is not found whatever was sent, before the body is looked at.
        access.get_organization(db_session(), current_actor(), organization_id)
        if request.mimetype != "text/csv":
            raise UnsupportedMediaType("Send the fee schedule as text/csv")
        if (request.content_length or 0) > FEE_CSV_MAX_BYTES:
            raise PayloadTooLarge(f"A fee schedule file is at most {FEE_CSV_MAX_BYTES // 1000} KB")
        body = request.get_data(cache=False)
        if len(body) > FEE_CSV_MAX_BYTES:
            raise PayloadTooLarge(f"A fee schedule file is at most {FEE_CSV_MAX_BYTES // 1000} KB")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationFailed("The file is not UTF-8 text", {"csv": ["Save the file as CSV (UTF-8)."]}) from None
        schedule = claims.import_fee_schedule_csv(db_session(), current_actor(), organization_id, text)
        return _schedule_response(schedule)


def _schedule_response(schedule: dict[str, Any]) -> Response:
    # The body is the mapping itself, which a schema of declared fields cannot dump.
    return jsonify({code: str(amount) for code, amount in sorted(schedule.items())})


_PACKAGE = "the claim's attachment package (PDF); its control number is in the Attachment-Control-Number header"


def _package_response(claim_id: uuid.UUID) -> Response:
    package = documents.read_attachment_package(db_session(), object_store(), current_actor(), claim_id)
    response = document_response(package.body, documents.PDF_CONTENT_TYPE, package.filename)
    response.headers["Attachment-Control-Number"] = package.control_number
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.route("/claims/<uuid:claim_id>/attachments")
@blp.response(200, description=_PACKAGE)
@blp.doc(responses={"200": {"description": _PACKAGE, "content": {
    "application/pdf": {"schema": {"type": "string", "format": "binary"}}}}})
def claim_attachments(claim_id: uuid.UUID) -> Any:
    """The claim's attachment package: capture note, signed report and labelled billed images, under the control
    number the 837D's PWK names (billing staff; audited)"""
    return _package_response(claim_id)


@blp.route("/claims/<uuid:claim_id>/attachment")
@blp.response(200, description=_PACKAGE)
@blp.doc(responses={"200": {"description": _PACKAGE, "content": {
    "application/pdf": {"schema": {"type": "string", "format": "binary"}}}}})
def claim_attachment(claim_id: uuid.UUID) -> Any:
    """The same attachment package as /attachments (billing staff; audited)"""
    return _package_response(claim_id)
