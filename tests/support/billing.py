"""Facts for the claims-engine tests: two practices, their people, and builders for images and visits.

Entity A (Alder Family Dental) captures; entity B (Birch Endodontics) reads, as in docs/billing.md, "Worked examples".
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

from referral.billing.model import (
    Address,
    Claim,
    CoverageFacts,
    ImageFacts,
    OrganizationFacts,
    PatientFacts,
    PriorLine,
    ProviderFacts,
    VisitFacts,
)
from referral.billing.profiles import PayerProfile, get_profile

CAPTURED = date(2025, 3, 10)
SIGNED_AT = datetime(2025, 3, 11, 15, 30, tzinfo=UTC)
SIGNED = SIGNED_AT.date()

ALDER = OrganizationFacts(
    id="org-alder",
    name="Alder Family Dental",
    npi="1234567893",
    tax_id="111111111",
    address=Address("1 Main St", "Springfield", "IL", "62701"),
    fee_schedule={
        "D0140": Decimal("60.00"),
        "D0210": Decimal("150.00"),
        "D0220": Decimal("30.00"),
        "D0230": Decimal("25.00"),
        "D0272": Decimal("45.00"),
        "D0350": Decimal("20.00"),
        "D0703": Decimal("15.00"),
        "D0707": Decimal("20.00"),
        "D0708": Decimal("18.00"),
        "D0709": Decimal("110.00"),
        "D9996": Decimal("0.00"),
    },
)
BIRCH = OrganizationFacts(
    id="org-birch",
    name="Birch Endodontics",
    npi="1245319599",
    tax_id="222222222",
    address=Address("9 Oak Ave", "Chicago", "IL", "60601"),
    fee_schedule={"D0391": Decimal("40.00"), "D0140": Decimal("75.00"), "D9996": Decimal("10.00")},
)
GP = ProviderFacts("prov-gp", ALDER.id, "Gina", "Park", "1000000004", "1223G0001X", "DDS")
REMOTE_DENTIST = ProviderFacts("prov-remote", ALDER.id, "Ravi", "Moss", "1000000012", "1223G0001X", "DMD")
ENDODONTIST = ProviderFacts("prov-endo", BIRCH.id, "Erin", "Lake", "1000000020", "1223E0200X", "DDS, MS")
HYGIENIST_ID = "prov-hygienist"
HYGIENIST = ProviderFacts(HYGIENIST_ID, ALDER.id, "Hana", "Lee", "1000000038", "124Q00000X", "RDH")

PATIENT = PatientFacts("pat-1", "Pat", "Doe", date(1980, 5, 17), "F", "IL")
# No shipped profile names this payer, so the product defaults apply.
COVERAGE = CoverageFacts("ACME-DENTAL", "Acme Dental PPO", "M123")


def tables_profile() -> PayerProfile:
    """The payer the worked examples of docs/billing.md assume: photos counted per image, D0391 once per report."""
    return replace(
        get_profile("default"), id="tables-example", name="Tables example", photo_unit="image", d0391_unit="report"
    )


def image(
    image_id: str,
    kind: str,
    *teeth: str,
    area: str | None = None,
    on: date = CAPTURED,
    org: OrganizationFacts = ALDER,
    retake_of: str | None = None,
    nondiagnostic: bool = False,
    series_id: str | None = None,
    place_of_service: str | None = None,
) -> ImageFacts:
    return ImageFacts(
        id=image_id,
        kind=kind,
        captured_on=on,
        capturing_organization_id=org.id,
        capturing_provider_id=HYGIENIST_ID,
        teeth=teeth,
        area=area,
        retake_of=retake_of,
        nondiagnostic=nondiagnostic,
        series_id=series_id,
        place_of_service=place_of_service,
    )


def visit(
    *images: ImageFacts,
    reader: ProviderFacts | None = ENDODONTIST,
    reader_org: OrganizationFacts | None = BIRCH,
    capturing: OrganizationFacts = ALDER,
    signed_at: datetime | None = SIGNED_AT,
    mode: str = "asynchronous",
    place_of_service: str = "11",
    evaluation: bool = False,
    office_read: bool = False,
    office_evaluation: bool = False,
    prior: tuple[PriorLine, ...] = (),
    coverage: CoverageFacts | None = COVERAGE,
    capturing_providers: tuple[ProviderFacts, ...] = (HYGIENIST,),
    reason: str | None = None,
    sent_on: date | None = None,
) -> VisitFacts:
    return VisitFacts(
        referral_id="ref-0001",
        patient=PATIENT,
        coverage=coverage,
        capturing_organization=capturing,
        referring_provider=GP,
        images=images,
        mode=mode,
        place_of_service=place_of_service,
        reader_organization=reader_org if reader is not None else None,
        reader_provider=reader,
        report_signed_at=signed_at if reader is not None else None,
        evaluation_performed=evaluation,
        capturing_office_interpreted=office_read,
        capturing_office_evaluation=office_evaluation,
        prior_lines=prior,
        capturing_providers=capturing_providers,
        reason=reason,
        sent_on=sent_on,
    )


def rows(claim: Claim) -> list[tuple[str, str | None, int]]:
    """Each line as (code, where, quantity); where is a tooth, "a,b" for several teeth, "area NN", or None."""
    out = []
    for line in claim.lines:
        teeth = [t for t in (line.tooth, *line.teeth) if t]
        where = ",".join(teeth) if teeth else (f"area {line.area}" if line.area else None)
        out.append((line.code, where, line.quantity))
    return out


def units(claim: Claim) -> Counter[str]:
    counts: Counter[str] = Counter()
    for line in claim.lines:
        counts[line.code] += line.quantity
    return counts


def by_role(claims: list[Claim]) -> dict[str, Claim]:
    roles = [claim.role for claim in claims]
    assert len(set(roles)) == len(roles), f"one claim per role expected, got {roles}"
    return {claim.role: claim for claim in claims}


def rules_of(claim: Claim) -> list[str]:
    return [edit.rule for edit in claim.edits]
