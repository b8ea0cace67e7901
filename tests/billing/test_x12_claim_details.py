"""The 837D's claim details beyond the skeleton: narrative (NTE), attachments (PWK), replacements and voids
(CLM05-3 with REF*F8), line places (SV303), caller-chosen CLM01, batches of one practice for one payer; and the
validator catching each way those can go wrong."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from referral.billing.amend import as_replacement, as_void, with_attachment_control_number, with_narrative
from referral.billing.model import Attachment, Claim
from referral.billing.x12 import ExportError, claim_control_number, to_837d_batch
from referral.billing.x12_validator import validate_837d
from tests.support.claims import (
    CHILD_MEDICAID,
    CREATED_AT,
    DELTA,
    LAKESHORE,
    SUBMITTER,
    capture_claim,
    child_claim,
    reader_claim,
    single_claim,
)
from tests.support.x12 import Segment, assert_reported, claims_in, corrupt, export, first, lines_in, only, parse

PACKAGE = "AT0123456789ABCDEF01"


def documented_capture_claim() -> Claim:
    """The capture claim as it leaves: billing's narrative, its images attached under the package's number."""
    claim = dataclasses.replace(capture_claim(), attachments=(Attachment("RB", "EL", None, (1, 2)),))
    claim = with_narrative(claim, "Capture only: 2 PA teeth 19, 30 by RDH H Kim; sent to Dr O Reyes")
    return with_attachment_control_number(claim, PACKAGE)


def claim_segments(claim: Claim) -> list[Segment]:
    return claims_in(export([claim]))[0]


# -- narrative -------------------------------------------------------------------------------------------------------


def test_the_narrative_goes_in_one_nte_add_after_the_claims_dates_and_attachments() -> None:
    segments = claim_segments(documented_capture_claim())

    tags = [segment[0] for segment in segments[: segments.index(first(segments, "LX"))]]
    assert tags[:4] == ["CLM", "DTP", "PWK", "NTE"]
    assert only(segments, "NTE") == [["NTE", "ADD", "CAPTURE ONLY 2 PA TEETH 19, 30 BY RDH H KIM; SENT TO DR O REYES"]]


def test_a_claim_without_a_narrative_sends_no_nte() -> None:
    assert only(claim_segments(capture_claim()), "NTE") == []


def test_a_narrative_too_long_for_one_nte_cannot_be_exported() -> None:
    claim = dataclasses.replace(capture_claim(), narrative="X" * 81)

    with pytest.raises(ExportError, match="at most 80"):
        export([claim])


# -- attachments -----------------------------------------------------------------------------------------------------


def test_each_attachment_is_a_claim_level_pwk_with_type_transmission_and_the_packages_number() -> None:
    claim = dataclasses.replace(
        documented_capture_claim(),
        attachments=(Attachment("RB", "EL", PACKAGE, (1, 2)), Attachment("DG", "EL", PACKAGE, (3,))),
    )

    segments = claim_segments(claim)

    assert only(segments, "PWK") == [
        ["PWK", "RB", "EL", "", "", "AC", PACKAGE],
        ["PWK", "DG", "EL", "", "", "AC", PACKAGE],
    ]
    assert all("PWK" not in [s[0] for s in line] for line in lines_in(segments))


def test_an_attachment_available_on_request_sends_no_control_number() -> None:
    claim = dataclasses.replace(capture_claim(), attachments=(Attachment("RB", "AA"),))

    assert only(claim_segments(claim), "PWK") == [["PWK", "RB", "AA"]]


def test_a_claim_whose_attachment_has_no_package_number_yet_cannot_be_exported() -> None:
    claim = dataclasses.replace(capture_claim(), attachments=(Attachment("RB", "EL", None, (1,)),))

    with pytest.raises(ExportError, match="package's control number"):
        export([claim])


@pytest.mark.parametrize(
    ("attachment", "complaint"),
    [
        (Attachment("ZZ", "EL", PACKAGE), "unknown report type"),
        (Attachment("RB", "PIGEON", PACKAGE), "unknown means"),
        (Attachment("RB", "EL", "X"), "at least 2 characters"),
        (Attachment("RB", "EL", "AB*CD"), "reserves"),
    ],
)
def test_an_attachment_the_payer_could_not_read_is_refused(attachment: Attachment, complaint: str) -> None:
    with pytest.raises(ExportError, match=complaint):
        export([dataclasses.replace(capture_claim(), attachments=(attachment,))])


def test_more_than_ten_attachments_are_refused() -> None:
    claim = dataclasses.replace(capture_claim(), attachments=(Attachment("RB", "AA"),) * 11)

    with pytest.raises(ExportError, match="at most 10"):
        export([claim])


# -- replacements and voids ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("change", "frequency"), [(as_replacement, "7"), (as_void, "8")])
def test_a_replacement_or_void_carries_its_frequency_and_the_payers_claim_number(
    change: Callable[[Claim, str], Claim], frequency: str
) -> None:
    text = export([change(capture_claim(), "PCN260415017")])

    segments = claims_in(text)[0]
    assert first(segments, "CLM")[5] == f"11:B:{frequency}"
    assert only(segments, "REF", "F8") == [["REF", "F8", "PCN260415017"]]
    assert validate_837d(text) == []


def test_an_original_claim_sends_no_payer_claim_number_even_if_one_is_known() -> None:
    claim = dataclasses.replace(capture_claim(), payer_claim_number="PCN1")

    assert only(claim_segments(claim), "REF", "F8") == []


def test_a_claim_frequency_that_is_not_dental_is_refused() -> None:
    with pytest.raises(ExportError, match="frequency '2'"):
        export([dataclasses.replace(capture_claim(), frequency="2", payer_claim_number="PCN1")])


# -- line places and claim numbers -----------------------------------------------------------------------------------


def test_a_line_performed_elsewhere_carries_its_place_in_sv303_and_others_leave_it_empty() -> None:
    base = single_claim()
    claim = dataclasses.replace(
        base,
        place_of_service="02",
        lines=(dataclasses.replace(base.lines[0], place_of_service="03"), *base.lines[1:]),
    )

    text = export([claim])

    services = [first(line, "SV3") for line in lines_in(claims_in(text)[0])]
    assert services[0][:4] == ["SV3", "AD:D0220", "31", "03"]
    assert all(len(service) < 4 or service[3] == "" for service in services[1:])
    assert validate_837d(text) == []


def test_a_line_place_equal_to_the_claims_is_not_repeated() -> None:
    base = capture_claim()
    claim = dataclasses.replace(base, lines=(dataclasses.replace(base.lines[0], place_of_service="11"),))

    assert first(claim_segments(claim), "SV3")[:3] == ["SV3", "AD:D0707", "35"]


def test_a_line_place_that_is_not_a_place_of_service_code_is_refused() -> None:
    base = capture_claim()
    claim = dataclasses.replace(base, lines=(dataclasses.replace(base.lines[0], place_of_service="school"),))

    with pytest.raises(ExportError, match="line place of service"):
        export([claim])


def test_the_caller_may_choose_the_claim_number_the_payer_echoes() -> None:
    claim = dataclasses.replace(capture_claim(), patient_control_number="NFD-000123")

    assert first(claim_segments(claim), "CLM")[1] == "NFD-000123"
    assert claim_control_number(claim) == "NFD-000123"


@pytest.mark.parametrize("number", ["X" * 21, "NFD*1", " "])
def test_a_claim_number_a_payer_could_not_echo_is_refused(number: str) -> None:
    with pytest.raises(ExportError, match="patient control number"):
        export([dataclasses.replace(capture_claim(), patient_control_number=number)])


def test_an_unknown_relationship_to_the_subscriber_is_refused_rather_than_guessed() -> None:
    claim = dataclasses.replace(child_claim(), coverage=dataclasses.replace(CHILD_MEDICAID, relationship="cousin"))

    with pytest.raises(ExportError, match="'cousin'"):
        export([claim])


# -- batches ---------------------------------------------------------------------------------------------------------


def _batch_claims() -> list[Claim]:
    """Three claims of Northside for Delta: each referral's claim with its own CLM01."""
    return [
        dataclasses.replace(capture_claim(), patient_control_number="NFD-1", referral_id="ref-a"),
        dataclasses.replace(single_claim(), patient_control_number="NFD-2", referral_id="ref-b"),
        dataclasses.replace(
            capture_claim(),
            patient_control_number="NFD-3",
            referral_id="ref-c",
            lines=tuple(
                dataclasses.replace(line, control_number=f"C3-{line.number}") for line in capture_claim().lines
            ),
        ),
    ]


def batch(claims: list[Claim], interchange: int = 17, group: int = 17) -> str:
    return to_837d_batch(
        claims,
        sender_id="NORTHSIDE01",
        receiver_id=DELTA.payer_id,
        interchange_control_number=interchange,
        group_control_number=group,
        created_at=CREATED_AT,
        submitter=SUBMITTER,
        usage="T",
    )


def test_a_batch_is_one_transaction_set_with_one_billing_provider_and_a_subscriber_loop_per_claim() -> None:
    text = batch(_batch_claims())

    segments = parse(text)
    assert [s[2] for s in only(segments, "ST")] == ["0001"]
    assert [s[1:] for s in only(segments, "HL")] == [
        ["1", "", "20", "1"],
        ["2", "1", "22", "0"],
        ["3", "1", "22", "0"],
        ["4", "1", "22", "0"],
    ]
    assert [s[1] for s in only(segments, "CLM")] == ["NFD-1", "NFD-2", "NFD-3"]
    assert validate_837d(text) == []


def test_a_batch_carries_the_callers_control_numbers() -> None:
    segments = parse(batch(_batch_claims(), interchange=1042, group=1042))

    assert first(segments, "ISA")[13] == "000001042"
    assert first(segments, "GS")[6] == "1042"
    assert first(segments, "IEA")[2] == "000001042"
    assert first(segments, "GE")[2] == "1042"


def test_a_batch_of_two_practices_is_refused() -> None:
    claims = [*_batch_claims(), dataclasses.replace(reader_claim(), patient_control_number="LK-1")]

    with pytest.raises(ExportError, match="one billing practice"):
        batch(claims)


def test_a_batch_of_two_payers_is_refused() -> None:
    claims = _batch_claims()
    claims[1] = dataclasses.replace(claims[1], coverage=CHILD_MEDICAID)

    with pytest.raises(ExportError, match="one payer"):
        batch(claims)


def test_a_batch_with_two_claims_of_one_claim_number_is_refused() -> None:
    claims = _batch_claims()
    claims[2] = dataclasses.replace(claims[2], patient_control_number="NFD-1")

    with pytest.raises(ExportError, match="NFD-1"):
        batch(claims)


def test_an_empty_batch_is_refused() -> None:
    with pytest.raises(ExportError, match="at least one claim"):
        batch([])


# -- the validator on the new segments -------------------------------------------------------------------------------


@pytest.fixture
def documented() -> str:
    text = export([documented_capture_claim(), child_claim(), dataclasses.replace(reader_claim(), frequency="1")])
    assert validate_837d(text) == []
    return text


def _claim_start(segments: list[Segment], number: int = 0) -> int:
    return [index for index, segment in enumerate(segments) if segment[0] == "CLM"][number]


def problems(text: str, edit: Callable[[list[Segment]], None]) -> list[str]:
    return validate_837d(corrupt(text, edit))


def test_the_validator_catches_a_pwk_inside_a_service_line(documented: str) -> None:
    def edit(segments: list[Segment]) -> None:
        pwk = first(segments, "PWK")
        segments.remove(pwk)
        segments.insert(segments.index(first(segments, "SV3")) + 1, pwk)

    assert_reported(problems(documented, edit), "belongs to the claim (2300); an 837D line has no PWK")


@pytest.mark.parametrize(
    ("pwk", "complaint"),
    [
        (["PWK", "ZZ", "EL", "", "", "AC", PACKAGE], "PWK01 'ZZ' is not a dental attachment report type"),
        (["PWK", "RB", "XX", "", "", "AC", PACKAGE], "PWK02 'XX' is not an attachment transmission code"),
        (["PWK", "RB", "EL"], "needs its control number as PWK05 AC"),
        (["PWK", "RB", "EL", "", "", "AC", "X"], "needs its control number as PWK05 AC"),
        (["PWK", "RB", "AA", "", "", "AC", PACKAGE], "available on request (AA) carries no control number"),
    ],
)
def test_the_validator_catches_a_pwk_a_payer_cannot_use(documented: str, pwk: Segment, complaint: str) -> None:
    def edit(segments: list[Segment]) -> None:
        segments[segments.index(first(segments, "PWK"))] = pwk

    assert_reported(problems(documented, edit), complaint)


def test_the_validator_catches_more_than_ten_pwk(documented: str) -> None:
    def edit(segments: list[Segment]) -> None:
        at = segments.index(first(segments, "PWK"))
        segments[at:at] = [list(first(segments, "PWK")) for _ in range(10)]

    assert_reported(problems(documented, edit), "11 PWK segments")


@pytest.mark.parametrize(
    ("note", "complaint"),
    [
        (["NTE", "ADD", "Y" * 81], "is 81 characters; NTE02 holds 1 to 80"),
        (["NTE", "ADD", ""], "is 0 characters"),
        (["NTE", "TPO", "CAPTURE ONLY"], "must be NTE*ADD"),
    ],
)
def test_the_validator_catches_a_claim_note_a_payer_cannot_take(documented: str, note: Segment, complaint: str) -> None:
    def edit(segments: list[Segment]) -> None:
        segments[segments.index(first(segments, "NTE"))] = note

    assert_reported(problems(documented, edit), complaint)


def test_the_validator_catches_a_payer_claim_number_on_an_original_claim(documented: str) -> None:
    def edit(segments: list[Segment]) -> None:
        segments.insert(_claim_start(segments) + 1, ["REF", "F8", "PCN1"])

    assert_reported(problems(documented, edit), "an original claim (CLM05-3 1) carries no payer claim number")


@pytest.mark.parametrize(
    ("place", "complaint"),
    [("3", "SV303 '3' is not a two-digit place of service code"), ("11", "SV303 repeats the claim's place")],
)
def test_the_validator_catches_a_line_place_that_is_malformed_or_redundant(
    documented: str, place: str, complaint: str
) -> None:
    def edit(segments: list[Segment]) -> None:
        service = first(segments, "SV3")
        service.extend([""] * (4 - len(service)))
        service[3] = place

    assert_reported(problems(documented, edit), complaint)


def test_the_validator_catches_a_dependant_relationship_code_that_is_not_one(documented: str) -> None:
    def edit(segments: list[Segment]) -> None:
        first(segments, "PAT")[1] = "18"

    assert_reported(problems(documented, edit), "PAT01 '18' is not a relationship of a dependant")


def test_the_validator_catches_a_dependant_with_an_identifier_of_its_own(documented: str) -> None:
    def edit(segments: list[Segment]) -> None:
        first(segments, "NM1", "QC").extend(["", "", "", "MI", "CHILD1"])

    assert_reported(problems(documented, edit), "a dependant has no identifier of its own")


def test_the_validator_catches_a_subscriber_without_a_member_id(documented: str) -> None:
    def edit(segments: list[Segment]) -> None:
        del first(segments, "NM1", "IL")[8:]

    assert_reported(problems(documented, edit), "member id goes in NM1*IL with qualifier MI")


def test_the_validator_catches_a_subscriber_level_without_a_filing_indicator(documented: str) -> None:
    def edit(segments: list[Segment]) -> None:
        del first(segments, "SBR")[9:]

    assert_reported(problems(documented, edit), "SBR09 (claim filing indicator) is missing")


def test_the_validator_catches_a_malformed_birth_date(documented: str) -> None:
    def edit(segments: list[Segment]) -> None:
        first(segments, "DMG")[2] = "20161301"

    assert_reported(problems(documented, edit), "birth date must be DMG*D8*CCYYMMDD")


def test_the_validator_catches_a_claim_hung_on_a_subscriber_level_that_has_a_dependant(documented: str) -> None:
    def edit(segments: list[Segment]) -> None:
        # Move the dependant's claim above its patient level: the subscriber level now holds it.
        patient = segments.index(next(s for s in segments if s[0] == "HL" and s[3] == "23"))
        block = segments[patient : _claim_start(segments, 1)]
        del segments[patient : _claim_start(segments, 1)]
        end = _claim_start(segments, 1) + next(
            i for i, s in enumerate(segments[_claim_start(segments, 1) :]) if s[0] in ("HL", "SE")
        )
        segments[end:end] = block

    found = problems(documented, edit)
    assert_reported(found, "a subscriber level with a dependant below it must not hold claims itself")
    assert_reported(found, "the level holds no claim (CLM)")


def test_the_validator_catches_a_billing_provider_with_nobody_below_it(documented: str) -> None:
    def edit(segments: list[Segment]) -> None:
        start = segments.index(first(segments, "HL"))
        # A second billing provider level right before the SE, holding nothing.
        se = segments.index(first(segments, "SE"))
        levels = len(only(segments[start:se], "HL"))
        segments.insert(se, ["HL", str(levels + 1), "", "20", "0"])

    assert_reported(problems(documented, edit), "the billing provider level has no subscriber level below it")


def test_replacing_a_claim_keeps_its_lines_and_claim_number() -> None:
    original = documented_capture_claim()

    replacement = as_replacement(original, "PCN9")

    assert replacement.lines == original.lines
    assert claim_control_number(replacement) == claim_control_number(original)
    assert (replacement.frequency, replacement.payer_claim_number) == ("7", "PCN9")
    assert validate_837d(export([replacement])) == []


def test_the_documented_claims_alongside_the_lakeshore_claim_form_two_transaction_sets() -> None:
    text = export([documented_capture_claim(), reader_claim()])

    assert len(only(parse(text), "ST")) == 2
    assert LAKESHORE.name.upper() in text
    assert validate_837d(text) == []


def test_created_at_controls_the_envelope_dates() -> None:
    text = export([documented_capture_claim()], created_at=datetime(2026, 1, 2, 3, 4, tzinfo=UTC))

    assert first(parse(text), "GS")[4:6] == ["20260102", "0304"]
