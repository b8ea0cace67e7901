"""Which lines a payer wants documentation with, and how the engine marks them (PWK report types per payer)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from referral.billing.amend import as_replacement, with_attachment_control_number
from referral.billing.catalogue import CAPTURE_ONLY, CATALOGUE
from referral.billing.engine import generate_claims
from referral.billing.explain import explain
from referral.billing.model import Attachment
from referral.billing.profiles import DEFAULT_ATTACHMENTS, ProfileError, all_profiles, get_profile, parse_profile
from tests.support.billing import ALDER, REMOTE_DENTIST, by_role, image, visit

DEFAULT = get_profile("default")


def test_the_default_profile_wants_images_with_capture_only_radiographs_and_the_report_with_d0391() -> None:
    radiographs = {code for code, known in CATALOGUE.items() if known.category == CAPTURE_ONLY} - {"D0703", "D0704"}

    assert DEFAULT.attachments == {**dict.fromkeys(sorted(radiographs), "RB"), "D0391": "DG"}
    assert DEFAULT.attachment_for("D0707") == "RB"
    assert DEFAULT.attachment_for("D0391") == "DG"
    assert DEFAULT.attachment_for("D0703") is None  # photos are not radiographs
    assert DEFAULT.attachment_for("D0220") is None
    assert DEFAULT.attachment_transmission == "EL"


def test_every_shipped_profile_says_what_it_wants_attached() -> None:
    for profile in all_profiles():
        assert profile.attachments == DEFAULT_ATTACHMENTS, profile.id


def test_the_capture_claim_marks_its_capture_only_radiographs_and_lists_one_claim_attachment() -> None:
    facts = visit(image("pa-3", "periapical", "3"), image("bw-1", "bitewing"), image("ph-1", "photo_intraoral"))

    capture = by_role(generate_claims(facts))["capture"]

    assert [(line.code, line.attachment) for line in capture.lines] == [
        ("D0707", "RB"),
        ("D0708", "RB"),
        ("D0703", None),
    ]
    assert capture.attachments == (Attachment("RB", "EL", None, (1, 2)),)
    assert "radiographs or other images (PWK RB)" in capture.lines[0].explanation
    assert "PWK" not in capture.lines[2].explanation


def test_the_readers_claim_marks_d0391_for_the_signed_report_and_not_the_teledentistry_code() -> None:
    reading = by_role(generate_claims(visit(image("pa-3", "periapical", "3"))))["interpretation"]

    assert [(line.code, line.attachment) for line in reading.lines] == [("D0391", "DG"), ("D9996", None)]
    assert reading.attachments == (Attachment("DG", "EL", None, (1,)),)


def test_a_practice_that_took_and_read_its_images_needs_no_attachment_by_default() -> None:
    facts = visit(image("pa-3", "periapical", "3"), reader=REMOTE_DENTIST, reader_org=ALDER)

    single = generate_claims(facts)[0]

    assert single.attachments == ()
    assert all(line.attachment is None for line in single.lines)


def test_a_payer_can_ask_for_other_documents_sent_another_way() -> None:
    profile = replace(DEFAULT, attachments={"D0220": "RR", "D0707": "RB"}, attachment_transmission="FT")
    facts = visit(image("pa-3", "periapical", "3"), image("pa-4", "periapical", "4"), reader=REMOTE_DENTIST,
                  reader_org=ALDER)

    single = generate_claims(facts, profile)[0]

    assert single.attachments == (Attachment("RR", "FT", None, (1,)),)


def test_an_attachment_needs_a_control_number_unless_it_is_only_available_on_request() -> None:
    assert Attachment("RB").needs_control_number
    assert not Attachment("RB", "AA").needs_control_number


def _minimal(**extra: Any) -> dict[str, Any]:
    return {"id": "p", **extra}


def test_a_profile_without_attachments_takes_the_defaults_and_an_empty_one_wants_none() -> None:
    assert parse_profile(_minimal()).attachments == DEFAULT_ATTACHMENTS
    assert parse_profile(_minimal(attachments={})).attachments == {}


@pytest.mark.parametrize(
    ("attachments", "complaint"),
    [
        (["D0707"], "must be an object"),
        ({"D9999": "RB"}, "codes the catalogue does not know: D9999"),
        ({"D0707": "XX"}, "report type of D0707 must be one of"),
    ],
)
def test_a_profile_with_unclear_attachments_is_refused(attachments: object, complaint: str) -> None:
    with pytest.raises(ProfileError, match=complaint):
        parse_profile(_minimal(attachments=attachments))


def test_a_profile_with_an_unknown_transmission_is_refused() -> None:
    with pytest.raises(ProfileError, match="attachment_transmission must be one of"):
        parse_profile(_minimal(attachment_transmission="PIGEON"))


def test_the_explanation_lists_the_attachments_a_claim_needs_and_each_lines_own_place() -> None:
    capture = by_role(generate_claims(visit(image("pa-3", "periapical", "3"))))["capture"]
    single = generate_claims(
        visit(image("pa-4", "periapical", "4"), reader=REMOTE_DENTIST, reader_org=ALDER, place_of_service="03")
    )[0]

    before = explain([capture])
    after = explain([as_replacement(with_attachment_control_number(capture, "AT99"), "PCN7")])

    assert "attachment: radiographs or other images (PWK RB) for line 1; sent electronically" in before
    assert "package not made yet" in before
    assert "package AT99" in after
    assert "replacement of the payer's claim PCN7" in after
    assert f"narrative: {len(capture.narrative)} of 80 characters" in before
    assert capture.narrative not in before  # staff may type anything into it; the text stays out of tickets
    assert "2025-03-10  place 03" in explain([single])
