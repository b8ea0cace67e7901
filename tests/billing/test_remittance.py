"""835 round trips: claims the engine made, exported, paid back in an 835, read and matched to their lines; and the
ways a remittance can be malformed, cut short or not ours."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from referral.billing.amend import with_attachment_control_number
from referral.billing.engine import generate_claims
from referral.billing.model import Address, Claim
from referral.billing.remittance import (
    ClaimPayment,
    Remittance,
    X12ParseError,
    denials,
    match_remittance,
    parse_835,
)
from referral.billing.x12 import Submitter, claim_control_number, to_837d
from referral.billing.x12_validator import validate_837d
from tests.support.billing import ALDER, BIRCH, by_role, image, visit
from tests.support.edi import ClaimPaid, LinePaid, acknowledgement_999, paid_as_billed, remittance_835

ALDER_PAYEE = ("ALDER FAMILY DENTAL", ALDER.npi)
BIRCH_PAYEE = ("BIRCH ENDODONTICS", BIRCH.npi)


@pytest.fixture
def claims() -> dict[str, Claim]:
    """Alder captured three periapicals (D0707 x3, 20 each); Birch read them (D0391 x3 at 40, D9996 at 10)."""
    facts = visit(image("pa-2", "periapical", "2"), image("pa-3", "periapical", "3"), image("pa-4", "periapical", "4"))
    return by_role(generate_claims(facts))


def _one(text: str) -> Remittance:
    remittances = parse_835(text)
    assert len(remittances) == 1
    return remittances[0]


def test_the_claims_go_out_in_a_valid_837d_whose_clm01_and_ref_6r_the_835_echoes(claims: dict[str, Claim]) -> None:
    capture = claims["capture"]
    # The shared test practice has a five-digit ZIP and the patient no address; an 837D needs both.
    sendable = replace(
        with_attachment_control_number(capture, "AT01"),
        billing_organization=replace(ALDER, address=Address("1 Main St", "Springfield", "IL", "627011234")),
        patient=replace(capture.patient, address=Address("5 Elm St", "Springfield", "IL", "62701")),
    )
    sent = to_837d(
        [sendable],
        sender_id="ALDER01",
        receiver_id="ACME-DENTAL",
        interchange_control_number=1,
        group_control_number=1,
        created_at=datetime(2025, 3, 12, tzinfo=UTC),
        submitter=Submitter("Alder Family Dental", "Billing", phone="2175550100"),
    )
    assert validate_837d(sent) == []

    remittance = _one(remittance_835([paid_as_billed(capture)], payee=ALDER_PAYEE))

    payment = remittance.claims[0]
    assert f"CLM*{payment.patient_control_number}*" in sent
    assert all(f"REF*6R*{service.line_control_number}~" in sent for service in payment.services)


def test_a_claim_paid_as_billed_is_paid_and_every_line_finds_its_own(claims: dict[str, Claim]) -> None:
    capture = claims["capture"]
    remittance = _one(remittance_835([paid_as_billed(capture)], payee=ALDER_PAYEE))

    match = match_remittance(remittance, [claims["interpretation"], capture])

    assert remittance.paid_total == Decimal("60")
    assert remittance.trace_number == "0012345678"
    assert remittance.payee_id == ALDER.npi
    assert [m.claim_index for m in match.matched] == [1]
    assert match.unmatched == ()
    payment = match.matched[0].payment
    assert (payment.outcome, payment.paid, payment.payer_claim_number) == ("paid", Decimal("60"), "PCN260415017")
    assert [line.line_number for line in match.matched[0].lines] == [1, 2, 3]


def test_a_contractual_cut_leaves_the_claim_paid_with_nothing_to_chase(claims: dict[str, Claim]) -> None:
    reading = claims["interpretation"]
    payment = paid_as_billed(reading, contract_cut={1: "5", 2: "5", 3: "5"})

    claim = _one(remittance_835([payment], payee=BIRCH_PAYEE)).claims[0]

    assert claim.outcome == "paid"
    assert claim.paid == Decimal("115")
    assert all(service.problems == () for service in claim.services)
    assert claim.services[0].advice()[0].action == "none"


def test_a_line_denied_for_a_missing_attachment_makes_the_claim_partially_paid(claims: dict[str, Claim]) -> None:
    capture = claims["capture"]
    payment = paid_as_billed(capture, contract_cut={1: "5", 2: "5"}, denied={3: ("CO", "252", ("N29",))})

    claim = _one(remittance_835([payment], payee=ALDER_PAYEE)).claims[0]

    assert claim.outcome == "partially_paid"
    assert [service.outcome for service in claim.services] == ["paid", "paid", "denied"]
    (problem,) = claim.services[2].problems
    assert problem.action == "send_attachment"
    assert "attachment package" in problem.next_step
    assert "remark N29: documentation is missing" in problem.explanation
    assert claim.services[2].patient_owes == 0  # a contractual denial is never billed to the patient


def test_a_claim_whose_every_line_is_denied_for_documentation_is_denied(claims: dict[str, Claim]) -> None:
    capture = claims["capture"]
    payment = paid_as_billed(capture, denied=dict.fromkeys((1, 2, 3), ("CO", "252", ("N29",))))

    claim = _one(remittance_835([payment], payee=ALDER_PAYEE)).claims[0]

    assert (claim.outcome, claim.paid) == ("denied", Decimal("0"))


def test_a_claim_the_payer_denies_outright_is_denied() -> None:
    payment = ClaimPaid(
        "REF0001", status="4", charge="60", paid="0", adjustments=[("CO", "B7", "60")], remarks=["N95"]
    )

    claim = _one(remittance_835([payment], payee=ALDER_PAYEE)).claims[0]

    assert claim.outcome == "denied"
    assert claim.status == "denied"
    assert [advice.action for advice in claim.advice()] == ["check_provider"]


def test_a_line_applied_to_the_deductible_is_paid_by_the_patient_not_denied() -> None:
    payment = ClaimPaid("REF0001", [LinePaid("D0707", "20", "0", "L1", [("PR", "1", "20")])])

    claim = _one(remittance_835([payment], payee=ALDER_PAYEE)).claims[0]

    assert claim.outcome == "paid"
    assert claim.services[0].patient_owes == Decimal("20")
    assert claim.services[0].advice()[0].action == "bill_patient"


def test_a_reversal_and_its_corrected_payment_both_post_to_the_claim_in_file_order(claims: dict[str, Claim]) -> None:
    capture = claims["capture"]
    number = claim_control_number(capture)
    reversal = ClaimPaid(
        number,
        [LinePaid(line.code, -line.charge, -line.charge, line.control_number) for line in capture.lines],
        status="22",
        payer_claim_number="PCN1",
    )
    corrected = paid_as_billed(capture, contract_cut={1: "5", 2: "5", 3: "5"}, payer_claim_number="PCN2")
    # Taking back 60 and paying 45 nets -15, which the payer carries forward to a later payment (PLB FB).
    text = remittance_835([reversal, corrected], payee=ALDER_PAYEE, provider_adjustments=[("FB", number, "-15")],
                          method="NON")

    remittance = _one(text)
    match = match_remittance(remittance, [capture])

    assert remittance.paid_total == 0
    assert [claim.paid for claim in remittance.claims] == [Decimal("-60"), Decimal("45")]
    assert [(m.payment.outcome, m.payment.payer_claim_number, m.claim_index) for m in match.matched] == [
        ("reversed", "PCN1", 0),
        ("paid", "PCN2", 0),
    ]
    assert [line.line_number for line in match.matched[0].lines] == [1, 2, 3]
    assert match.matched[0].payment.is_reversal


def test_a_reversal_alone_takes_money_back_with_a_debit() -> None:
    reversal = ClaimPaid("REF0001", [LinePaid("D0707", "-20", "-20", "L1")], status="22")

    remittance = _one(remittance_835([reversal], payee=ALDER_PAYEE, credit=False))

    assert (remittance.paid_total, remittance.credit) == (Decimal("20"), False)
    assert remittance.claims[0].outcome == "reversed"


def test_the_other_practices_claim_in_our_remittance_is_left_unmatched(claims: dict[str, Claim]) -> None:
    # Both claims of a referral carry the same CLM01; Birch's lines are not Alder's.
    birch_payment = paid_as_billed(claims["interpretation"])
    alder_payment = paid_as_billed(claims["capture"])
    assert birch_payment.number == alder_payment.number

    remittance = _one(remittance_835([alder_payment, birch_payment], payee=ALDER_PAYEE))
    match = match_remittance(remittance, [claims["capture"]])

    assert [m.payment.position for m in match.matched] == [remittance.claims[0].position]
    assert match.unmatched == (remittance.claims[1],)


def test_a_remittance_paid_to_another_practice_matches_none_of_ours(claims: dict[str, Claim]) -> None:
    remittance = _one(remittance_835([paid_as_billed(claims["capture"])], payee=BIRCH_PAYEE))

    match = match_remittance(remittance, [claims["capture"]])

    assert match.matched == ()
    assert match.unmatched == remittance.claims


def test_a_payment_for_a_claim_number_we_never_sent_is_unmatched(claims: dict[str, Claim]) -> None:
    payment = replace(paid_as_billed(claims["capture"]), number="SOMEONEELSE1")

    match = match_remittance(_one(remittance_835([payment], payee=ALDER_PAYEE)), [claims["capture"]])

    assert [p.patient_control_number for p in match.unmatched] == ["SOMEONEELSE1"]


def test_without_line_control_numbers_lines_are_told_apart_by_code_date_and_charge(claims: dict[str, Claim]) -> None:
    reading = claims["interpretation"]
    payment = paid_as_billed(reading)
    for line in payment.lines:
        line.control = None

    match = match_remittance(_one(remittance_835([payment], payee=BIRCH_PAYEE)), [reading])

    # Three D0391 lines of one date and charge cannot be told apart; the D9996 can.
    assert [line.line_number for line in match.matched[0].lines] == [None, None, None, 4]
    assert len(match.matched[0].unmatched_services) == 3


def test_a_line_the_payer_recoded_keeps_the_code_we_billed() -> None:
    line = LinePaid("D0220", "20", "15", "L1", [("CO", "45", "5")], submitted_code="D0707")

    service = _one(remittance_835([ClaimPaid("REF0001", [line])], payee=ALDER_PAYEE)).claims[0].services[0]

    assert (service.code, service.submitted_code, service.billed_code) == ("D0220", "D0707", "D0707")


def test_provider_level_adjustments_are_read_and_balanced_against_the_payment() -> None:
    text = remittance_835(
        [ClaimPaid("REF0001", [LinePaid("D0707", "20", "20", "L1")])],
        payee=ALDER_PAYEE,
        provider_adjustments=[("WO", "OLDCLAIM9", "5"), ("L6", "", "-1.25")],
    )

    remittance = _one(text)

    assert remittance.paid_total == Decimal("16.25")
    assert [(a.reason, a.reference, a.amount) for a in remittance.provider_adjustments] == [
        ("WO", "OLDCLAIM9", Decimal("5")),
        ("L6", None, Decimal("-1.25")),
    ]


def test_a_patient_share_the_adjustments_do_not_back_is_a_warning_not_a_refusal() -> None:
    payment = ClaimPaid("REF0001", [LinePaid("D0707", "20", "20", "L1")], patient_share="5")

    remittance = _one(remittance_835([payment], payee=ALDER_PAYEE))

    assert len(remittance.warnings) == 1
    assert "(CLP)" in remittance.warnings[0]


def test_the_same_file_read_twice_gives_the_same_remittance(claims: dict[str, Claim]) -> None:
    text = remittance_835([paid_as_billed(claims["capture"])], payee=ALDER_PAYEE)

    assert parse_835(text) == parse_835(text)
    assert parse_835(text.replace("~", "~\r\n")) == parse_835(text)


def test_one_interchange_may_carry_several_payments() -> None:
    first = remittance_835([ClaimPaid("A1", [LinePaid("D0707", "20", "20", "L1")])], payee=ALDER_PAYEE)
    body_start, body_end = first.index("ST*835"), first.index("GE*")
    second_body = first[body_start:body_end].replace("0012345678", "0012345679").replace("ST*835*0001", "ST*835*0002")
    second_body = second_body.replace("SE*", "SE*", 1).replace("*0001~", "*0002~")
    text = first[:body_end] + second_body + "GE*2*1~" + first[first.index("IEA*"):]

    remittances = parse_835(text)

    assert [r.trace_number for r in remittances] == ["0012345678", "0012345679"]


# -- refused files ---------------------------------------------------------------------------------------------------


def _valid() -> str:
    return remittance_835(
        [ClaimPaid("REF0001", [LinePaid("D0707", "20", "15", "L1", [("CO", "45", "5")], ["N130"])])],
        payee=ALDER_PAYEE,
    )


def _refusal(text: str) -> X12ParseError:
    with pytest.raises(X12ParseError) as raised:
        parse_835(text)
    return raised.value


def test_every_truncation_of_a_remittance_is_refused_naming_a_segment() -> None:
    text = _valid()
    for end in range(1, len(text) - 1):
        error = _refusal(text[:end])
        assert error.segment is not None or end < 4, (end, str(error))
        assert "ABC123456789" not in str(error)


def test_a_file_cut_between_segments_says_it_was_cut_short_after_the_last_one() -> None:
    text = _valid()
    cut = text[: text.index("LQ*HE")]

    error = _refusal(cut)

    assert error.segment == "REF"  # REF*6R is the last segment that arrived whole
    assert "cut short" in str(error)
    assert str(error).startswith(f"segment {error.position} ({error.segment})")


def test_a_file_cut_inside_a_segment_names_that_segment() -> None:
    text = _valid()
    cut = text[: text.index("CLP*") + 10]

    error = _refusal(cut)

    assert (error.segment, "cut short" in str(error)) == ("CLP", True)


@pytest.mark.parametrize(
    ("old", "new", "segment", "fragment"),
    [
        ("CLP*REF0001*1*20*15", "CLP*REF0001*1*20*1X", "CLP", "CLP04 (claim payment) '1X' is not an amount"),
        ("CLP*REF0001*1*", "CLP*REF0001*9*", "CLP", "CLP02 '9' is not a claim status code"),
        ("CLP*REF0001*1*20*15", "CLP*REF0001*1*20*16", "CLP", "less its adjustments 5 is 15, but 16 was paid"),
        ("SVC*AD:D0707*20*15", "SVC*AD:D0707*20*14", "SVC", "less its adjustments 5 is 15, but 14 was paid"),
        ("CAS*CO*45*5", "CAS*XX*45*5", "CAS", "CAS01 'XX' is not a 5010 group code"),
        ("BPR*I*15*C", "BPR*I*16*C", "BPR", "does not equal the claims' payments"),
        ("SVC*AD:D0707", "SVC*D0707", "SVC", "SVC01 must name the code as qualifier:code"),
        ("N1*PE*", "N9*PE*", "CLP", "comes before the payer (N1*PR) and payee (N1*PE) are named"),
        ("N1*PR*", "N9*PR*", "CLP", "comes before the payer (N1*PR) and payee (N1*PE) are named"),
        ("GS*HP*", "GS*HC*", "GS", "travels in an HP group"),
        ("SE*", "SE*9", "SE", "SE01 counts"),
    ],
)
def test_a_malformed_remittance_is_refused_naming_the_segment(
    old: str, new: str, segment: str, fragment: str | None
) -> None:
    text = _valid()
    assert old in text

    error = _refusal(text.replace(old, new, 1))

    assert error.segment == segment, str(error)
    if fragment is not None:
        assert fragment in str(error)
    assert error.position is not None


def test_a_remittance_that_names_no_payee_is_refused_at_its_end() -> None:
    text = remittance_835([], payee=ALDER_PAYEE)
    without_payee = re.sub(r"N1\*PE\*[^~]*~", "", text)
    recounted = re.sub(r"SE\*(\d+)\*", lambda found: f"SE*{int(found.group(1)) - 1}*", without_payee)

    error = _refusal(recounted)

    assert (error.segment, "does not name its payee" in str(error)) == ("SE", True)


def test_a_999_handed_in_as_a_remittance_is_refused() -> None:
    error = _refusal(acknowledgement_999("1", []))

    assert error.segment == "GS"


def test_text_that_is_no_x12_at_all_is_refused() -> None:
    assert "does not start with an ISA" in str(_refusal("CLP*1*1*20*20~"))
    assert "empty" in str(_refusal(""))


def test_a_claim_payment_before_the_payee_is_named_is_refused() -> None:
    text = _valid()
    payee = text[text.index("N1*PE") : text.index("~", text.index("N1*PE")) + 1]
    moved = text.replace(payee, "").replace("SE*", payee + "SE*", 1)
    # Keep SE01 right: the segment count did not change.
    error = _refusal(moved)

    assert error.segment == "CLP"


def test_claim_payment_fields_are_read() -> None:
    remittance = _one(_valid())

    claim: ClaimPayment = remittance.claims[0]
    assert (claim.patient_control_number, claim.status, claim.place_of_service, claim.frequency) == (
        "REF0001",
        "processed as primary",
        "11",
        "1",
    )
    assert claim.patient_name == ("RIVERA", "AVA")
    assert claim.member_id == "ABC123456789"
    service = claim.services[0]
    assert (service.code, service.charge, service.paid, service.service_date) == (
        "D0707",
        Decimal("20"),
        Decimal("15"),
        date(2026, 4, 15),
    )
    assert service.remarks == ("N130",)
    assert (remittance.payer_name, remittance.payment_method, remittance.payment_date) == (
        "EXAMPLE DENTAL PLAN",
        "CHK",
        date(2026, 5, 6),
    )


def test_the_denials_of_a_payment_are_its_denied_and_reduced_lines_with_what_to_do(claims: dict[str, Claim]) -> None:
    reading = claims["interpretation"]
    payment = paid_as_billed(
        reading, contract_cut={1: "5"}, denied={2: ("CO", "16", ("N37",)), 4: ("CO", "B15", ())}
    )
    payment.lines[2].adjustments = [("CO", "97", "10")]
    payment.lines[2].paid = Decimal("30")
    payment.lines[2].remarks = ["M15"]

    claim = _one(remittance_835([payment], payee=BIRCH_PAYEE)).claims[0]
    found = denials(claim)

    assert [(d.code, d.outcome, d.line_control_number) for d in found] == [
        ("D0391", "denied", reading.lines[1].control_number),
        ("D0391", "reduced", reading.lines[2].control_number),
        ("D9996", "denied", reading.lines[3].control_number),
    ]
    assert [(d.problems[0].action, d.problems[0].field) for d in found] == [
        ("fix_field", "tooth number"),
        ("review_history", None),
        ("review_history", None),
    ]
    assert all(d.payer_claim_number == "PCN260415017" for d in found)


def test_a_claim_level_denial_is_on_the_worklist_and_a_reversal_is_not() -> None:
    outright = ClaimPaid(
        "REF0001", status="4", charge="60", paid="0", adjustments=[("CO", "252", "60")], remarks=["N29"]
    )
    reversal = ClaimPaid("REF0001", [LinePaid("D0707", "-20", "-20", "L1")], status="22", payer_claim_number="PCN0")
    text = remittance_835([outright, reversal], payee=ALDER_PAYEE, paid_total="20", credit=False)

    first, second = _one(text).claims

    (denial,) = denials(first)
    assert (denial.line_control_number, denial.outcome) == (None, "denied")
    assert denial.problems[0].action == "send_attachment"
    assert denials(second) == ()
