"""A payer's answer to a claim stored as the 835 reader stores it (remittance, claim payment, line payments), so
tests of the denials worklist, corrections and appeals can start from any adjudication."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal

import sqlalchemy as sa
from flask import Flask

from referral.billing.adjustment_codes import advise
from referral.models import Claim, Remittance, RemittanceClaim, RemittanceLine
from referral.services import claim_lifecycle
from referral.services.actor import Actor


@dataclass(frozen=True)
class Paid:
    """What the payer did with claim line ``number``: paid ``paid`` with adjustments (group, reason, amount)."""

    number: int
    paid: str
    adjustments: tuple[tuple[str, str, str], ...] = ()
    remarks: tuple[str, ...] = field(default_factory=tuple)


def record_payment(app: Flask, claim_id: str, lines: list[Paid], *, payer_claim_number: str | None = "PCN-7788",
                   status_code: str = "1", trace: str | None = None) -> str:
    """Store one 835 payment of ``claim_id`` and move the claim to paid / partially paid / denied; the
    remittance id."""
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        claim = session.get(Claim, uuid.UUID(claim_id))
        assert claim is not None
        by_number = {line.number: line for line in claim.lines}
        total_charge = sum((Decimal(line.fee) * line.quantity for line in claim.lines), Decimal("0"))
        total_paid = sum((Decimal(item.paid) for item in lines), Decimal("0"))
        remittance = Remittance(organization_id=claim.billing_organization_id,
                                trace_number=trace or uuid.uuid4().hex[:12], payer_id=claim.payer_id,
                                payer_name=claim.payer_name, paid_total=total_paid, content_sha256="0" * 64)
        session.add(remittance)
        session.flush()
        if status_code == "4" or total_paid == 0:
            result = "denied"
        elif total_paid < total_charge:
            result = "partially_paid"
        else:
            result = "paid"
        payment = RemittanceClaim(
            remittance_id=remittance.id, claim_id=claim.id, sequence=1, status_code=status_code,
            charge=total_charge, paid=total_paid, patient_share=Decimal("0"), payer_claim_number=payer_claim_number,
            adjustments=[], result_status=result, previous_status=claim.status,
            lines=[RemittanceLine(
                claim_line_id=by_number[item.number].id, sequence=index, control_number=by_number[item.number]
                .control_number, code=by_number[item.number].code,
                charge=Decimal(by_number[item.number].fee) * by_number[item.number].quantity, paid=Decimal(item.paid),
                adjustments=[{"group": g, "reason": r, "amount": a, "explanation": advise(g, r, item.remarks)
                              .explanation} for g, r, a in item.adjustments],
                remarks=list(item.remarks)) for index, item in enumerate(lines, start=1)],
        )
        session.add(payment)
        system = Actor(user_id=None, organization_id=claim.billing_organization_id, role=None)
        if claim.status in ("hold", "ready"):
            claim_lifecycle.change_status(session, system, claim, "submitted", "exported", force=True)
        claim_lifecycle.change_status(session, system, claim, result, "835 received", force=True)
        claim.payer_claim_number = payer_claim_number
        session.commit()
        return str(remittance.id)


def reverse(app: Flask, remittance_id: str) -> None:
    """Mark a stored payment as undone by a later reversal."""
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        for payment in session.scalars(sa.select(RemittanceClaim)
                                       .where(RemittanceClaim.remittance_id == uuid.UUID(remittance_id))):
            payment.reversed_by_id = uuid.uuid4()
        session.commit()


def claim_state(app: Flask, claim_id: str) -> tuple[str, list[tuple[str | None, str]]]:
    """The claim's status and its events as (from, to)."""
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        claim = session.get(Claim, uuid.UUID(claim_id))
        assert claim is not None
        return claim.status, [(event.from_status, event.to_status) for event in claim.events]
