from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Response, jsonify
from flask.views import MethodView

from referral.api.context import current_actor, db_session
from referral.api.documents import document_response
from referral.api.parsing import Blueprint
from referral.billing.fhir_claim import to_fhir_claim
from referral.billing.x12 import ExportError, Submitter, to_837d
from referral.billing.x12_validator import validate_837d
from referral.errors import Conflict
from referral.schemas.claims import (
    ClaimListQuerySchema,
    ClaimListSchema,
    ClaimPageSchema,
    ClaimSchema,
    FeeScheduleDumpSchema,
    FeeScheduleSchema,
)
from referral.services import claims, documents

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
@blp.response(200, ClaimSchema)
def claim(claim_id: uuid.UUID) -> Any:
    """One claim of the caller's organization"""
    return claims.get_claim(db_session(), current_actor(), claim_id)


@blp.route("/claims/<uuid:claim_id>/x12")
@blp.response(200, {"type": "string"}, content_type="application/edi-x12",
              description="an X12 837D 005010X224A2 interchange")
def claim_x12(claim_id: uuid.UUID) -> Any:
    """The claim as an 837D interchange (billing staff; audited)"""
    row, model, export_id = claims.export(db_session(), current_actor(), claim_id, "x12")
    if model.coverage is None:
        raise Conflict("The patient has no coverage on file, so there is no payer to send an 837D to")
    submitter = Submitter(name=model.billing_organization.name, contact_name="BILLING OFFICE",
                          phone=row.billing_organization.phone)
    try:
        text = to_837d([model], sender_id=model.billing_organization.tax_id, receiver_id=model.coverage.payer_id,
                       interchange_control_number=export_id, group_control_number=export_id,
                       created_at=datetime.now(UTC), submitter=submitter)
    except ExportError as exc:
        raise Conflict(f"The claim cannot be written as an 837D: {exc}") from None
    problems = validate_837d(text)
    if problems:
        # A file a payer would reject never leaves; the clerk sees what to fix.
        raise Conflict("The claim is missing data an 837D needs; fix these and export again",
                       {"x12": problems})
    response = Response(text, mimetype="application/edi-x12")
    response.headers["Content-Disposition"] = f'attachment; filename="claim-{row.id}.x12"'
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.route("/claims/<uuid:claim_id>/fhir")
@blp.response(200, {"type": "object"}, content_type="application/fhir+json", description="a FHIR R4 Claim")
def claim_fhir(claim_id: uuid.UUID) -> Any:
    """The claim as a FHIR R4 Claim resource (billing staff; audited)"""
    _row, model, _export_id = claims.export(db_session(), current_actor(), claim_id, "fhir")
    response = Response(json.dumps(to_fhir_claim(model)), mimetype="application/fhir+json")
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


def _schedule_response(schedule: dict[str, Any]) -> Response:
    # The body is the mapping itself, which a schema of declared fields cannot dump.
    return jsonify({code: str(amount) for code, amount in sorted(schedule.items())})
