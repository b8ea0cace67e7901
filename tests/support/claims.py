"""Sample claims built straight from the dataclasses, for the 837D and FHIR exporters: a split of one visit
between a capturing office and a remote endodontist, a claim of one office that captured and read, and a child
covered as a dependant on Medicaid."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from referral.billing.model import (
    Address,
    Claim,
    ClaimLine,
    CoverageFacts,
    Edit,
    OrganizationFacts,
    PatientFacts,
    ProviderFacts,
    SubscriberFacts,
)
from referral.billing.x12 import Submitter

DOS = date(2025, 3, 10)
CREATED_AT = datetime(2025, 3, 11, 9, 30, tzinfo=UTC)
SPLIT_REFERRAL = "3f2a9c1e-5b7d-4e21-9a0c-2d4e6f8a1b3c"
SINGLE_REFERRAL = "8c41d0aa-1f3e-4b6a-b2d9-77e0c5a93f10"
CHILD_REFERRAL = "b7e2f915-0c4d-4a8e-9e13-5d6c7b8a9f01"

NORTHSIDE = OrganizationFacts(
    id="org-northside",
    name="Northside Family Dental",
    npi="1234567893",
    tax_id="12-3456789",
    address=Address("100 Main St", "Madison", "WI", "537031234", line2="Suite 2"),
)
LAKESHORE = OrganizationFacts(
    id="org-lakeshore",
    name="Lakeshore Endodontics",
    npi="1543210987",
    tax_id="98-7654321",
    address=Address("20 Lake Rd", "Milwaukee", "WI", "532021234"),
)
GP = ProviderFacts("prov-gp", NORTHSIDE.id, "Grace", "Patel", "1987654328", "1223G0001X", "DDS")
HYGIENIST = ProviderFacts("prov-rdh", NORTHSIDE.id, "Hana", "Kim", "1678901236", "124Q00000X", "RDH")
ENDODONTIST = ProviderFacts("prov-endo", LAKESHORE.id, "Omar", "Reyes", "1765432103", "1223E0200X", "DDS, MS")

ADULT = PatientFacts(
    "pat-adult", "Maria", "Lopez", date(1979, 5, 14), "F", "WI", Address("5 Elm St", "Madison", "WI", "53703")
)
CHILD = PatientFacts(
    "pat-child", "Leo", "Nguyen", date(2016, 9, 1), "M", "WI", Address("77 Oak Ave", "Madison", "WI", "53704")
)
DELTA = CoverageFacts("CDWI1", "Delta Dental of Wisconsin", "DDW123456789", "GRP-77", "self")
CHILD_SUBSCRIBER = SubscriberFacts(first_name="Thi", last_name="Nguyen")
CHILD_MEDICAID = CoverageFacts("WIMCD", "Wisconsin Medicaid", "MA0099887766", None, "child", CHILD_SUBSCRIBER)

SUBMITTER = Submitter("Northside Family Dental", "Billing Office", phone="(608) 555-0100")


def line(number: int, code: str, fee: str, control: str, *, quantity: int = 1, **site: object) -> ClaimLine:
    return ClaimLine(
        number=number,
        code=code,
        quantity=quantity,
        fee=Decimal(fee),
        date_of_service=DOS,
        control_number=control,
        explanation=f"{code} as the engine explains it to billing staff",
        rule=f"test.{code.lower()}",
        image_ids=(f"img-{control}",),
        **site,
    )


def capture_claim() -> Claim:
    """The capturing office's half of a split: two periapicals (teeth 19 and 30) and the visit's photos."""
    return Claim(
        billing_organization=NORTHSIDE,
        role="capture",
        rendering_provider=HYGIENIST,
        place_of_service="11",
        date_of_service=DOS,
        payer_profile="default",
        lines=(
            line(1, "D0707", "35", "CAP-3F2A-1", tooth="19"),
            line(2, "D0707", "35", "CAP-3F2A-2", tooth="30"),
            line(3, "D0703", "22.50", "CAP-3F2A-3"),
        ),
        edits=(Edit("capture.documentation", "warning", "Capture note attached"),),
        patient=ADULT,
        coverage=DELTA,
        referral_id=SPLIT_REFERRAL,
    )


def reader_claim() -> Claim:
    """The remote endodontist's half: D0391 for the two radiographs read, D9996 for the asynchronous consult."""
    return Claim(
        billing_organization=LAKESHORE,
        role="interpretation",
        rendering_provider=ENDODONTIST,
        place_of_service="02",
        date_of_service=DOS,
        payer_profile="default",
        lines=(
            line(1, "D0391", "40", "INT-3F2A-1", quantity=2),
            line(2, "D9996", "30", "INT-3F2A-2"),
        ),
        edits=(),
        patient=ADULT,
        coverage=DELTA,
        referral_id=SPLIT_REFERRAL,
        referring_provider=GP,
    )


def single_claim() -> Claim:
    """One office captured and read: first PA, two more PAs of the upper right, and a pair of bitewings."""
    return Claim(
        billing_organization=NORTHSIDE,
        role="single",
        rendering_provider=GP,
        place_of_service="11",
        date_of_service=DOS,
        payer_profile="default",
        lines=(
            line(1, "D0220", "31", "SGL-8C41-1", tooth="3"),
            line(2, "D0230", "26", "SGL-8C41-2", quantity=2, area="10"),
            line(3, "D0272", "48.50", "SGL-8C41-3", teeth=("2", "3", "30", "31")),
        ),
        edits=(),
        patient=ADULT,
        coverage=DELTA,
        referral_id=SINGLE_REFERRAL,
    )


def child_claim() -> Claim:
    """A child covered as a dependant on a parent's Medicaid plan, seen at a school site."""
    return Claim(
        billing_organization=NORTHSIDE,
        role="single",
        rendering_provider=GP,
        place_of_service="03",
        date_of_service=DOS,
        payer_profile="medicaid-wi",
        lines=(
            line(1, "D0140", "55", "SGL-B7E2-1"),
            line(2, "D0220", "31", "SGL-B7E2-2", tooth="K"),
            line(3, "D1354", "24", "SGL-B7E2-3", tooth="S", surfaces="DO"),
        ),
        edits=(),
        patient=CHILD,
        coverage=CHILD_MEDICAID,
        referral_id=CHILD_REFERRAL,
    )


def all_claims() -> list[Claim]:
    return [capture_claim(), reader_claim(), single_claim(), child_claim()]
