"""Claims: the facts of a referral handed to the billing engine, its claims kept per billing
organization, and each organization shown only its own."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from referral.billing import model as bm
from referral.billing.amend import ClaimChangeError, next_control_number
from referral.billing.edits import export_holds
from referral.billing.engine import generate_claims
from referral.billing.fhir_claim import to_fhir_claim
from referral.billing.narrative import NarrativeError, normalize_narrative
from referral.billing.x12 import ExportError, Submitter, claim_control_number, to_837d_batch
from referral.billing.x12_validator import validate_837d
from referral.db import utcnow
from referral.errors import Conflict, NotFound, ValidationFailed
from referral.models import (
    Claim,
    ClaimBatch,
    ClaimEdit,
    ClaimExport,
    ClaimLine,
    FeeScheduleEntry,
    Image,
    Organization,
    Patient,
    Provider,
    Referral,
)
from referral.models.enums import Role
from referral.models.reports import DiagnosticQuality, ReportStatus
from referral.services import access, audit, claim_attachments, outbox
from referral.services import claim_lifecycle as lifecycle
from referral.services.actor import Actor
from referral.services.pagination import page

BILLING_ROLES = (Role.BILLING, Role.ORG_ADMIN)
# Everyone of a practice may see that its claim exists; exports are for the people who submit them.
CLAIM_READ_ROLES = (Role.BILLING, Role.ORG_ADMIN, Role.STAFF, Role.DENTIST, Role.SPECIALIST)


# -- facts -----------------------------------------------------------------------------------------


def _address(org: Organization) -> bm.Address:
    return bm.Address(line1=org.address_line1, line2=org.address_line2, city=org.city, state=org.state, zip=org.zip)


def fee_schedule(session: Session, organization_id: uuid.UUID) -> dict[str, Decimal]:
    rows = session.scalars(sa.select(FeeScheduleEntry).where(FeeScheduleEntry.organization_id == organization_id))
    return {row.code: Decimal(row.amount) for row in rows}


def _organization_facts(session: Session, organization_id: uuid.UUID) -> bm.OrganizationFacts:
    org = session.get(Organization, organization_id)
    if org is None:
        raise NotFound("Organization not found")
    return bm.OrganizationFacts(id=str(org.id), name=org.name, npi=org.npi, tax_id=org.tax_id,
                                address=_address(org), fee_schedule=fee_schedule(session, org.id), phone=org.phone)


def _provider_facts(provider: Provider) -> bm.ProviderFacts:
    return bm.ProviderFacts(id=str(provider.id), organization_id=str(provider.organization_id),
                            first_name=provider.first_name, last_name=provider.last_name, npi=provider.npi,
                            taxonomy=provider.taxonomy, credentials=provider.credentials)


def _patient_facts(patient: Patient) -> tuple[bm.PatientFacts, bm.CoverageFacts | None]:
    if patient.is_deleted:
        # Its name, birth date and coverage are gone: a claim built now would go out with blanks, and
        # regenerating would rewrite the stored lines from missing coverage. The stored claim stays readable.
        raise Conflict("The patient's record was deleted, so this case's claims can no longer be exported or "
                       "regenerated; the stored claim lines remain readable")
    address = None
    if patient.address_line1 and patient.city and patient.zip:
        address = bm.Address(line1=patient.address_line1, line2=patient.address_line2, city=patient.city,
                             state=patient.state, zip=patient.zip)
    facts = bm.PatientFacts(id=str(patient.id), first_name=patient.first_name, last_name=patient.last_name,
                            birth_date=patient.birth_date, sex=patient.sex.value, state=patient.state,
                            address=address)
    coverage = None
    if patient.coverage_payer_id and patient.coverage_member_id:
        coverage = bm.CoverageFacts(
            payer_id=patient.coverage_payer_id, payer_name=patient.coverage_payer_name or patient.coverage_payer_id,
            member_id=patient.coverage_member_id, group_number=patient.coverage_group_number,
            relationship=patient.coverage_relationship.value if patient.coverage_relationship else "self",
            subscriber=_subscriber_facts(patient),
        )
    return facts, coverage


def _subscriber_facts(patient: Patient) -> bm.SubscriberFacts | None:
    found = patient.subscriber
    if found is None:
        return None
    address = found["address"]
    return bm.SubscriberFacts(
        first_name=found["first_name"] or "", last_name=found["last_name"], birth_date=found["birth_date"],
        sex=found["sex"],
        address=bm.Address(line1=address["line1"], line2=address["line2"], city=address["city"],
                           state=address["state"], zip=address["zip"]) if address else None,
    )


def _prior_lines(session: Session, referral: Referral) -> tuple[bm.PriorLine, ...]:
    rows = session.execute(
        sa.select(ClaimLine.code, ClaimLine.date_of_service, ClaimLine.tooth, Claim.billing_organization_id,
                  ClaimLine.quantity)
        .join(Claim, Claim.id == ClaimLine.claim_id)
        .join(Referral, Referral.id == Claim.referral_id)
        .where(Referral.patient_id == referral.patient_id, Referral.id != referral.id)
    )
    return tuple(bm.PriorLine(code=code, date_of_service=dos, tooth=tooth, billing_organization_id=str(org),
                              quantity=quantity)
                 for code, dos, tooth, org, quantity in rows)


def visit_facts(session: Session, referral: Referral) -> bm.VisitFacts:
    """Everything the engine needs about one referral, read from the database."""
    report = referral.interpretation
    signed = report is not None and report.status == ReportStatus.SIGNED
    nondiagnostic = set()
    if signed and report is not None:
        nondiagnostic = {f["image_id"] for f in report.findings
                         if f.get("diagnostic_quality") == DiagnosticQuality.NONDIAGNOSTIC}
    images: list[Image] = list(referral.images)
    reader = session.get(Provider, referral.assigned_provider_id) if referral.assigned_provider_id else None
    patient, coverage = _patient_facts(referral.patient)
    return bm.VisitFacts(
        referral_id=str(referral.id),
        patient=patient,
        coverage=coverage,
        capturing_organization=_organization_facts(session, referral.organization_id),
        referring_provider=_provider_facts(referral.referring_provider),
        images=tuple(
            bm.ImageFacts(
                id=str(image.id), kind=image.kind.value, captured_on=image.captured_at.date(),
                capturing_organization_id=str(image.organization_id),
                capturing_provider_id=str(image.captured_by_provider_id), teeth=tuple(image.teeth or ()),
                area=image.area, retake_of=str(image.retake_of_id) if image.retake_of_id else None,
                nondiagnostic=str(image.id) in nondiagnostic,
            )
            for image in images
        ),
        mode=referral.mode.value,
        place_of_service=referral.place_of_service,
        reader_organization=_organization_facts(session, reader.organization_id) if reader else None,
        reader_provider=_provider_facts(reader) if reader else None,
        report_signed_at=report.signed_at if signed and report is not None else None,
        evaluation_performed=bool(report.evaluation_performed) if signed and report is not None else False,
        prior_lines=_prior_lines(session, referral),
    )


# -- persistence -----------------------------------------------------------------------------------


CHANGED_AFTER_SUBMISSION = "changed-after-submission"


def _fingerprint(role: str, place: str, lines: list[tuple[Any, ...]], edits: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    return role, place, tuple(lines), tuple(edits)


def _stored_shape(claim: Claim) -> tuple[Any, ...]:
    return _fingerprint(
        claim.role, claim.place_of_service,
        [(line.code, line.tooth, tuple(line.teeth or ()), line.area, line.surfaces, line.quantity,
          Decimal(line.fee), line.date_of_service, line.rule, line.place_of_service) for line in claim.lines],
        [(edit.rule, edit.severity, edit.message) for edit in claim.edits if edit.rule != CHANGED_AFTER_SUBMISSION],
    )


def _generated_shape(claim: bm.Claim) -> tuple[Any, ...]:
    return _fingerprint(
        claim.role, claim.place_of_service,
        [(line.code, line.tooth, tuple(line.teeth), line.area, line.surfaces, line.quantity, Decimal(line.fee),
          line.date_of_service, line.rule, line.place_of_service) for line in claim.lines],
        [(edit.rule, edit.severity, edit.message) for edit in claim.edits],
    )


def _keep_sent_claim(session: Session, actor: Actor, row: Claim) -> None:
    """New facts for a claim the payer already has: the sent claim is not rewritten behind the payer's back.
    A hold edit (the claim is not sent again as it stands) and an event tell billing to review it; its status
    stays what the payer made it. A corrected claim carries the change."""
    if any(edit.rule == CHANGED_AFTER_SUBMISSION for edit in row.edits):
        return
    message = ("The case changed after this claim was sent; the claim as sent is kept and is not sent again as it "
               "stands. Review it and send a corrected claim if the payer needs the change.")
    row.edits.append(ClaimEdit(rule=CHANGED_AFTER_SUBMISSION, severity="hold", message=message, line_numbers=[]))
    lifecycle.note(session, actor, row, message)


def regenerate(session: Session, actor: Actor, referral: Referral) -> list[Claim]:
    """Bring the stored claims in line with the facts; added to the caller's transaction.

    A claim whose lines and edits did not change is left alone; a changed one is rewritten and its
    generation counted. A claim already sent to the payer is never rewritten: changed facts leave a warning
    edit and an event on it instead. ``claims.ready`` goes to every organization whose claim is new or changed.
    """
    # The payer's edits come from the engine; the holds for what an 837D needs are added here, so that a
    # claim is "ready" only when it can be exported.
    generated = [replace(draft, edits=(*draft.edits, *export_holds(draft)))
                 for draft in generate_claims(visit_facts(session, referral))]
    existing = {claim.billing_organization_id: claim for claim in session.scalars(
        # Replacements and voids are the billing office's own claims: new facts rewrite only the originals.
        sa.select(Claim).where(Claim.referral_id == referral.id, Claim.original_claim_id.is_(None)))}
    changed: list[Claim] = []
    for draft in generated:
        organization_id = uuid.UUID(draft.billing_organization.id)
        row = existing.pop(organization_id, None)
        if row is not None and row.status not in lifecycle.REWRITABLE:
            if _stored_shape(row) != _generated_shape(draft):
                _keep_sent_claim(session, actor, row)
            continue
        if row is not None and _stored_shape(row) == _generated_shape(draft):
            if not row.narrative_edited and row.narrative != (draft.narrative or None):
                row.narrative = draft.narrative or None
            continue
        if row is None:
            row = Claim(referral_id=referral.id, billing_organization_id=organization_id, generation=0,
                        narrative_edited=False)
            session.add(row)
            lifecycle.first_status(session, actor, row, draft.status, "Claim made from the case")
        elif row.status != draft.status:
            lifecycle.change_status(session, actor, row, draft.status,
                                    "Claim rebuilt from the case's changed facts")
        else:
            lifecycle.note(session, actor, row, "Claim rebuilt from the case's changed facts")
        row.role = draft.role
        row.rendering_provider_id = uuid.UUID(draft.rendering_provider.id)
        row.referring_provider_id = uuid.UUID(draft.referring_provider.id) if draft.referring_provider else None
        row.place_of_service = draft.place_of_service
        row.date_of_service = draft.date_of_service
        row.payer_id = draft.coverage.payer_id if draft.coverage else None
        row.payer_name = draft.coverage.payer_name if draft.coverage else None
        row.payer_profile = draft.payer_profile
        row.frequency = draft.frequency
        row.total = draft.total
        row.generation = (row.generation or 0) + 1
        if row.lines or row.edits:
            # The old lines go first: the new ones reuse their numbers, which are unique per claim, and the
            # flush would otherwise insert before it deletes.
            row.lines = []
            row.edits = []
            session.flush()
        if not row.narrative_edited:
            row.narrative = draft.narrative or None
        row.lines = [
            ClaimLine(number=line.number, code=line.code, tooth=line.tooth, teeth=list(line.teeth), area=line.area,
                      surfaces=line.surfaces, quantity=line.quantity, fee=line.fee,
                      date_of_service=line.date_of_service, control_number=line.control_number,
                      explanation=line.explanation, rule=line.rule, image_ids=list(line.image_ids),
                      place_of_service=line.place_of_service, date_basis=line.date_basis or None)
            for line in draft.lines
        ]
        row.edits = [ClaimEdit(rule=edit.rule, severity=edit.severity, message=edit.message,
                               line_numbers=list(edit.line_numbers)) for edit in draft.edits]
        changed.append(row)
    for stale in existing.values():
        if stale.status not in lifecycle.REWRITABLE:
            # Sent to the payer: the claim stays on record, with a warning to review it.
            _keep_sent_claim(session, actor, stale)
            continue
        # Facts no longer support a claim for this organization (e.g. a report was never signed).
        session.delete(stale)
    session.flush()
    for row in changed:
        audit.record(session, actor, "claim.generate", object_type="claim", object_id=row.id,
                     organization_id=row.billing_organization_id, referral_id=referral.id,
                     details={"generation": row.generation, "status": row.status, "lines": len(row.lines)})
        outbox.enqueue(session, organization_ids=[row.billing_organization_id], event_type="claims.ready",
                       data={"referral_id": str(referral.id), "claim_id": str(row.id), "status": row.status,
                             "billing_organization_id": str(row.billing_organization_id)})
    return changed


def recheck_organization(session: Session, actor: Actor, organization_id: uuid.UUID) -> int:
    """Regenerate the claims an organization bills that can still change (after its fee schedule or details
    changed); added to the caller's transaction. Claims the payer already has are history: new fees or a new
    address do not touch them, nor flag them as changed. Cases of deleted patients keep their stored claims.
    Returns the cases re-checked."""
    unsent = sa.select(Claim.referral_id).where(Claim.billing_organization_id == organization_id,
                                                Claim.original_claim_id.is_(None),
                                                Claim.status.in_(sorted(lifecycle.REWRITABLE)))
    referrals = list(session.scalars(
        sa.select(Referral).join(Patient, Patient.id == Referral.patient_id)
        .where(Patient.deleted_at.is_(None), Referral.id.in_(unsent))
        .order_by(Referral.id)))
    for referral in referrals:
        regenerate(session, actor, referral)
    return len(referrals)


# -- reads -----------------------------------------------------------------------------------------


def claims_for_referral(session: Session, actor: Actor, referral_id: uuid.UUID) -> list[Claim]:
    """The caller's own organization's claims on a referral; never another organization's."""
    access.require_role(actor, *CLAIM_READ_ROLES)
    organization_id, _ = access.membership(actor)
    rows = list(session.scalars(sa.select(Claim).where(Claim.referral_id == referral_id,
                                                       Claim.billing_organization_id == organization_id)))
    if not rows:
        # No claim of ours: the referral must still be one we can see, or it does not exist for us.
        access.get_referral(session, actor, referral_id)
    audit.record(session, actor, "claim.list", object_type="referral", object_id=referral_id,
                 organization_id=organization_id, referral_id=referral_id, details={"count": len(rows)})
    session.commit()
    return rows


def list_claims(session: Session, actor: Actor, *, statuses: list[str] | None = None,
                referral_id: uuid.UUID | None = None, cursor: str | None = None,
                limit: int | None = None) -> tuple[list[Claim], str | None]:
    """The caller's own organization's claims, newest first, a page at a time."""
    access.require_role(actor, *CLAIM_READ_ROLES)
    organization_id, _ = access.membership(actor)
    query = (
        sa.select(Claim)
        .where(Claim.billing_organization_id == organization_id)
        # Each claim is dumped with its lines, edits and providers: load them per page, not per claim.
        .options(selectinload(Claim.lines), selectinload(Claim.edits), selectinload(Claim.events),
                 selectinload(Claim.billing_organization),
                 selectinload(Claim.rendering_provider), selectinload(Claim.referring_provider))
    )
    if statuses:
        query = query.where(Claim.status.in_(statuses))
    if referral_id is not None:
        query = query.where(Claim.referral_id == referral_id)
    items, next_cursor = page(session, query, [Claim.id], cursor, limit, descending=True)
    audit.record(session, actor, "claim.list", object_type="claim", object_id=None,
                 organization_id=organization_id, referral_id=referral_id,
                 details={"count": len(items), "statuses": statuses or []})
    session.commit()
    return items, next_cursor


def get_claim(session: Session, actor: Actor, claim_id: uuid.UUID) -> Claim:
    claim = session.get(Claim, claim_id)
    if claim is None or claim.billing_organization_id != actor.organization_id:
        # Another organization's claim: not found, like one that does not exist; either attempt is audited.
        audit.record_denied(session, actor, "claim.access", object_type="claim", object_id=claim_id)
        raise NotFound("Claim not found")
    access.require_role(actor, *CLAIM_READ_ROLES)
    return claim


def shows_patient(session: Session, actor: Actor, claim: Claim) -> bool:
    """Whether a page may name the claim's patient to the actor: billing staff and org admins of the billing
    practice (they bill the patient and export the 837D that names them), and anyone else only while they may
    see the case itself. A reader who declined the case or was never assigned it sees the claim as the JSON shows
    it, without the patient."""
    return actor.role in BILLING_ROLES or access.sees_referral(session, actor, claim.referral_id)


def claim_model(session: Session, claim: Claim) -> bm.Claim:
    """A stored claim back in the engine's terms, for the exporters."""
    referral = session.get(Referral, claim.referral_id)
    if referral is None:
        raise NotFound("Referral not found")
    patient, coverage = _patient_facts(referral.patient)
    rendering = session.get(Provider, claim.rendering_provider_id)
    referring = session.get(Provider, claim.referring_provider_id) if claim.referring_provider_id else None
    if rendering is None:
        raise NotFound("Provider not found")
    return bm.Claim(
        billing_organization=_organization_facts(session, claim.billing_organization_id),
        role=claim.role,
        rendering_provider=_provider_facts(rendering),
        place_of_service=claim.place_of_service,
        date_of_service=claim.date_of_service,
        payer_profile=claim.payer_profile,
        lines=tuple(
            bm.ClaimLine(number=line.number, code=line.code, quantity=line.quantity, fee=Decimal(line.fee),
                         date_of_service=line.date_of_service, control_number=line.control_number,
                         explanation=line.explanation, rule=line.rule, tooth=line.tooth,
                         teeth=tuple(line.teeth or ()), area=line.area, surfaces=line.surfaces,
                         image_ids=tuple(line.image_ids or ()), place_of_service=line.place_of_service,
                         date_basis=line.date_basis or "")
            for line in claim.lines
        ),
        edits=tuple(bm.Edit(rule=e.rule, severity=e.severity, message=e.message,
                            line_numbers=tuple(e.line_numbers or ())) for e in claim.edits),
        patient=patient,
        coverage=coverage,
        referral_id=str(claim.referral_id),
        referring_provider=_provider_facts(referring) if referring else None,
        frequency=claim.frequency,
        # A replacement or void names the payer's number of the claim it corrects (REF*F8).
        payer_claim_number=claim.original_payer_claim_number or (
            claim.payer_claim_number if claim.frequency in ("7", "8") else None),
        patient_control_number=claim.patient_control_number,
        narrative=claim.narrative or "",
    )


def exportable(session: Session, actor: Actor, claim_id: uuid.UUID) -> Claim:
    """A claim of the caller's organization that the caller may send out; only billing staff export."""
    claim = get_claim(session, actor, claim_id)
    access.require_role(actor, *BILLING_ROLES)
    return claim


def record_export(session: Session, actor: Actor, claim: Claim, fmt: str, *, batch_id: uuid.UUID | None = None) -> int:
    """Add the export row and its ``claim.export_<fmt>`` audit row to the caller's transaction."""
    record = ClaimExport(claim_id=claim.id, format=fmt, exported_by_user_id=actor.user_id, batch_id=batch_id)
    session.add(record)
    session.flush()
    audit.record(session, actor, f"claim.export_{fmt}", object_type="claim", object_id=claim.id,
                 organization_id=claim.billing_organization_id, referral_id=claim.referral_id,
                 details={"export_id": record.id})
    return record.id


@dataclass(frozen=True)
class Export:
    """A claim written out for a payer: the claim, its interchange (or resource) text, and its export number."""

    claim: Claim
    text: str
    export_id: int
    control_number: int | None = None


# A claim may go out (again) as an 837D in these statuses: ready the first time; rejected, fixed and sent as a new
# original; submitted again when the file was lost on the way (same claim, new interchange); corrected.
SENDABLE = frozenset({"ready", "rejected", "submitted", "corrected"})
BATCH_LIMIT = 500


def _next_control_number(session: Session, organization_id: uuid.UUID) -> int:
    """The practice's next interchange control number: one more than its last, never reused."""
    # Serialize the practice's exports so two at once cannot take the same number (PostgreSQL row lock;
    # SQLite serializes writers anyway).
    session.execute(sa.select(Organization.id).where(Organization.id == organization_id).with_for_update())
    last = session.scalar(sa.select(sa.func.max(ClaimBatch.control_number))
                          .where(ClaimBatch.organization_id == organization_id))
    try:
        return next_control_number(last)
    except ClaimChangeError as exc:
        raise Conflict(f"No interchange control number is left: {exc}") from None


def _sendable(claim: Claim) -> None:
    if claim.status == "hold" or any(edit.severity == "hold" for edit in claim.edits):
        holds = [edit.message for edit in claim.edits if edit.severity == "hold"]
        raise Conflict("This claim cannot be sent yet: " + " ".join(holds), {"holds": holds, "edits": holds})
    if claim.status not in SENDABLE:
        raise Conflict(f"The claim is already {lifecycle.STATUS_WORDS.get(claim.status, claim.status)}; "
                       "it is not sent again as an original")


def _send_837d(session: Session, actor: Actor, rows: list[Claim], *, now: datetime | None) -> tuple[ClaimBatch, str]:
    """Build, validate and record one interchange of ``rows`` (one practice, one payer), and mark each claim
    submitted. Adds to the caller's transaction; a refusal raises before anything is flushed that the caller's
    rollback would not remove."""
    models = []
    for row in rows:
        model = claim_model(session, row)
        holds = export_holds(model)
        if holds:
            # Checked against today's facts, whatever the stored claim says: nothing is recorded.
            messages = [edit.message for edit in holds]
            raise Conflict("This claim cannot be sent yet: " + " ".join(messages), {"holds": messages})
        if model.coverage is None:
            raise Conflict("The patient has no coverage on file, so there is no payer to send an 837D to")
        correction = session.scalar(sa.select(Claim.id).where(Claim.original_claim_id == row.id).limit(1))
        if correction is not None:
            raise Conflict(f"This claim was replaced or voided by claim {correction}; send that one instead")
        # The PWK the payer wants names the claim's stored attachment package, numbered now if it has none yet.
        model = claim_attachments.with_package(session, actor, row, model)
        if row.patient_control_number is None:
            row.patient_control_number = claim_control_number(model)
            model = replace(model, patient_control_number=row.patient_control_number)
        models.append(model)
    organization = rows[0].billing_organization
    billing = models[0].billing_organization
    control = _next_control_number(session, rows[0].billing_organization_id)
    submitter = Submitter(name=billing.name, contact_name="BILLING OFFICE", phone=organization.phone)
    payer_id = models[0].coverage.payer_id if models[0].coverage else ""
    try:
        text = to_837d_batch(models, sender_id=billing.tax_id, receiver_id=payer_id,
                             interchange_control_number=control, group_control_number=control,
                             created_at=now or utcnow(), submitter=submitter)
    except ExportError as exc:
        raise Conflict(f"The claims cannot be written as an 837D: {exc}") from None
    problems = validate_837d(text)
    if problems:
        # A file a payer would reject never leaves; the clerk sees what to fix.
        raise Conflict("The claim is missing data an 837D needs; fix these and export again", {"x12": problems})
    batch = ClaimBatch(organization_id=rows[0].billing_organization_id, control_number=control, payer_id=payer_id,
                       claim_ids=[str(row.id) for row in rows], interchange=text,
                       created_by_user_id=actor.user_id)
    session.add(batch)
    session.flush()
    for row in rows:
        record_export(session, actor, row, "x12", batch_id=batch.id)
        note_text = f"Sent as an 837D in interchange {control}"
        if row.status == "submitted":
            lifecycle.note(session, actor, row, f"Sent again as an 837D in interchange {control}")
        else:
            lifecycle.change_status(session, actor, row, "submitted", note_text)
        row.submitted_at = utcnow()
    return batch, text


def export_837d(session: Session, actor: Actor, claim_id: uuid.UUID, *, now: datetime | None = None) -> Export:
    """The claim as an 837D interchange, in one transaction: checked, built with the practice's next interchange
    control number, validated, then recorded as an export with its audit row; the claim becomes submitted.

    A claim that cannot become a valid 837D (on hold, no coverage, data an 837D needs is missing) is refused with
    409 and the problems, and nothing is recorded: no file left the practice, so there is no export to account
    for, and its interchange number is not used."""
    claim = exportable(session, actor, claim_id)
    _sendable(claim)
    batch, text = _send_837d(session, actor, [claim], now=now)
    export_id = session.scalar(sa.select(sa.func.max(ClaimExport.id)).where(ClaimExport.batch_id == batch.id))
    session.commit()
    return Export(claim=claim, text=text, export_id=int(export_id or 0), control_number=batch.control_number)


def export_batch(session: Session, actor: Actor, claim_ids: list[uuid.UUID], *,
                 now: datetime | None = None) -> ClaimBatch:
    """Many ready claims of the caller's practice for one payer as one 837D interchange (``POST /claim-batches``).

    Unknown claims and other practices' claims are not found (404); claims on hold or already sent, claims for
    different payers, and claims whose data an 837D needs is missing are refused (409/422). A refusal records
    nothing."""
    access.require_role(actor, *BILLING_ROLES)
    organization_id, _ = access.membership(actor)
    if not claim_ids:
        raise ValidationFailed("Choose at least one claim to send", {"claim_ids": ["Choose at least one claim."]})
    if len(claim_ids) > BATCH_LIMIT:
        raise ValidationFailed(f"A batch holds at most {BATCH_LIMIT} claims",
                               {"claim_ids": [f"At most {BATCH_LIMIT} claims."]})
    unique_ids = list(dict.fromkeys(claim_ids))
    if len(unique_ids) != len(claim_ids):
        raise ValidationFailed("A claim was chosen twice", {"claim_ids": ["Each claim once."]})
    rows = [get_claim(session, actor, claim_id) for claim_id in unique_ids]
    problems: dict[str, list[str]] = {}
    for row in rows:
        if row.status != "ready" and row.status != "rejected":
            words = lifecycle.STATUS_WORDS.get(row.status, row.status)
            problems[str(row.id)] = [f"The claim is {words}; only ready claims go in a batch."]
    if problems:
        raise Conflict("Some chosen claims are not ready to send", {"claim_ids": problems})
    payers = {row.payer_id for row in rows}
    if None in payers:
        raise Conflict("A chosen claim's patient has no coverage on file, so there is no payer to send it to",
                       {"claim_ids": {str(r.id): ["No payer."] for r in rows if r.payer_id is None}})
    if len(payers) > 1:
        raise ValidationFailed("A batch goes to one payer; the chosen claims name several",
                               {"claim_ids": {str(r.id): [f"Payer {r.payer_id}."] for r in rows}})
    batch, _ = _send_837d(session, actor, rows, now=now)
    audit.record(session, actor, "claim.export_batch", object_type="claim_batch", object_id=batch.id,
                 organization_id=organization_id, details={"claims": len(rows), "control_number": batch.control_number})
    session.commit()
    return batch


def get_batch(session: Session, actor: Actor, batch_id: uuid.UUID) -> ClaimBatch:
    batch = session.get(ClaimBatch, batch_id)
    if batch is None or batch.organization_id != actor.organization_id:
        # Another practice's file: not found, like one that does not exist (outsiders learn nothing).
        raise NotFound("Claim batch not found")
    access.require_role(actor, *BILLING_ROLES)
    audit.record(session, actor, "claim.batch_read", object_type="claim_batch", object_id=batch.id,
                 organization_id=batch.organization_id, details={"claims": len(batch.claim_ids)})
    session.commit()
    return batch


def edit_narrative(session: Session, actor: Actor, claim_id: uuid.UUID, text: str) -> Claim:
    """Billing's own claim narrative (NTE*ADD), before the claim is sent; audited with the old and new text's
    lengths (the text itself can name the patient's care)."""
    claim = exportable(session, actor, claim_id)
    if claim.status not in lifecycle.NARRATIVE_EDITABLE:
        raise Conflict(f"The claim is already {lifecycle.STATUS_WORDS.get(claim.status, claim.status)}; its "
                       "narrative went out with it and is changed only in a corrected claim")
    try:
        cleaned = normalize_narrative(text)
    except NarrativeError as exc:
        raise ValidationFailed(f"The narrative cannot be used: {exc}", {"narrative": [str(exc)]}) from None
    previous = claim.narrative or ""
    claim.narrative = cleaned
    claim.narrative_edited = True
    claim.updated_at = utcnow()
    lifecycle.note(session, actor, claim, "Narrative edited by billing")
    audit.record(session, actor, "claim.narrative_edit", object_type="claim", object_id=claim.id,
                 organization_id=claim.billing_organization_id, referral_id=claim.referral_id,
                 details={"previous_length": len(previous), "length": len(cleaned)})
    session.commit()
    return claim


def export_fhir(session: Session, actor: Actor, claim_id: uuid.UUID) -> Export:
    """The claim as a FHIR R4 Claim resource (JSON text), recorded as an export with its audit row."""
    claim = exportable(session, actor, claim_id)
    model = claim_model(session, claim)
    export_id = record_export(session, actor, claim, "fhir")
    text = json.dumps(to_fhir_claim(model))
    session.commit()
    return Export(claim=claim, text=text, export_id=export_id)


# -- fee schedules ---------------------------------------------------------------------------------


def replace_fee_schedule(session: Session, actor: Actor, organization_id: uuid.UUID,
                         fees: dict[str, Decimal]) -> dict[str, Decimal]:
    org = access.get_organization(session, actor, organization_id)
    access.require_role(actor, Role.ADMIN, Role.ORG_ADMIN, Role.BILLING)
    bad = [code for code in fees if not (len(code) == 5 and code[0] == "D" and code[1:].isdigit())]
    if bad:
        raise ValidationFailed("Fee schedule keys are CDT code numbers like D0707",
                               {code: ["Not a CDT code number."] for code in bad})
    session.execute(sa.delete(FeeScheduleEntry).where(FeeScheduleEntry.organization_id == org.id))
    session.add_all(FeeScheduleEntry(organization_id=org.id, code=code, amount=amount) for code, amount in fees.items())
    session.flush()
    rechecked = recheck_organization(session, actor, org.id)
    audit.record(session, actor, "fee_schedule.replace", object_type="organization", object_id=org.id,
                 organization_id=org.id, details={"codes": len(fees), "claims_rechecked": rechecked})
    session.commit()
    return fee_schedule(session, org.id)


def read_fee_schedule(session: Session, actor: Actor, organization_id: uuid.UUID) -> dict[str, Decimal]:
    org = access.get_organization(session, actor, organization_id)
    return fee_schedule(session, org.id)


# CSV of a fee schedule: a header line ``code,fee`` then one code per line (``D0140,65.00``).
FEE_CSV_HEADER = ("code", "fee")
FEE_CSV_MAX_ROWS = 1000
_CDT_CODE = re.compile(r"^D[0-9]{4}$")


def fee_schedule_csv(session: Session, actor: Actor, organization_id: uuid.UUID) -> str:
    schedule = read_fee_schedule(session, actor, organization_id)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(FEE_CSV_HEADER)
    for code, amount in sorted(schedule.items()):
        writer.writerow((code, f"{amount:.2f}"))
    return out.getvalue()


def parse_fee_schedule_csv(text: str) -> dict[str, Decimal]:
    """The schedule a CSV describes; every bad line is named in plain words (the first line may be the
    header; a ``$`` or thousands comma in a fee is accepted)."""
    rows = [(number, row) for number, row in enumerate(csv.reader(io.StringIO(text.lstrip("\ufeff"))), start=1)
            if any(cell.strip() for cell in row)]
    if rows and rows[0][1][0].strip().lower() == "code":
        rows = rows[1:]
    if len(rows) > FEE_CSV_MAX_ROWS:
        raise ValidationFailed(f"A fee schedule has at most {FEE_CSV_MAX_ROWS} codes",
                               {"csv": [f"The file has {len(rows)} lines of fees."]})
    fees: dict[str, Decimal] = {}
    problems: list[str] = []
    for number, row in rows:
        if len(row) < 2:
            problems.append(f"Line {number}: give a code and a fee separated by a comma.")
            continue
        code, raw = row[0].strip().upper(), row[1].strip().replace("$", "").replace(",", "")
        if not _CDT_CODE.match(code):
            problems.append(f"Line {number}: {code[:20] or 'the code'} is not a CDT code number like D0140.")
            continue
        try:
            amount = Decimal(raw)
        except InvalidOperation:
            problems.append(f"Line {number}: the fee for {code} is not a number.")
            continue
        if not amount.is_finite() or amount < 0 or amount > Decimal("99999999.99") or amount != amount.quantize(
                Decimal("0.01")):
            problems.append(f"Line {number}: the fee for {code} must be zero or more, in dollars and cents.")
            continue
        if code in fees:
            problems.append(f"Line {number}: {code} is listed twice.")
            continue
        fees[code] = amount.quantize(Decimal("0.01"))
    if problems:
        raise ValidationFailed("The fee schedule file has problems; nothing was changed", {"csv": problems[:50]})
    return fees


def import_fee_schedule_csv(session: Session, actor: Actor, organization_id: uuid.UUID,
                            text: str) -> dict[str, Decimal]:
    """Replace the schedule with the one a CSV file describes (the same rule as the JSON replace)."""
    access.get_organization(session, actor, organization_id)
    access.require_role(actor, Role.ADMIN, Role.ORG_ADMIN, Role.BILLING)
    return replace_fee_schedule(session, actor, organization_id, parse_fee_schedule_csv(text))
