"""Remittances (835) and acknowledgements (999, 277CA) a practice received, posted to its own claims.

Each file is read by the pure billing engine first; a file it cannot read is refused (422, naming the segment)
before anything is stored. Claims are matched only among the caller's practice's claims that were sent (their
stored CLM01); everything else in a file is reported as unmatched, whoever's it is.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from referral.billing import acknowledgements as ack
from referral.billing import model as bm
from referral.billing import remittance as era
from referral.billing.x12_read import X12ParseError, read_interchange
from referral.db import new_id
from referral.errors import Conflict, NotFound, ValidationFailed
from referral.models import Acknowledgement, Claim, ClaimBatch, Remittance, RemittanceClaim, RemittanceLine
from referral.services import access, audit
from referral.services import claim_lifecycle as lifecycle
from referral.services.actor import Actor
from referral.services.claims import BILLING_ROLES, claim_model

MAX_FILE_BYTES = 5 * 1024 * 1024
_Results = tuple[list[dict[str, object]], list[dict[str, object]]]


def _text(body: bytes) -> str:
    if not body.strip():
        raise ValidationFailed("The file is empty", {"body": ["Send the file's text as the request body."]})
    if len(body) > MAX_FILE_BYTES:
        raise ValidationFailed(f"The file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB",
                               {"body": ["Too large."]})
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationFailed("The file is not plain text", {"body": ["Not UTF-8 or ASCII text."]}) from None


def _digest(text: str) -> str:
    """The file's fingerprint, the same whatever line breaks were put between its segments on the way."""
    return hashlib.sha256("".join(text.split("\n")).replace("\r", "").strip().encode()).hexdigest()


def _check_lengths(advice: era.Remittance) -> None:
    """Values longer than this server keeps are refused (422) rather than cut: a cut number matches nothing."""
    too_long: dict[str, list[str]] = {}

    def fits(value: str | None, limit: int, what: str) -> None:
        if value is not None and len(value) > limit:
            too_long.setdefault(what, []).append(f"At most {limit} characters.")

    fits(advice.trace_number, 80, "trace number (TRN02)")
    fits(advice.payer_id, 80, "payer id")
    for payment in advice.claims:
        fits(payment.payer_claim_number, 50, "payer claim number (CLP07)")
        for service in payment.services:
            fits(service.line_control_number, 50, "line item control number (REF*6R)")
            fits(service.code, 10, "procedure code (SVC01)")
            fits(service.submitted_code, 10, "submitted procedure code (SVC06)")
    if too_long:
        raise ValidationFailed("The 835 has values longer than a remittance may carry", too_long)


def _unreadable(kind: str, exc: X12ParseError) -> ValidationFailed:
    errors: dict[str, Any] = {"body": [str(exc)]}
    if exc.segment is not None:
        errors["segment"] = exc.segment
    if exc.position is not None:
        errors["position"] = exc.position
    return ValidationFailed(f"The {kind} cannot be read: {exc}", errors)


def _sent_claims(session: Session, organization_id: uuid.UUID, numbers: set[str]) -> tuple[list[Claim], list[bm.Claim]]:
    """The practice's sent claims whose CLM01 is among ``numbers``, with their engine models for matching."""
    if not numbers:
        return [], []
    rows = list(session.scalars(
        sa.select(Claim).where(Claim.billing_organization_id == organization_id,
                               Claim.patient_control_number.in_(sorted(numbers)))
        .options(selectinload(Claim.lines), selectinload(Claim.events))
        .order_by(Claim.created_at, Claim.id)))
    models = []
    usable = []
    for row in rows:
        try:
            models.append(claim_model(session, row))
        except Conflict:
            continue  # the patient's record was deleted: nothing can be posted to the claim
        usable.append(row)
    return usable, models


# -- 835 ---------------------------------------------------------------------------------------------------------------


CENT = Decimal("0.01")


def _cents(value: Decimal | None) -> Decimal | None:
    return None if value is None else Decimal(value).quantize(CENT)


def _adjustments(adjustments: Sequence[era.Adjustment], remarks: Sequence[str]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for adjustment in adjustments:
        advice = adjustment.advice(remarks)
        out.append({"group": adjustment.group, "reason": adjustment.reason, "amount": str(_cents(adjustment.amount)),
                    "explanation": advice.explanation, "next_step": advice.next_step})
    return out


def _unmatched_835(payment: era.ClaimPayment) -> dict[str, object]:
    return {"patient_control_number": payment.patient_control_number, "status_code": payment.status_code,
            "charge": str(_cents(payment.charge)), "paid": str(_cents(payment.paid))}


@dataclass(frozen=True)
class Posted:
    remittance: Remittance
    created: bool


def post_remittance(session: Session, actor: Actor, body: bytes) -> Posted:
    """Read an 835 and post its payments to the practice's claims, in one transaction.

    The same payment again (same trace number, TRN02) is answered with the earlier result and posts nothing;
    a different file under an already used trace number is refused (409). A file that cannot be read or does not
    balance is refused (422) with nothing stored."""
    access.require_role(actor, *BILLING_ROLES)
    organization_id, _ = access.membership(actor)
    text = _text(body)
    try:
        parsed = era.parse_835(text)
    except X12ParseError as exc:
        raise _unreadable("835", exc) from None
    if len(parsed) != 1:
        raise ValidationFailed(f"The file holds {len(parsed)} payments; send one 835 payment (ST/SE) per file",
                               {"body": ["One transaction set per file."]})
    advice = parsed[0]
    _check_lengths(advice)
    digest = _digest(text)
    earlier = session.scalar(sa.select(Remittance).where(Remittance.organization_id == organization_id,
                                                         Remittance.trace_number == advice.trace_number))
    if earlier is not None:
        if earlier.content_sha256 != digest:
            raise Conflict(f"A different remittance with trace number {advice.trace_number} was already posted; "
                           "nothing was changed")
        return Posted(earlier, False)

    rows, models = _sent_claims(session, organization_id, {p.patient_control_number for p in advice.claims})
    matched = era.match_remittance(advice, models)
    remittance = Remittance(organization_id=organization_id, trace_number=advice.trace_number,
                            payer_id=advice.payer_id, payer_name=(advice.payer_name or "")[:120] or None,
                            paid_total=_cents(advice.paid_total if advice.credit else -advice.paid_total),
                            payment_date=advice.payment_date, content_sha256=digest,
                            unmatched=[_unmatched_835(p) for p in matched.unmatched],
                            received_by_user_id=actor.user_id)
    session.add(remittance)
    session.flush()
    for sequence, match in enumerate(matched.matched, start=1):
        _post_payment(session, actor, remittance, sequence, rows[match.claim_index], match)
    session.flush()
    audit.record(session, actor, "remittance.post", object_type="remittance", object_id=remittance.id,
                 organization_id=organization_id,
                 details={"claims": len(matched.matched), "unmatched": len(matched.unmatched)})
    session.commit()
    return Posted(remittance, True)


def _post_payment(session: Session, actor: Actor, remittance: Remittance, sequence: int, claim: Claim,
                  match: era.ClaimMatch) -> None:
    payment = match.payment
    line_ids = {line.number: line.id for line in claim.lines}
    posted = RemittanceClaim(
        id=new_id(), remittance_id=remittance.id, claim_id=claim.id, sequence=sequence,
        status_code=payment.status_code, charge=_cents(payment.charge), paid=_cents(payment.paid),
        patient_share=_cents(payment.patient_responsibility), payer_claim_number=payment.payer_claim_number,
        adjustments=_adjustments(payment.adjustments, payment.remarks), previous_status=claim.status,
        result_status=claim.status,
        lines=[
            RemittanceLine(sequence=index, claim_line_id=line_ids.get(line.line_number) if line.line_number else None,
                           control_number=line.service.line_control_number, code=line.service.code,
                           submitted_code=line.service.submitted_code, charge=_cents(line.service.charge),
                           paid=_cents(line.service.paid),
                           adjustments=_adjustments(line.service.adjustments, line.service.remarks),
                           remarks=list(line.service.remarks))
            for index, line in enumerate(match.lines, start=1)
        ],
    )
    session.add(posted)
    where = f"remittance {remittance.trace_number} from {remittance.payer_name or 'the payer'}"
    outcome = payment.outcome
    if outcome == "reversed":
        undone = _latest_payment(session, claim.id, posted.id)
        if undone is None:
            lifecycle.note(session, actor, claim,
                           f"The payer reversed a payment this practice has no record of ({where})")
        else:
            undone.reversed_by_id = posted.id
            lifecycle.change_status(session, actor, claim, undone.previous_status,
                                    f"The payer reversed its earlier payment ({where})", force=True)
    elif outcome in lifecycle.PAYMENT_RESULTS:
        if payment.payer_claim_number:
            claim.payer_claim_number = payment.payer_claim_number
        text = f"{lifecycle.STATUS_WORDS[outcome].capitalize()}: {payment.paid} of {payment.charge} ({where})"
        if claim.status == outcome:
            lifecycle.note(session, actor, claim, text)
        else:
            lifecycle.change_status(session, actor, claim, outcome, text, force=True)
    else:
        lifecycle.note(session, actor, claim, f"The payer {era.CLAIM_STATUSES[payment.status_code]} ({where})")
    posted.result_status = claim.status


def _latest_payment(session: Session, claim_id: uuid.UUID, exclude: uuid.UUID) -> RemittanceClaim | None:
    """The claim's most recent posted payment that is still in force (not a reversal, not reversed)."""
    session.flush()
    candidates = session.execute(
        sa.select(RemittanceClaim, Remittance.created_at)
        .join(Remittance, Remittance.id == RemittanceClaim.remittance_id)
        .where(RemittanceClaim.claim_id == claim_id, RemittanceClaim.status_code != "22",
               RemittanceClaim.reversed_by_id.is_(None), RemittanceClaim.id != exclude)
    ).all()
    if not candidates:
        return None
    return max(candidates, key=lambda row: (row[1], row[0].sequence))[0]


def get_remittance(session: Session, actor: Actor, remittance_id: uuid.UUID) -> Remittance:
    remittance = session.get(Remittance, remittance_id)
    if remittance is None or remittance.organization_id != actor.organization_id:
        raise NotFound("Remittance not found")
    access.require_role(actor, *BILLING_ROLES)
    audit.record(session, actor, "remittance.read", object_type="remittance", object_id=remittance.id,
                 organization_id=remittance.organization_id, details={})
    session.commit()
    return remittance


def remittance_summary(remittance: Remittance) -> dict[str, Any]:
    return {
        "id": remittance.id,
        "payer": remittance.payer_name,
        "payer_id": remittance.payer_id,
        "trace_number": remittance.trace_number,
        "paid_total": remittance.paid_total,
        "payment_date": remittance.payment_date,
        "created_at": remittance.created_at,
        "claims": [
            {"claim_id": posted.claim_id, "status": posted.result_status, "paid": posted.paid,
             "charge": posted.charge, "status_code": posted.status_code,
             "payer_claim_number": posted.payer_claim_number, "patient_share": posted.patient_share,
             "reversed": posted.reversed_by_id is not None, "adjustments": posted.adjustments,
             "lines": [{"claim_line_id": line.claim_line_id, "control_number": line.control_number,
                        "code": line.code, "submitted_code": line.submitted_code, "charge": line.charge,
                        "paid": line.paid, "adjustments": line.adjustments, "remarks": line.remarks}
                       for line in posted.lines]}
            for posted in remittance.claims
        ],
        "unmatched": remittance.unmatched,
    }


# -- 999 / 277CA -------------------------------------------------------------------------------------------------------


def post_acknowledgement(session: Session, actor: Actor, body: bytes) -> Acknowledgement:
    """Read a 999 or 277CA and move the practice's claims it answers to accepted or rejected, with the reason.

    A 999 answers whole interchanges (found by their GS06, the practice's control number); a 277CA answers claims
    one by one (TRN02 = CLM01). Statuses only move forward: a claim already paid stays paid and gets a note."""
    access.require_role(actor, *BILLING_ROLES)
    organization_id, _ = access.membership(actor)
    text = _text(body)
    try:
        groups = read_interchange(text).groups
    except X12ParseError as exc:
        raise _unreadable("acknowledgement", exc) from None
    kinds = {group.functional_id for group in groups}
    try:
        if kinds == {"FA"}:
            results, unmatched = _post_999(session, actor, organization_id, ack.parse_999(text))
            kind = "999"
        elif kinds == {"HN"}:
            results, unmatched = _post_277ca(session, actor, organization_id, ack.parse_277ca(text))
            kind = "277CA"
        else:
            raise ValidationFailed("The file is neither a 999 nor a 277CA (GS01 must be FA or HN)",
                                   {"body": [f"Functional group {', '.join(sorted(kinds)) or 'missing'}."]})
    except X12ParseError as exc:
        session.rollback()
        raise _unreadable(kind_name(kinds), exc) from None
    record = Acknowledgement(organization_id=organization_id, kind=kind,
                             content_sha256=_digest(text),
                             results=results, unmatched=unmatched, received_by_user_id=actor.user_id)
    session.add(record)
    session.flush()
    audit.record(session, actor, "acknowledgement.post", object_type="acknowledgement", object_id=record.id,
                 organization_id=organization_id, details={"kind": kind, "claims": len(results),
                                                           "unmatched": len(unmatched)})
    session.commit()
    return record


def kind_name(kinds: set[str]) -> str:
    return {"FA": "999", "HN": "277CA"}.get(next(iter(kinds), ""), "acknowledgement")


def _apply(session: Session, actor: Actor, claim: Claim, outcome: str, reasons: Sequence[str],
           source: str) -> dict[str, object]:
    why = "; ".join(reasons)
    text = f"{lifecycle.STATUS_WORDS.get(outcome, outcome).capitalize()} ({source})" + (f": {why}" if why else "")
    if outcome in ("accepted", "rejected") and claim.status != outcome and lifecycle.may_change(claim, outcome):
        lifecycle.change_status(session, actor, claim, outcome, text)
    else:
        lifecycle.note(session, actor, claim, text)
    return {"claim_id": str(claim.id), "outcome": outcome, "status": claim.status, "reasons": list(reasons)}


def _post_999(session: Session, actor: Actor, organization_id: uuid.UUID,
              found: Sequence[ack.FunctionalAcknowledgement]) -> _Results:
    results: list[dict[str, object]] = []
    unmatched: list[dict[str, object]] = []
    for answer in found:
        batch = None
        if answer.group_control_number.isdigit() and len(answer.group_control_number) <= 9:
            batch = session.scalar(sa.select(ClaimBatch).where(
                ClaimBatch.organization_id == organization_id,
                ClaimBatch.control_number == int(answer.group_control_number)))
        if batch is None:
            unmatched.append({"group_control_number": answer.group_control_number, "status": answer.status})
            continue
        # Our interchanges hold one practice's claims in one transaction set, numbered 0001.
        outcome = answer.outcome_for("0001")
        reasons = answer.reasons_for("0001")
        for claim_id in batch.claim_ids:
            claim = session.get(Claim, uuid.UUID(claim_id))
            if claim is None:
                continue
            results.append(_apply(session, actor, claim, outcome, reasons,
                                  f"999 for interchange {batch.control_number}"))
    return results, unmatched


def _post_277ca(session: Session, actor: Actor, organization_id: uuid.UUID,
                found: Sequence[ack.ClaimAcknowledgement]) -> _Results:
    results: list[dict[str, object]] = []
    unmatched: list[dict[str, object]] = []
    for answer in found:
        rows, models = _sent_claims(session, organization_id, {c.patient_control_number for c in answer.claims})
        matches, strangers = ack.match_claim_statuses(answer, models)
        for match in matches:
            claim = rows[match.claim_index]
            number = match.status.payer_claim_number
            if number and len(number) <= 50 and match.status.outcome == "accepted":
                claim.payer_claim_number = number
            results.append(_apply(session, actor, claim, match.status.outcome, match.status.reasons,
                                  f"277CA from {answer.payer_name or 'the payer'}"))
        unmatched += [{"patient_control_number": s.patient_control_number, "outcome": s.outcome}
                      for s in strangers]
    return results, unmatched


def get_acknowledgement(session: Session, actor: Actor, acknowledgement_id: uuid.UUID) -> Acknowledgement:
    record = session.get(Acknowledgement, acknowledgement_id)
    if record is None or record.organization_id != actor.organization_id:
        raise NotFound("Acknowledgement not found")
    access.require_role(actor, *BILLING_ROLES)
    return record

