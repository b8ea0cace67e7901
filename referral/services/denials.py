"""Denials: every claim line a payer denied or cut for a reason the practice can act on, what it means in plain
words and what to do next; and the two ways out of a denial, a corrected claim (replacement, frequency 7, or
void, 8) and an appeal packet.

The payments come from the 835 remittances stored per line (RemittanceLine). A line is on the list when the
payer paid nothing for a charge, or when one of its adjustments is more than a contract write-off or the
patient's share. Only the latest payment of a claim counts, reversed payments do not, and claims that were
corrected or closed have left the list.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, joinedload

from referral.billing.adjustment_codes import Advice, advise, rarc
from referral.billing.amend import ClaimChangeError, as_replacement, as_void
from referral.billing.x12 import claim_control_number, patient_control_number
from referral.db import utcnow
from referral.documents.appeal import render_appeal_letter
from referral.documents.attachment import render_attachment_package
from referral.documents.pdf import to_pdf_pages
from referral.errors import Conflict, NotFound, ValidationFailed
from referral.models import (
    Claim,
    ClaimEdit,
    ClaimLine,
    Referral,
    Remittance,
    RemittanceClaim,
    RemittanceLine,
)
from referral.services import access, audit, claim_attachments, claim_lifecycle, claims
from referral.services.actor import Actor
from storage import Storage

# Claims whose denials are dealt with: a correction went out for them, or the practice closed them.
_SETTLED = ("corrected", "closed")
# What a denial's line may become: a replacement (7) or a void (8); an original (1) is a new claim, not this.
CORRECTION_FREQUENCIES = ("7", "8")
# The payer has adjudicated the claim (or at least has it): only then does it have a number to correct.
_CORRECTABLE = frozenset({"paid", "partially_paid", "denied", "appealed"})
_WHOLE_CLAIM_DENIED = "4"  # CLP02
_REVERSAL = "22"


@dataclass(frozen=True)
class Denial:
    """One denied or reduced line (``line`` None: the payer denied the whole claim without lines)."""

    claim: Claim
    patient_name: str
    remittance: Remittance
    payment: RemittanceClaim
    paid_line: RemittanceLine | None
    line: ClaimLine | None
    advice: tuple[Advice, ...]  # every adjustment of the line, explained
    remarks: tuple[str, ...]

    @property
    def problems(self) -> tuple[Advice, ...]:
        return tuple(item for item in self.advice if item.is_problem) or self.advice

    @property
    def primary(self) -> Advice | None:
        return self.problems[0] if self.problems else None

    @property
    def charge(self) -> Decimal:
        return Decimal(self.paid_line.charge if self.paid_line is not None else self.payment.charge)

    @property
    def paid(self) -> Decimal:
        return Decimal(self.paid_line.paid if self.paid_line is not None else self.payment.paid)

    @property
    def denied(self) -> bool:
        return self.paid == 0 and self.charge > 0

    @property
    def reason(self) -> str:
        if not self.advice:
            return "the payer paid nothing and sent no reason code; call the payer or read its letter"
        return "; ".join(item.explanation for item in self.problems)

    @property
    def action(self) -> str:
        return self.primary.action if self.primary else "review"

    @property
    def next_step(self) -> str:
        if self.primary is None:
            return "ask the payer why the line was not paid, then correct or appeal"
        return self.primary.next_step

    @property
    def field(self) -> str | None:
        return self.primary.field if self.primary else None

    @property
    def code(self) -> str | None:
        if self.line is not None:
            return self.line.code
        return self.paid_line.submitted_code or self.paid_line.code if self.paid_line is not None else None

    @property
    def adjustments(self) -> list[dict[str, Any]]:
        rows = self.paid_line.adjustments if self.paid_line is not None else self.payment.adjustments
        return [{"group": str(row.get("group", "")), "reason": str(row.get("reason", "")),
                 "amount": str(row.get("amount", "")), "explanation": advice.explanation}
                for row, advice in zip(rows or [], self.advice, strict=False)]

    @property
    def remark_meanings(self) -> list[dict[str, str]]:
        return [{"code": code, "meaning": rarc(code).meaning} for code in self.remarks]


def _advice(adjustments: Sequence[dict[str, Any]] | None, remarks: Sequence[str]) -> tuple[Advice, ...]:
    return tuple(advise(str(row.get("group", "")), str(row.get("reason", "")), remarks) for row in adjustments or [])


def _listed(charge: Decimal, paid: Decimal, advice: tuple[Advice, ...]) -> bool:
    return (paid == 0 and charge > 0) or any(item.is_problem for item in advice)


def _patient_names(session: Session, claims_: Sequence[Claim]) -> dict[uuid.UUID, str]:
    ids = {claim.referral_id for claim in claims_}
    if not ids:
        return {}
    rows = session.scalars(sa.select(Referral).where(Referral.id.in_(ids)).options(joinedload(Referral.patient)))
    return {row.id: ("Patient record deleted" if row.patient.is_deleted
                     else f"{row.patient.last_name}, {row.patient.first_name}") for row in rows}


def _denials(session: Session, organization_id: uuid.UUID, claim_id: uuid.UUID | None = None) -> list[Denial]:
    query = (
        sa.select(RemittanceClaim, Remittance, Claim)
        .join(Remittance, Remittance.id == RemittanceClaim.remittance_id)
        .join(Claim, Claim.id == RemittanceClaim.claim_id)
        .where(Claim.billing_organization_id == organization_id, Remittance.organization_id == organization_id,
               RemittanceClaim.reversed_by_id.is_(None), RemittanceClaim.status_code != _REVERSAL,
               Claim.status.not_in(_SETTLED))
        .order_by(Remittance.created_at.desc(), RemittanceClaim.sequence.desc())
    )
    if claim_id is not None:
        query = query.where(Claim.id == claim_id)
    latest: dict[uuid.UUID, tuple[RemittanceClaim, Remittance, Claim]] = {}
    for payment, remittance, claim in session.execute(query):
        latest.setdefault(claim.id, (payment, remittance, claim))
    names = _patient_names(session, [claim for _, _, claim in latest.values()])
    found: list[Denial] = []
    for payment, remittance, claim in latest.values():
        lines = {line.id: line for line in claim.lines}
        by_control = {line.control_number: line for line in claim.lines}
        name = names.get(claim.referral_id, "")
        for paid_line in payment.lines:
            remarks = tuple(paid_line.remarks or ())
            advice = _advice(paid_line.adjustments, remarks)
            if not _listed(Decimal(paid_line.charge), Decimal(paid_line.paid), advice):
                continue
            line = lines.get(paid_line.claim_line_id) if paid_line.claim_line_id else None
            if line is None and paid_line.control_number:
                line = by_control.get(paid_line.control_number)
            found.append(Denial(claim, name, remittance, payment, paid_line, line, advice, remarks))
        if not payment.lines:
            advice = _advice(payment.adjustments, ())
            if payment.status_code == _WHOLE_CLAIM_DENIED or any(item.is_problem for item in advice):
                found.append(Denial(claim, name, remittance, payment, None, None, advice, ()))
    found.sort(key=lambda d: (d.remittance.created_at, str(d.claim.id), d.line.number if d.line else 0),
               reverse=False)
    return found


def list_denials(session: Session, actor: Actor) -> list[Denial]:
    """The caller's practice's denied and reduced lines (billing staff), oldest payment first."""
    access.require_role(actor, *claims.BILLING_ROLES)
    organization_id, _ = access.membership(actor)
    found = _denials(session, organization_id)
    audit.record(session, actor, "denial.list", object_type="claim", object_id=None,
                 organization_id=organization_id, details={"count": len(found)})
    session.commit()
    return found


def denials_of(session: Session, claim: Claim) -> list[Denial]:
    return _denials(session, claim.billing_organization_id, claim.id)


# -- corrections -----------------------------------------------------------------------------------


def _payer_claim_number(original: Claim, supplied: str | None) -> str:
    number = (supplied or "").strip() or (original.payer_claim_number or "")
    if not number:
        raise ValidationFailed(
            "A replacement or void names the payer's claim number, and none is on file for this claim; give the "
            "number from the payer's remittance or letter",
            {"payer_claim_number": ["The payer's claim number is needed."]})
    return number


def create_correction(session: Session, actor: Actor, claim_id: uuid.UUID, frequency: str,
                      payer_claim_number: str | None = None, note: str = "") -> Claim:
    """A new claim that replaces (``frequency`` 7) or voids (8) the payer's copy of claim ``claim_id``, with the
    payer's claim number for REF*F8; the original becomes ``corrected``. Both changes leave events."""
    if frequency not in CORRECTION_FREQUENCIES:
        raise ValidationFailed("A correction replaces (7) or voids (8) the claim",
                               {"frequency": ["Must be 7 (replacement) or 8 (void)."]})
    original = claims.exportable(session, actor, claim_id)
    if original.frequency == "8":
        raise Conflict("This claim voids an earlier one; a void is not corrected again")
    if original.status == "rejected":
        raise Conflict("A rejected claim never reached the payer's adjudication: fix it and send it again as a "
                       "new original claim")
    if original.status not in _CORRECTABLE:
        raise Conflict("Only a claim the payer has answered with a payment or a denial can be replaced or voided; "
                       f"this one is {claim_lifecycle.STATUS_WORDS.get(original.status, original.status)}")
    number = _payer_claim_number(original, payer_claim_number)
    model = claims.claim_model(session, original)  # 409 when the patient's record was deleted
    try:
        (as_replacement if frequency == "7" else as_void)(model, number)
    except ClaimChangeError as exc:
        raise ValidationFailed("The payer's claim number cannot go into a claim",
                               {"payer_claim_number": [str(exc)]}) from None
    # Its own CLM01, so the payer's answers (835, 277CA) to the correction and to the original stay apart.
    earlier = session.scalar(sa.select(sa.func.count()).select_from(Claim).where(
        Claim.referral_id == original.referral_id, Claim.billing_organization_id == original.billing_organization_id,
        Claim.original_claim_id.is_not(None))) or 0
    base = original.patient_control_number or patient_control_number(str(original.referral_id))
    correction = Claim(
        patient_control_number=f"{base[:17]}C{earlier + 1:02d}",
        referral_id=original.referral_id, billing_organization_id=original.billing_organization_id,
        role=original.role, rendering_provider_id=original.rendering_provider_id,
        referring_provider_id=original.referring_provider_id, place_of_service=original.place_of_service,
        date_of_service=original.date_of_service, payer_id=original.payer_id, payer_name=original.payer_name,
        payer_profile=original.payer_profile, frequency=frequency, total=original.total, generation=1,
        narrative=original.narrative, narrative_edited=original.narrative_edited,
        original_claim_id=original.id, original_payer_claim_number=number, status="ready",
        lines=[ClaimLine(number=line.number, code=line.code, tooth=line.tooth, teeth=list(line.teeth or []),
                         area=line.area, surfaces=line.surfaces, quantity=line.quantity, fee=line.fee,
                         date_of_service=line.date_of_service, control_number=line.control_number,
                         explanation=line.explanation, rule=line.rule, image_ids=list(line.image_ids or []),
                         place_of_service=line.place_of_service, date_basis=line.date_basis)
               for line in original.lines],
        edits=[ClaimEdit(rule=edit.rule, severity=edit.severity, message=edit.message,
                         line_numbers=list(edit.line_numbers or [])) for edit in original.edits
               if edit.severity != "hold"],
    )
    session.add(correction)
    session.flush()
    what = "Replaces" if frequency == "7" else "Voids"
    claim_lifecycle.first_status(session, actor, correction, "ready",
                                 f"{what} claim {original.id} (payer's claim number on file). {note}".strip())
    claim_lifecycle.change_status(
        session, actor, original, "corrected",
        f"{'Replaced' if frequency == '7' else 'Voided'} by claim {correction.id}. {note}".strip())
    audit.record(session, actor, "claim.correct", object_type="claim", object_id=correction.id,
                 organization_id=correction.billing_organization_id, referral_id=correction.referral_id,
                 details={"original_claim_id": str(original.id), "frequency": frequency})
    session.commit()
    return correction


# -- appeals ---------------------------------------------------------------------------------------


def _letter_row(item: Denial) -> dict[str, Any]:
    line = item.line
    return {
        "line": line.number if line else None,
        "code": item.code or "",
        "teeth": ", ".join(f"#{t}" for t in dict.fromkeys(x for x in (line.tooth, *(line.teeth or [])) if x))
        if line else "",
        "date": line.date_of_service.isoformat() if line else item.claim.date_of_service.isoformat(),
        "charge": f"${item.charge:,.2f}",
        "paid": f"${item.paid:,.2f}",
        "codes": ", ".join(f"{row['group']}-{row['reason']}" for row in item.adjustments) or "none given",
        "remarks": ", ".join(item.remarks) or "none",
        "reason": item.reason,
        "billable": line.explanation if line else "",
    }


@dataclass(frozen=True)
class AppealPacket:
    body: bytes
    control_number: str
    filename: str
    claim: Claim


def appeal_packet(session: Session, store: Storage, actor: Actor, claim_id: uuid.UUID, *, mark: bool = False,
                  note: str = "") -> AppealPacket:
    """The appeal letter for a claim's denied or reduced lines followed by its attachment package, as one PDF.

    With ``mark`` (the POST) the claim also becomes ``appealed`` with an event, once the packet exists. An export
    of PHI: billing staff of the claim's practice only, recorded as a ``claim.export_appeal``."""
    claim = claims.exportable(session, actor, claim_id)
    found = denials_of(session, claim)
    if not found:
        raise Conflict("This claim has no denied or reduced line to appeal")
    if mark and not claim_lifecycle.may_change(claim, "appealed"):
        raise Conflict(f"A claim that is {claim_lifecycle.STATUS_WORDS.get(claim.status, claim.status)} cannot "
                       "be appealed")
    model = claims.claim_model(session, claim)  # 409 when the patient's record was deleted
    referral = session.get(Referral, claim.referral_id)
    if referral is None:
        raise NotFound("Referral not found")
    model = claim_attachments.with_package(session, actor, claim, model)
    package = claim_attachments.ensure_package(session, actor, claim)
    images = len({image for line in claim.lines for image in line.image_ids or ()})
    letter = render_appeal_letter(claim, model, [_letter_row(item) for item in found],
                                  control_number=package.control_number,
                                  claim_number=claim_control_number(model), image_count=images,
                                  organization_phone=claim.billing_organization.phone, written_at=utcnow())
    documents = [letter, *render_attachment_package(session, store, claim, model, referral, package.control_number,
                                                     generated_at=utcnow())]
    control_number = package.control_number
    session.commit()  # the package number is kept; no connection is held while the PDF is laid out
    body = to_pdf_pages(documents)
    if mark:
        claim_lifecycle.change_status(session, actor, claim, "appealed",
                                      f"Appeal packet sent with attachment {control_number}. {note}".strip())
    claims.record_export(session, actor, claim, "appeal")
    session.commit()
    return AppealPacket(body=body, control_number=control_number, filename=f"appeal-{claim.id}.pdf", claim=claim)
