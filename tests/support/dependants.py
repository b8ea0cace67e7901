"""A child on her mother's plan: a capturing practice, a remote endodontist and the visit they bill (the
worked example of docs/claims-lifecycle.md)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from referral.billing.model import (
    Address,
    CoverageFacts,
    ImageFacts,
    OrganizationFacts,
    PatientFacts,
    ProviderFacts,
    SubscriberFacts,
    VisitFacts,
)

CAPTURED = date(2026, 4, 15)


READ_AT = datetime(2026, 4, 16, 14, 5, tzinfo=UTC)


MAPLE = OrganizationFacts(
    "org-maple",
    "Maple Family Dental",
    "1234567893",
    "11-1111111",
    Address("400 Maple Ave", "Springfield", "IL", "627011234"),
    {"D0707": Decimal("35")},
)


PATEL_ENDO = OrganizationFacts(
    "org-patel",
    "Patel Endodontics",
    "1098765435",
    "22-2222222",
    Address("9 Lake Dr", "Springfield", "IL", "627029876"),
    {"D0391": Decimal("40"), "D9996": Decimal("40")},
)


GP = ProviderFacts("prov-gp", MAPLE.id, "Grace", "Ortiz", "1000000046", "1223G0001X", "DDS")


LEE = ProviderFacts("prov-lee", MAPLE.id, "Jo", "Lee", "1000000053", "124Q00000X", "RDH")


PATEL = ProviderFacts("prov-patel", PATEL_ENDO.id, "Kiran", "Patel", "1000000061", "1223E0200X", "DDS, MS")


AVA = PatientFacts(
    "pat-ava", "Ava", "Rivera", date(2016, 5, 14), "F", "IL", Address("12 Oak St", "Springfield", "IL", "62701")
)


MARIA = SubscriberFacts("Maria", "Rivera", date(1988, 2, 3), "F", Address("12 Oak St", "Springfield", "IL", "62701"))


# The example PPO profile claims this payer id: filed as 12 (PPO), as in the worked example.
MARIAS_PLAN = CoverageFacts("EXAMPLE-PPO", "Example Dental Plan", "ABC123456789", "55001", "child", MARIA)


def ava_visit(coverage: CoverageFacts = MARIAS_PLAN) -> VisitFacts:
    return VisitFacts(
        referral_id="5b0c2d9e-4a31-4f6e-8d2b-7c1a9e3f6a20",
        patient=AVA,
        coverage=coverage,
        capturing_organization=MAPLE,
        referring_provider=GP,
        images=tuple(
            ImageFacts(f"pa-{tooth}", "periapical", CAPTURED, MAPLE.id, LEE.id, (tooth,)) for tooth in ("2", "3", "4")
        ),
        mode="asynchronous",
        place_of_service="11",
        reader_organization=PATEL_ENDO,
        reader_provider=PATEL,
        report_signed_at=READ_AT,
        capturing_providers=(LEE,),
    )
