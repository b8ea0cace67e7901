"""Properties that hold for any visit: generated images of every kind, retakes, several practices, any profile."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import UTC, date, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from referral.billing.catalogue import CAPTURE_AND_INTERPRETATION, CATALOGUE, twins_of
from referral.billing.engine import KINDS, generate_claims
from referral.billing.model import Claim, ImageFacts, PriorLine, VisitFacts
from referral.billing.profiles import PayerProfile, all_profiles
from tests.billing import ALDER, BIRCH, ENDODONTIST, REMOTE_DENTIST, tables_profile, visit

# No example database: a failure prints its example, and runs stay independent of each other.
FAST = settings(max_examples=100, deadline=None, database=None)

DAYS = [date(2017, 12, 1), date(2020, 12, 31), date(2021, 1, 1), date(2022, 12, 31), date(2025, 3, 10)]
TEETH = ["3", "14", "19", "29", "30", "A", "51"]
ORG_IDS = [ALDER.id, ALDER.id, ALDER.id, BIRCH.id, "org-third"]
TELEDENTISTRY = {"D9995", "D9996"}


@st.composite
def images(draw: st.DrawFn) -> tuple[ImageFacts, ...]:
    made: list[ImageFacts] = []
    for index in range(draw(st.integers(0, 9))):
        earlier = [image.id for image in made]
        retake_of = draw(st.one_of(st.none(), st.sampled_from([*earlier, "ghost"]))) if draw(st.booleans()) else None
        made.append(
            ImageFacts(
                id=f"img-{index}",
                kind=draw(st.sampled_from([*sorted(KINDS), "complete_series", "periapical", "bitewing"])),
                captured_on=draw(st.sampled_from(DAYS)),
                capturing_organization_id=draw(st.sampled_from(ORG_IDS)),
                capturing_provider_id="prov-hygienist",
                teeth=tuple(draw(st.lists(st.sampled_from(TEETH), max_size=3, unique=True))),
                area=draw(st.sampled_from([None, None, "00", "10", "40"])),
                retake_of=retake_of,
                nondiagnostic=draw(st.booleans()) and draw(st.booleans()),
                series_id=draw(st.sampled_from([None, None, "fmx-1", "fmx-2"])),
            )
        )
    return tuple(made)


@st.composite
def visits(draw: st.DrawFn) -> VisitFacts:
    # No reader yet, a dentist of the capturing practice, or another practice's specialist.
    reader, reader_org = draw(st.sampled_from([(None, None), (REMOTE_DENTIST, ALDER), (ENDODONTIST, BIRCH)]))
    signed_on = draw(st.one_of(st.none(), st.sampled_from(DAYS)))
    prior = draw(
        st.lists(
            st.builds(
                PriorLine,
                code=st.sampled_from(["D0210", "D0220", "D0230", "D0330", "D0707", "D9996", "D0274"]),
                date_of_service=st.sampled_from(DAYS),
                billing_organization_id=st.sampled_from([ALDER.id, BIRCH.id, None]),
                quantity=st.integers(1, 3),
            ),
            max_size=4,
        )
    )
    return visit(
        *draw(images()),
        reader=reader,
        reader_org=reader_org,
        signed_at=datetime(signed_on.year, signed_on.month, signed_on.day, 12, tzinfo=UTC) if signed_on else None,
        mode=draw(st.sampled_from(["asynchronous", "synchronous"])),
        place_of_service=draw(st.sampled_from(["11", "03", "12"])),
        evaluation=draw(st.booleans()),
        office_read=draw(st.booleans()),
        office_evaluation=draw(st.booleans()),
        prior=tuple(prior),
    )


profiles = st.sampled_from([*all_profiles(), tables_profile()])


def _codes_per_image(claim: Claim) -> dict[str, set[str]]:
    codes: dict[str, set[str]] = defaultdict(set)
    for line in claim.lines:
        for image_id in line.image_ids:
            codes[image_id].add(line.code)
    return codes


@FAST
@given(visits(), profiles)
def test_no_claim_bills_an_image_with_a_full_code_and_its_capture_only_twin_or_d0391(
    facts: VisitFacts, profile: PayerProfile
) -> None:
    for claim in generate_claims(facts, profile):
        for image_id, codes in _codes_per_image(claim).items():
            for code in codes:
                if CATALOGUE[code].category == CAPTURE_AND_INTERPRETATION:
                    assert not codes & (twins_of(code) | {"D0391"}), (image_id, codes)


@FAST
@given(visits(), profiles)
def test_d0230_never_appears_without_d0220_on_the_same_day_of_the_same_claim(
    facts: VisitFacts, profile: PayerProfile
) -> None:
    for claim in generate_claims(facts, profile):
        for line in claim.lines:
            if line.code == "D0230":
                assert any(
                    other.code == "D0220" and other.date_of_service == line.date_of_service for other in claim.lines
                )


@FAST
@given(visits(), profiles)
def test_a_claims_total_is_the_sum_of_its_line_charges(facts: VisitFacts, profile: PayerProfile) -> None:
    for claim in generate_claims(facts, profile):
        assert claim.lines
        assert claim.total == sum(line.fee * line.quantity for line in claim.lines)
        assert claim.status == ("hold" if any(edit.severity == "hold" for edit in claim.edits) else "ready")


@FAST
@given(visits(), profiles)
def test_before_the_report_is_signed_there_is_no_reading_claim_and_no_d0391(
    facts: VisitFacts, profile: PayerProfile
) -> None:
    unsigned = replace(facts, report_signed_at=None)

    claims = generate_claims(unsigned, profile)

    assert all(claim.role != "interpretation" for claim in claims)
    # Without a signed reading the only claim left is the capturing practice's own.
    assert all(claim.billing_organization.id == facts.capturing_organization.id for claim in claims)
    assert all(line.code not in {"D0391", *TELEDENTISTRY} for claim in claims for line in claim.lines)


@FAST
@given(visits(), profiles)
def test_line_control_numbers_are_unique_short_alphanumeric_and_stable(
    facts: VisitFacts, profile: PayerProfile
) -> None:
    claims = generate_claims(facts, profile)

    for claim in claims:
        numbers = [line.control_number for line in claim.lines]
        assert len(set(numbers)) == len(numbers)
        assert all(number.isalnum() and len(number) <= 30 for number in numbers)
        assert [line.number for line in claim.lines] == list(range(1, len(claim.lines) + 1))
    assert claims == generate_claims(facts, profile)


@FAST
@given(visits(), profiles)
def test_the_teledentistry_code_never_goes_on_the_capturing_claim(facts: VisitFacts, profile: PayerProfile) -> None:
    claims = generate_claims(facts, profile)

    for claim in claims:
        if claim.role == "capture":
            assert not {line.code for line in claim.lines} & TELEDENTISTRY
    teledentistry = [line for claim in claims for line in claim.lines if line.code in TELEDENTISTRY]
    assert len(teledentistry) <= 1
    assert len({claim.billing_organization.id for claim in claims}) == len(claims)
