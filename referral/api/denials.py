from __future__ import annotations

import uuid
from typing import Any

from flask import Response

from referral.api.documents import document_response
from referral.api.parsing import Blueprint
from referral.http.context import current_actor, db_session, object_store
from referral.schemas.claims import ClaimSchema
from referral.schemas.denials import AppealSchema, CorrectionSchema, DenialListSchema
from referral.services import denials
from referral.services.documents import PDF_CONTENT_TYPE

blp = Blueprint("denials", __name__,
                description="Denied and reduced claim lines, corrected and void claims, appeal packets")

_PACKET = ("the appeal letter followed by the claim's attachment package (PDF); the package's control number is in "
           "the Attachment-Control-Number header")
_PDF = {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}


def _denial(item: denials.Denial) -> dict[str, Any]:
    line = item.line
    return {
        "claim_id": item.claim.id, "claim_status": item.claim.status, "patient": item.patient_name,
        "payer_name": item.remittance.payer_name or item.claim.payer_name,
        "payer_claim_number": item.payment.payer_claim_number, "remittance_id": item.remittance.id,
        "trace_number": item.remittance.trace_number,
        "date_of_service": line.date_of_service if line else item.claim.date_of_service,
        "line_number": line.number if line else None, "code": item.code,
        "tooth": (line.tooth or ", ".join(line.teeth or []) or None) if line else None,
        "charge": item.charge, "paid": item.paid, "denied": item.denied, "adjustments": item.adjustments,
        "remarks": item.remark_meanings, "reason": item.reason, "action": item.action, "next_step": item.next_step,
        "field": item.field,
    }


@blp.route("/denials")
@blp.response(200, DenialListSchema)
def list_denials() -> Any:
    """Every denied or reduced line of the caller's practice, with its reason in plain words and the next step
    (billing staff; audited)"""
    return {"items": [_denial(item) for item in denials.list_denials(db_session(), current_actor())]}


@blp.route("/claims/<uuid:claim_id>/corrections", methods=["POST"])
@blp.arguments(CorrectionSchema)
@blp.response(201, ClaimSchema)
def create_correction(body: dict[str, Any], claim_id: uuid.UUID) -> Any:
    """A new claim that replaces (frequency 7) or voids (8) the payer's copy of this one, naming the payer's claim
    number; this claim becomes corrected (billing staff)"""
    return denials.create_correction(db_session(), current_actor(), claim_id, body["frequency"],
                                     body.get("payer_claim_number"), body.get("note", ""))


def _packet_response(packet: denials.AppealPacket) -> Response:
    response = document_response(packet.body, PDF_CONTENT_TYPE, packet.filename)
    response.headers["Attachment-Control-Number"] = packet.control_number
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.route("/claims/<uuid:claim_id>/appeal", methods=["GET"])
@blp.response(200, description=_PACKET)
@blp.doc(responses={"200": {"description": _PACKET, "content": _PDF}})
def read_appeal(claim_id: uuid.UUID) -> Any:
    """The appeal packet of a claim with denied or reduced lines; the claim's status stays (billing staff;
    audited)"""
    return _packet_response(denials.appeal_packet(db_session(), object_store(), current_actor(), claim_id))


@blp.route("/claims/<uuid:claim_id>/appeal", methods=["POST"])
@blp.arguments(AppealSchema)
@blp.response(200, description=_PACKET)
@blp.doc(responses={"200": {"description": _PACKET, "content": _PDF}})
def send_appeal(body: dict[str, Any], claim_id: uuid.UUID) -> Any:
    """The appeal packet, and the claim becomes appealed with an event (billing staff; audited)"""
    return _packet_response(denials.appeal_packet(db_session(), object_store(), current_actor(), claim_id,
                                                  mark=True, note=body.get("note", "")))
