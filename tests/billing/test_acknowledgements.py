"""999 and 277CA acknowledgements of our 837D: which transaction sets and claims were accepted or rejected, why, and
what happens to files that are not well formed."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from referral.billing.acknowledgements import X12ParseError, match_claim_statuses, parse_277ca, parse_999
from referral.billing.amend import attachment_control_number, with_attachment_control_number
from referral.billing.engine import generate_claims
from referral.billing.x12 import Submitter, claim_control_number, to_837d
from referral.billing.x12_validator import validate_837d
from tests.support.billing import by_role
from tests.support.dependants import MAPLE, ava_visit
from tests.support.edi import (
    ClaimStatus,
    ElementError,
    LineStatus,
    SegmentError,
    SetAcknowledged,
    acknowledgement_999,
    claim_acknowledgement_277ca,
    recount,
    remittance_835,
)


def _sent() -> tuple[str, list[str], list[list[str]]]:
    """The GP's and the endodontist's claims for Ava in one 837D: its text, CLM01s and each claim's REF*6R."""
    claims = by_role(generate_claims(ava_visit()))
    ready = [
        with_attachment_control_number(
            claim, attachment_control_number(claim.referral_id, claim.billing_organization.id)
        )
        for claim in (claims["capture"], claims["interpretation"])
    ]
    text = to_837d(
        ready,
        sender_id="CLEARHOUSE",
        receiver_id="EXAMPLE-PPO",
        interchange_control_number=42,
        group_control_number=42,
        created_at=datetime(2026, 4, 17, 8, tzinfo=UTC),
        submitter=Submitter("Maple Family Dental", "Billing Office", phone="2175550100"),
    )
    assert validate_837d(text) == []
    return text, [claim_control_number(c) for c in ready], [[line.control_number for line in c.lines] for c in ready]


# -- 999 -------------------------------------------------------------------------------------------------------------


def test_a_999_accepting_both_transaction_sets_of_our_837d() -> None:
    text, _, _ = _sent()
    assert "GS*HC*CLEARHOUSE*EXAMPLE-PPO*20260417*0800*42*" in text

    (ack,) = parse_999(acknowledgement_999("42", [SetAcknowledged("0001"), SetAcknowledged("0002")]))

    assert (ack.group_control_number, ack.functional_id, ack.status) == ("42", "HC", "A")
    assert [ack.outcome_for(number) for number in ("0001", "0002")] == ["accepted", "accepted"]
    assert ack.reasons_for("0001") == ()
    assert (ack.included, ack.received, ack.accepted_count) == (2, 2, 2)


def test_a_999_rejecting_one_set_says_which_segment_element_and_claim() -> None:
    error = SegmentError(
        "NM1", 12, "2010BA", "8", [ElementError("9", "67", "7", "ABC123456789")], "5B0C2D9E4A314F6E8D2B"
    )
    text = acknowledgement_999("42", [SetAcknowledged("0001", "R", ["5"], [error]), SetAcknowledged("0002")])

    (ack,) = parse_999(text)

    assert ack.status == "P"
    assert (ack.outcome_for("0001"), ack.outcome_for("0002")) == ("rejected", "accepted")
    (rejected,) = [s for s in ack.sets if not s.accepted]
    assert rejected.errors[0].claim_number == "5B0C2D9E4A314F6E8D2B"
    assert rejected.errors[0].elements[0].bad_value == "ABC123456789"  # kept for the record...
    assert ack.reasons_for("0001") == (
        "one or more segments have errors",
        "segment 12 (NM1, loop 2010BA): the segment has element errors; element 9: the code is not a valid value",
    )
    assert "ABC123456789" not in " ".join(ack.reasons_for("0001"))  # ...but never shown


def test_accepted_with_errors_noted_is_accepted() -> None:
    (ack,) = parse_999(acknowledgement_999("42", [SetAcknowledged("0001", "E", [], [SegmentError("DTP", 20, "2300",
                                                                                                   "I4")])]))

    assert ack.outcome_for("0001") == "accepted"
    assert ack.reasons_for("0001") == ("segment 20 (DTP, loop 2300): a segment the guide does not use is present",)


def test_a_rejected_group_without_detail_rejects_every_set_of_it() -> None:
    (ack,) = parse_999(acknowledgement_999("42", [], group_status="R", group_codes=["2"]))

    assert ack.outcome_for("0001") == "rejected"
    assert ack.reasons_for("0001") == ("the group was rejected", "this version is not supported")


def test_a_partly_accepted_group_without_detail_leaves_a_set_unknown() -> None:
    (ack,) = parse_999(acknowledgement_999("42", [SetAcknowledged("0002")], group_status="P"))

    assert ack.outcome_for("0001") == "unknown"


@pytest.mark.parametrize(
    ("old", "new", "segment", "fragment"),
    [
        ("AK9*A", "AK9*Q", "AK9", "AK901 'Q' is not one of"),
        ("AK9*A*1*1*1", "AK9*A*one*1*1", "AK9", "AK902 (transaction sets included) must be a count"),
        ("IK5*A", "IK5*Z", "IK5", "IK501 'Z' is not one of"),
        ("AK1*HC*42", "AK1*HC*", "AK1", "AK102"),
        ("GS*FA*", "GS*HP*", "GS", "travels in an FA group"),
    ],
)
def test_a_malformed_999_is_refused_naming_the_segment(old: str, new: str, segment: str, fragment: str) -> None:
    text = acknowledgement_999("42", [SetAcknowledged("0001")])
    assert old in text

    with pytest.raises(X12ParseError) as raised:
        parse_999(text.replace(old, new, 1))

    assert raised.value.segment == segment
    assert fragment in str(raised.value)


def test_a_999_without_its_group_result_is_refused() -> None:
    text = acknowledgement_999("42", [SetAcknowledged("0001")])
    broken = recount(text.replace("AK9*A*1*1*1~", ""))

    with pytest.raises(X12ParseError, match="expected AK9") as raised:
        parse_999(broken)
    assert raised.value.segment == "SE"


def test_every_truncation_of_a_999_is_refused() -> None:
    text = acknowledgement_999("42", [SetAcknowledged("0001", "R", ["5"], [SegmentError("CLM", 30, "2300", "8")])])
    for end in range(1, len(text) - 1):
        with pytest.raises(X12ParseError):
            parse_999(text[:end])


def test_a_remittance_is_not_an_acknowledgement() -> None:
    with pytest.raises(X12ParseError) as raised:
        parse_999(remittance_835([]))
    assert raised.value.segment == "GS"


# -- 277CA -----------------------------------------------------------------------------------------------------------


def test_a_277ca_accepting_both_claims_gives_the_payers_claim_numbers() -> None:
    _, numbers, _ = _sent()
    text = claim_acknowledgement_277ca(
        [ClaimStatus(numbers[0], payer_claim_number="PCN1"), ClaimStatus(numbers[1], payer_claim_number="PCN2")]
    )

    (ack,) = parse_277ca(text)

    assert [(c.patient_control_number, c.outcome, c.payer_claim_number) for c in ack.claims] == [
        (numbers[0], "accepted", "PCN1"),
        (numbers[1], "accepted", "PCN2"),
    ]
    assert ack.claims[0].reasons == ("accepted into the payer's adjudication system: accepted for processing",)
    assert (ack.claims[0].status_date, ack.claims[0].amount) == (date(2026, 4, 17), Decimal("105"))
    assert ack.claims[0].billing_provider_id == MAPLE.npi
    assert (ack.payer_name, ack.payer_id) == ("EXAMPLE DENTAL PLAN", "99999")
    assert [s.category for s in ack.receiver_statuses] == ["A1"]


def test_a_rejected_claim_says_which_data_of_whom() -> None:
    _, numbers, _ = _sent()
    rejected = ClaimStatus(numbers[0], "A7", "562", "85", more=[("A7", "21", "")], payer_claim_number=None)

    (ack,) = parse_277ca(claim_acknowledgement_277ca([rejected]))

    claim = ack.claims[0]
    assert claim.outcome == "rejected"
    assert claim.payer_claim_number is None
    assert claim.reasons == (
        "rejected: information is not valid: the entity's NPI (billing provider)",
        "rejected: information is not valid: information missing or not valid (another code says which)",
    )


def test_receipt_alone_is_not_acceptance() -> None:
    (ack,) = parse_277ca(claim_acknowledgement_277ca([ClaimStatus("GP-24017", "A1", "19", "PR")]))

    assert ack.claims[0].outcome == "received"


def test_a_line_can_be_rejected_on_an_accepted_claim_and_is_found_by_its_control_number() -> None:
    _, numbers, controls = _sent()
    lines = [LineStatus(controls[0][0], "D0707", "35"), LineStatus(controls[0][1], "D0707", "35", "A7", "244")]

    (ack,) = parse_277ca(claim_acknowledgement_277ca([ClaimStatus(numbers[0], lines=lines)]))

    claim = ack.claims[0]
    assert claim.outcome == "accepted"
    assert [(line.line_control_number, line.outcome) for line in claim.lines] == [
        (controls[0][0], "accepted"),
        (controls[0][1], "rejected"),
    ]
    assert claim.lines[1].statuses[0].words == "rejected: information is not valid: the tooth number or letter"


def test_unknown_status_codes_still_read_as_their_numbers() -> None:
    (ack,) = parse_277ca(claim_acknowledgement_277ca([ClaimStatus("GP-1", "P1", "9999", "ZZ")]))

    assert ack.claims[0].outcome == "pending"
    assert ack.claims[0].reasons == ("pending at the payer: status 9999 (entity ZZ)",)


@pytest.mark.parametrize(
    ("old", "new", "segment", "fragment"),
    [
        ("TRN*2*GP-1~", "TRN*1*GP-1~", "HL", "TRN*2 (our claim number) is missing"),
        ("STC*A2:20", "STC*Q9:20", "STC", "STC01-1 'Q9' is not a claim status category"),
        ("HL*4*3*PT", "HL*4*3*XX", "HL", "HL03 'XX' is not a level"),
        ("GS*HN*", "GS*FA*", "GS", "travels in an HN group"),
    ],
)
def test_a_malformed_277ca_is_refused_naming_the_segment(old: str, new: str, segment: str, fragment: str) -> None:
    text = claim_acknowledgement_277ca([ClaimStatus("GP-1")])
    assert old in text

    with pytest.raises(X12ParseError) as raised:
        parse_277ca(text.replace(old, new, 1))

    assert raised.value.segment == segment
    assert fragment in str(raised.value)


def test_every_truncation_of_a_277ca_is_refused() -> None:
    text = claim_acknowledgement_277ca([ClaimStatus("GP-1", lines=[LineStatus("L1", "D0707", "35")])])
    for end in range(1, len(text) - 1):
        with pytest.raises(X12ParseError):
            parse_277ca(text[:end])


def test_claim_statuses_match_our_claims_by_claim_number_provider_and_line_control_numbers() -> None:
    claims = by_role(generate_claims(ava_visit()))
    capture, reading = claims["capture"], claims["interpretation"]
    number = claim_control_number(capture)
    assert claim_control_number(reading) == number  # one referral, one default CLM01 for both practices
    statuses = [
        ClaimStatus(number, lines=[LineStatus(capture.lines[1].control_number, "D0707", "35", "A7", "244")]),
        ClaimStatus("NOT-OURS-1"),
    ]

    (ack,) = parse_277ca(claim_acknowledgement_277ca(statuses))
    matched, unmatched = match_claim_statuses(ack, [reading, capture])

    assert [(m.claim_index, m.line_numbers) for m in matched] == [(1, (2,))]
    assert [s.patient_control_number for s in unmatched] == ["NOT-OURS-1"]


def test_a_277ca_about_another_practices_claims_matches_none_of_ours() -> None:
    claims = by_role(generate_claims(ava_visit()))
    capture = claims["capture"]
    text = claim_acknowledgement_277ca(
        [ClaimStatus(claim_control_number(capture))], billing=("PATEL ENDODONTICS", "1098765435")
    )

    matched, unmatched = match_claim_statuses(parse_277ca(text)[0], [capture])

    assert matched == ()
    assert len(unmatched) == 1
