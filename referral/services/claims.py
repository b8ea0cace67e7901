"""Claims: the facts of a referral handed to the billing engine, its claims kept per billing
organization, and each organization shown only its own."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from referral.billing import model as bm
from referral.billing.engine import generate_claims
from referral.errors import Conflict, NotFound, ValidationFailed
from referral.models import (
    Claim,
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
from referral.services import access, audit, outbox
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
                                address=_address(org), fee_schedule=fee_schedule(session, org.id))


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
        )
    return facts, coverage


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


def _fingerprint(role: str, place: str, lines: list[tuple[Any, ...]], edits: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    return role, place, tuple(lines), tuple(edits)


def _stored_shape(claim: Claim) -> tuple[Any, ...]:
    return _fingerprint(
        claim.role, claim.place_of_service,
        [(line.code, line.tooth, tuple(line.teeth or ()), line.area, line.surfaces, line.quantity,
          Decimal(line.fee), line.date_of_service, line.rule) for line in claim.lines],
        [(edit.rule, edit.severity, edit.message) for edit in claim.edits],
    )


def _generated_shape(claim: bm.Claim) -> tuple[Any, ...]:
    return _fingerprint(
        claim.role, claim.place_of_service,
        [(line.code, line.tooth, tuple(line.teeth), line.area, line.surfaces, line.quantity, Decimal(line.fee),
          line.date_of_service, line.rule) for line in claim.lines],
        [(edit.rule, edit.severity, edit.message) for edit in claim.edits],
    )


def regenerate(session: Session, actor: Actor, referral: Referral) -> list[Claim]:
    """Bring the stored claims in line with the facts; added to the caller's transaction.

    A claim whose lines and edits did not change is left alone; a changed one is rewritten and its
    generation counted. ``claims.ready`` goes to every organization whose claim is new or changed.
    """
    generated = generate_claims(visit_facts(session, referral))
    existing = {claim.billing_organization_id: claim for claim in session.scalars(
        sa.select(Claim).where(Claim.referral_id == referral.id))}
    changed: list[Claim] = []
    for draft in generated:
        organization_id = uuid.UUID(draft.billing_organization.id)
        row = existing.pop(organization_id, None)
        if row is not None and _stored_shape(row) == _generated_shape(draft):
            continue
        if row is None:
            row = Claim(referral_id=referral.id, billing_organization_id=organization_id, generation=0)
            session.add(row)
        row.role = draft.role
        row.rendering_provider_id = uuid.UUID(draft.rendering_provider.id)
        row.referring_provider_id = uuid.UUID(draft.referring_provider.id) if draft.referring_provider else None
        row.place_of_service = draft.place_of_service
        row.date_of_service = draft.date_of_service
        row.payer_id = draft.coverage.payer_id if draft.coverage else None
        row.payer_name = draft.coverage.payer_name if draft.coverage else None
        row.payer_profile = draft.payer_profile
        row.frequency = draft.frequency
        row.status = draft.status
        row.total = draft.total
        row.generation = (row.generation or 0) + 1
        row.lines = [
            ClaimLine(number=line.number, code=line.code, tooth=line.tooth, teeth=list(line.teeth), area=line.area,
                      surfaces=line.surfaces, quantity=line.quantity, fee=line.fee,
                      date_of_service=line.date_of_service, control_number=line.control_number,
                      explanation=line.explanation, rule=line.rule, image_ids=list(line.image_ids))
            for line in draft.lines
        ]
        row.edits = [ClaimEdit(rule=edit.rule, severity=edit.severity, message=edit.message,
                               line_numbers=list(edit.line_numbers)) for edit in draft.edits]
        changed.append(row)
    for stale in existing.values():
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
        .options(selectinload(Claim.lines), selectinload(Claim.edits), selectinload(Claim.billing_organization),
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
    if claim is None:
        raise NotFound("Claim not found")
    if claim.billing_organization_id != actor.organization_id:
        # Another organization's claim: not found, like one that does not exist, and the attempt is audited.
        audit.record(session, actor, "claim.access", object_type="claim", object_id=claim_id,
                     organization_id=claim.billing_organization_id, referral_id=claim.referral_id, outcome="denied")
        session.commit()
        raise NotFound("Claim not found")
    access.require_role(actor, *CLAIM_READ_ROLES)
    return claim


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
                         image_ids=tuple(line.image_ids or ()))
            for line in claim.lines
        ),
        edits=tuple(bm.Edit(rule=e.rule, severity=e.severity, message=e.message,
                            line_numbers=tuple(e.line_numbers or ())) for e in claim.edits),
        patient=patient,
        coverage=coverage,
        referral_id=str(claim.referral_id),
        referring_provider=_provider_facts(referring) if referring else None,
        frequency=claim.frequency,
    )


def exportable(session: Session, actor: Actor, claim_id: uuid.UUID) -> Claim:
    """A claim of the caller's organization that the caller may send out; only billing staff export."""
    claim = get_claim(session, actor, claim_id)
    access.require_role(actor, *BILLING_ROLES)
    return claim


def record_export(session: Session, actor: Actor, claim: Claim, fmt: str) -> int:
    """Add the export row and its ``claim.export_<fmt>`` audit row to the caller's transaction."""
    record = ClaimExport(claim_id=claim.id, format=fmt, exported_by_user_id=actor.user_id)
    session.add(record)
    session.flush()
    audit.record(session, actor, f"claim.export_{fmt}", object_type="claim", object_id=claim.id,
                 organization_id=claim.billing_organization_id, referral_id=claim.referral_id,
                 details={"export_id": record.id})
    return record.id


def export(session: Session, actor: Actor, claim_id: uuid.UUID, fmt: str) -> tuple[Claim, bm.Claim, int]:
    """A claim for an exporter, with a fresh interchange number; only billing staff export."""
    claim = exportable(session, actor, claim_id)
    export_id = record_export(session, actor, claim, fmt)
    model = claim_model(session, claim)
    session.commit()
    return claim, model, export_id


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
    audit.record(session, actor, "fee_schedule.replace", object_type="organization", object_id=org.id,
                 organization_id=org.id, details={"codes": len(fees)})
    session.commit()
    return fee_schedule(session, org.id)


def read_fee_schedule(session: Session, actor: Actor, organization_id: uuid.UUID) -> dict[str, Decimal]:
    org = access.get_organization(session, actor, organization_id)
    return fee_schedule(session, org.id)
