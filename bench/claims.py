"""Claims: the billing engine and the 837D export, in-process, as the server runs them when a report is signed
and when a claim is exported (``generate_claims``, then per claim ``to_837d`` and ``validate_837d``).

Throughput is measured over 10,000 signed referrals of varied shape (1-8 images of mixed kinds, split and
single-entity practices, several payers); the cost per referral over referrals of 1, 10 and 100 images.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from bench.common import BenchError, heading, line, median
from bench.context import Run
from referral.billing.amend import with_attachment_control_number
from referral.billing.engine import generate_claims
from referral.billing.model import (
    Address,
    Claim,
    CoverageFacts,
    ImageFacts,
    OrganizationFacts,
    PatientFacts,
    ProviderFacts,
    VisitFacts,
)
from referral.billing.profiles import load_profile
from referral.billing.x12 import Submitter, to_837d
from referral.billing.x12_validator import validate_837d
from referral.validation import npi_with_check_digit

REFERRALS = 10_000
REFERRALS_QUICK = 2_000
SIZES = (1, 10, 100)

_FEES = {code: Decimal(amount) for code, amount in {
    "D0140": "60.00", "D0210": "150.00", "D0220": "30.00", "D0230": "25.00", "D0270": "25.00", "D0272": "45.00",
    "D0274": "60.00", "D0330": "110.00", "D0350": "20.00", "D0391": "40.00", "D0701": "70.00", "D0703": "15.00",
    "D0707": "20.00", "D0708": "18.00", "D9995": "10.00", "D9996": "10.00"}.items()}
CAPTURING = OrganizationFacts("org-capture", "Riverside Family Dental", npi_with_check_digit("123456789"),
                              "123456789", Address("100 Main St", "Sacramento", "CA", "958141234"), _FEES)
READING = OrganizationFacts("org-reader", "Valley Endodontics", npi_with_check_digit("223456789"), "987654321",
                            Address("9 Oak Ave", "Fresno", "CA", "936501234"), _FEES)
DENTIST = ProviderFacts("prov-gp", CAPTURING.id, "Alex", "Rivera", npi_with_check_digit("133456789"),
                        "1223G0001X", "DDS")
OWN_READER = ProviderFacts("prov-own", CAPTURING.id, "Morgan", "Reed", npi_with_check_digit("143456789"),
                           "1223G0001X", "DMD")
ENDODONTIST = ProviderFacts("prov-endo", READING.id, "Erin", "Lake", npi_with_check_digit("233456789"),
                            "1223E0200X", "DDS, MS")
PAYERS = (("60054", "Example Dental Plan"), ("MCD01", "State Medicaid"), ("PPO77", "Lakeside PPO"))
TEETH = [str(n) for n in (*range(2, 16), *range(18, 32))]
CAPTURED = date(2026, 1, 5)
SIGNED_AT = datetime(2026, 1, 6, 15, 30, tzinfo=UTC)
SUBMITTER = Submitter("Riverside Family Dental", "Billing Office", phone="9165550100")


def _images(referral: int, count: int) -> tuple[ImageFacts, ...]:
    """Periapicals of named teeth mostly, some bitewings and intra-oral photos, as capturing offices send."""
    images = []
    for number in range(count):
        choice = (referral + number) % 10
        kind = "periapical" if choice < 6 else "bitewing" if choice < 8 else "photo_intraoral"
        teeth = (TEETH[(referral * 3 + number) % len(TEETH)],) if kind == "periapical" else ()
        area = "10" if kind == "photo_intraoral" else None
        images.append(ImageFacts(id=f"img-{referral}-{number}", kind=kind, captured_on=CAPTURED,
                                 capturing_organization_id=CAPTURING.id, capturing_provider_id="prov-rdh",
                                 teeth=teeth, area=area))
    return tuple(images)


def visit(referral: int, images: int) -> VisitFacts:
    payer_id, payer_name = PAYERS[referral % len(PAYERS)]
    single = referral % 10 == 0  # one practice in ten reads its own remote site's images
    return VisitFacts(
        referral_id=f"0194c3b2-7f00-7000-8000-{referral:012d}",
        patient=PatientFacts(f"pat-{referral}", "Jane", f"Doe{referral}", date(1980, 1, 1) + timedelta(days=referral),
                             "F", "CA", Address("12 Oak Street", "Sacramento", "CA", "95816")),
        coverage=CoverageFacts(payer_id, payer_name, f"W{referral:09d}"),
        capturing_organization=CAPTURING,
        referring_provider=DENTIST,
        images=_images(referral, images),
        mode="synchronous" if referral % 7 == 0 else "asynchronous",
        place_of_service="03" if referral % 5 == 0 else "11",
        reader_organization=CAPTURING if single else READING,
        reader_provider=OWN_READER if single else ENDODONTIST,
        report_signed_at=SIGNED_AT,
        evaluation_performed=referral % 4 == 0,
    )


def _export(claim: Claim, control: int) -> str:
    if claim.coverage is None:
        raise BenchError("a claim without coverage")
    return to_837d([claim], sender_id=claim.billing_organization.tax_id, receiver_id=claim.coverage.payer_id,
                   interchange_control_number=control, group_control_number=control,
                   created_at=SIGNED_AT, submitter=SUBMITTER)


def process(facts: VisitFacts, control: int) -> tuple[int, int]:
    """What the server does for one signed referral: its claims, each exported and checked. Returns the
    number of claims and of claim lines."""
    claims = generate_claims(facts, load_profile(facts.coverage.payer_id if facts.coverage else None))
    lines = 0
    for generated in claims:
        # As the server numbers a claim's attachment package before the claim may be sent.
        claim = (with_attachment_control_number(generated, f"PKG{control:09d}") if generated.attachments
                 else generated)
        problems = validate_837d(_export(claim, control))
        if problems:
            raise BenchError(f"referral {facts.referral_id}: the 837D does not validate: {problems[:3]}")
        lines += len(claim.lines)
    return len(claims), lines


def _cost_ms(images: int, repetitions: int) -> float:
    facts = visit(1, images)
    process(facts, 1)
    samples = []
    for repetition in range(repetitions):
        started = time.perf_counter()
        process(facts, repetition + 1)
        samples.append((time.perf_counter() - started) * 1000)
    return median(samples)


def run(run: Run) -> None:
    count = REFERRALS_QUICK if run.quick else REFERRALS
    heading(f"5. Claims: generation and 837D export over {count:,} signed referrals")
    if run.quick:
        line("quick run", f"{count:,} referrals stand in for {REFERRALS:,}")
    visits = [visit(referral, 1 + referral % 8) for referral in range(count)]
    claims = lines = 0
    started = time.perf_counter()
    for number, facts in enumerate(visits, start=1):
        made, made_lines = process(facts, number)
        claims += made
        lines += made_lines
    seconds = time.perf_counter() - started
    if claims < count:
        raise BenchError(f"{count} signed referrals gave only {claims} claims")
    line("claims (each exported as a validated 837D)", claims)
    line("claim lines", lines)
    line("claims per second", claims / seconds)
    line("signed referrals per second", count / seconds)
    repetitions = {1: 200, 10: 100, 100: 20} if run.quick else {1: 1000, 10: 400, 100: 60}
    costs = {images: _cost_ms(images, repetitions[images]) for images in SIZES}
    for images, cost in costs.items():
        line(f"cost per referral with {images} image{'s' if images > 1 else ''}", cost, "ms (median)")
    growth = costs[100] / costs[10]
    run.record(
        claims_referrals=count,
        claims_generated=claims,
        claims_per_second=round(claims / seconds, 1),
        claims_referrals_per_second=round(count / seconds, 1),
        claims_cost_1_image_ms=round(costs[1], 3),
        claims_cost_10_images_ms=round(costs[10], 3),
        claims_cost_100_images_ms=round(costs[100], 3),
        claims_growth_ratio_10_vs_1=round(costs[10] / costs[1], 2),
        claims_growth_ratio_100_vs_10=round(growth, 2),
    )
    line("10 images / 1 image", costs[10] / costs[1])
    run.target("claims_growth_ratio_100_vs_10", "<=", 12)
