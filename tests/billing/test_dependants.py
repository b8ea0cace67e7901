"""A child covered on a parent's plan, from the visit's facts to both practices' 837D files: the worked example of
claims-lifecycle.md §7 (Ava Rivera on her mother Maria's plan; Maple Family Dental captures, Dr Patel reads)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from referral.billing.amend import attachment_control_number, with_attachment_control_number
from referral.billing.engine import generate_claims
from referral.billing.model import (
    Claim,
    CoverageFacts,
    SubscriberFacts,
)
from referral.billing.x12 import Submitter, claim_control_number, to_837d
from referral.billing.x12_validator import validate_837d
from tests.support.billing import by_role
from tests.support.dependants import MAPLE, MARIA, MARIAS_PLAN, ava_visit
from tests.support.x12 import Segment, claims_in, first, only, parse


def _ready(claim: Claim) -> Claim:
    """As billing sends it: the attachment package made and its number on the claim."""
    number = attachment_control_number(claim.referral_id, claim.billing_organization.id)
    return with_attachment_control_number(claim, number)


def _export(claims: list[Claim], sender: str) -> str:
    return to_837d(
        claims,
        sender_id=sender,
        receiver_id=MARIAS_PLAN.payer_id,
        interchange_control_number=7,
        group_control_number=7,
        created_at=datetime(2026, 4, 17, 8, tzinfo=UTC),
        submitter=Submitter(claims[0].billing_organization.name, "Billing Office", phone="217-555-0100"),
        usage="T",
    )


@pytest.fixture
def claims() -> dict[str, Claim]:
    return by_role(generate_claims(ava_visit()))


def _subscriber_and_patient(segments: list[Segment]) -> list[Segment]:
    start = segments.index(next(s for s in segments if s[0] == "HL" and s[3] == "22"))
    return segments[start : segments.index(first(segments, "CLM"))]


def test_the_gps_claim_names_the_mother_as_subscriber_and_ava_as_her_child(claims: dict[str, Claim]) -> None:
    text = _export([_ready(claims["capture"])], "MAPLE01")

    assert validate_837d(text) == []
    assert _subscriber_and_patient(parse(text)) == [
        ["HL", "2", "1", "22", "1"],
        ["SBR", "P", "", "55001", "", "", "", "", "", "12"],
        ["NM1", "IL", "1", "RIVERA", "MARIA", "", "", "", "MI", "ABC123456789"],
        ["N3", "12 OAK ST"],
        ["N4", "SPRINGFIELD", "IL", "62701"],
        ["DMG", "D8", "19880203", "F"],
        ["NM1", "PR", "2", "EXAMPLE DENTAL PLAN", "", "", "", "", "PI", "EXAMPLE-PPO"],
        ["HL", "3", "2", "23", "0"],
        ["PAT", "19"],
        ["NM1", "QC", "1", "RIVERA", "AVA"],
        ["N3", "12 OAK ST"],
        ["N4", "SPRINGFIELD", "IL", "62701"],
        ["DMG", "D8", "20160514", "F"],
    ]


def test_the_gps_claim_bills_three_capture_only_periapicals_with_its_note_and_attachment(
    claims: dict[str, Claim],
) -> None:
    capture = _ready(claims["capture"])
    segments = claims_in(_export([capture], "MAPLE01"))[0]

    assert first(segments, "CLM")[1:6] == [claim_control_number(capture), "105", "", "", "11:B:1"]
    package = attachment_control_number(capture.referral_id, MAPLE.id)
    assert only(segments, "PWK") == [["PWK", "RB", "EL", "", "", "AC", package]]
    assert only(segments, "NTE") == [
        ["NTE", "ADD", "CAPTURE ONLY; 3 PA TEETH 2-4 BY RDH J LEE ON 04/15/26; SENT TO DR K PATEL"]
    ]
    assert [s for s in segments if s[0] in ("SV3", "TOO", "DTP")][1:] == [
        ["SV3", "AD:D0707", "35"],
        ["TOO", "JP", "2"],
        ["DTP", "472", "D8", "20260415"],
        ["SV3", "AD:D0707", "35"],
        ["TOO", "JP", "3"],
        ["DTP", "472", "D8", "20260415"],
        ["SV3", "AD:D0707", "35"],
        ["TOO", "JP", "4"],
        ["DTP", "472", "D8", "20260415"],
    ]


def test_the_endodontists_claim_carries_the_same_subscriber_and_patient_and_the_reading_date(
    claims: dict[str, Claim],
) -> None:
    reading = _ready(claims["interpretation"])
    text = _export([reading], "PATEL01")

    assert validate_837d(text) == []
    capture_text = _export([_ready(claims["capture"])], "MAPLE01")
    assert _subscriber_and_patient(parse(text)) == _subscriber_and_patient(parse(capture_text))
    segments = claims_in(text)[0]
    assert [s[1] for s in only(segments, "SV3")] == ["AD:D0391", "AD:D0391", "AD:D0391", "AD:D9996"]
    assert {tuple(s) for s in only(segments, "DTP")} == {("DTP", "472", "D8", "20260416")}
    assert only(segments, "PWK")[0][:2] == ["PWK", "DG"]
    assert first(segments, "NM1", "DN")[3:5] == ["ORTIZ", "GRACE"]  # the GP who referred her


def test_both_practices_claims_also_travel_together_and_pass_the_validator(claims: dict[str, Claim]) -> None:
    text = _export([_ready(claims["capture"]), _ready(claims["interpretation"])], "CLEARHOUSE")

    assert validate_837d(text) == []
    assert len(only(parse(text), "PAT")) == 2


@pytest.mark.parametrize(("relationship", "code"), [("spouse", "01"), ("child", "19"), ("other", "G8")])
def test_each_relationship_gets_its_x12_code(relationship: str, code: str) -> None:
    coverage = CoverageFacts("EXAMPLE-PPO", "Example Dental Plan", "ABC123456789", None, relationship, MARIA)
    capture = by_role(generate_claims(ava_visit(coverage)))["capture"]

    text = _export([_ready(capture)], "MAPLE01")

    assert first(parse(text), "PAT") == ["PAT", code]
    assert validate_837d(text) == []


def test_a_subscriber_known_by_name_only_is_sent_by_name_only() -> None:
    coverage = CoverageFacts("EXAMPLE-PPO", "Example Dental Plan", "ABC123456789", None, "child",
                             SubscriberFacts("Maria", "Rivera"))
    capture = by_role(generate_claims(ava_visit(coverage)))["capture"]

    block = _subscriber_and_patient(parse(_export([_ready(capture)], "MAPLE01")))

    assert [segment[0] for segment in block[: block.index(["HL", "3", "2", "23", "0"])]] == ["HL", "SBR", "NM1", "NM1"]


def test_a_patient_who_is_the_subscriber_has_no_patient_level() -> None:
    coverage = CoverageFacts("EXAMPLE-PPO", "Example Dental Plan", "AVA0001", None, "self")
    capture = by_role(generate_claims(ava_visit(coverage)))["capture"]

    segments = parse(_export([_ready(capture)], "MAPLE01"))

    assert first(segments, "SBR")[2] == "18"
    assert first(segments, "NM1", "IL")[3:5] == ["RIVERA", "AVA"]
    assert only(segments, "PAT") == []
