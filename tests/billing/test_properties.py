"""Properties that hold for any visit: generated images of every kind, retakes, several practices, any profile."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from referral.billing.catalogue import CAPTURE_AND_INTERPRETATION, CATALOGUE, twins_of
from referral.billing.engine import generate_claims
from referral.billing.model import Claim, VisitFacts
from referral.billing.profiles import PayerProfile, all_profiles
from tests.support.billing import tables_profile
from tests.support.billing_strategies import visits

# No example database: a failure prints its example, and runs stay independent of each other.
FAST = settings(max_examples=100, deadline=None, database=None)

TELEDENTISTRY = {"D9995", "D9996"}






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


@FAST
@given(visits(), profiles)
def test_the_teledentistry_code_shares_its_date_with_another_procedure_or_the_claim_is_held(
    facts: VisitFacts, profile: PayerProfile
) -> None:
    for claim in generate_claims(facts, profile):
        for line in claim.lines:
            if line.code not in TELEDENTISTRY:
                continue
            companions = [
                other
                for other in claim.lines
                if other.code not in TELEDENTISTRY and other.date_of_service == line.date_of_service
            ]
            held = any(edit.rule == "teledentistry-alone" and line.number in edit.line_numbers for edit in claim.edits)
            assert companions or held
            if claim.role == "single" and any(other.date_basis == "capture" for other in claim.lines):
                # One practice that took and read: the code goes with the visit's imaging, never a date of its own.
                assert line.date_basis == "visit"
                assert companions


@FAST
@given(visits(), profiles)
def test_every_line_states_its_date_and_a_line_place_only_where_it_differs_from_the_claims(
    facts: VisitFacts, profile: PayerProfile
) -> None:
    signed_on = facts.report_signed_at.date() if facts.report_signed_at else None
    captured = {image.id: image.captured_on for image in facts.images}
    for claim in generate_claims(facts, profile):
        for line in claim.lines:
            assert line.place_of_service != claim.place_of_service
            assert f"Dated {line.date_of_service}: " in line.explanation
            if line.date_basis == "reading":
                assert line.date_of_service == signed_on
            elif line.date_basis == "capture":
                assert line.date_of_service == min(captured[image_id] for image_id in line.image_ids)
            else:
                assert line.date_basis == "visit"
