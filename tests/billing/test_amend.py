"""Billing's changes to a generated claim before it leaves: narrative, attachment number, replacement and void,
and the control numbers of the files they travel in."""

from __future__ import annotations

import dataclasses

import pytest

from referral.billing.amend import (
    MAX_CONTROL_NUMBER,
    ClaimChangeError,
    as_replacement,
    as_void,
    attachment_control_number,
    next_control_number,
    with_attachment_control_number,
    with_narrative,
)
from referral.billing.model import Attachment, Claim
from referral.billing.narrative import NarrativeError
from tests.support.claims import capture_claim


def _with_attachments(*attachments: Attachment) -> Claim:
    return dataclasses.replace(capture_claim(), attachments=attachments)


def test_a_narrative_is_stored_as_the_837d_will_carry_it() -> None:
    claim = with_narrative(capture_claim(), "Capture only; sent to Dr. Reyes*")

    assert claim.narrative == "CAPTURE ONLY; SENT TO DR. REYES"
    assert claim.lines == capture_claim().lines


def test_a_narrative_that_cannot_be_carried_is_refused() -> None:
    with pytest.raises(NarrativeError):
        with_narrative(capture_claim(), "x" * 81)


def test_the_attachment_number_is_stable_per_referral_practice_and_revision() -> None:
    first = attachment_control_number("ref-1", "org-a")

    assert first == attachment_control_number("ref-1", "org-a")
    assert first != attachment_control_number("ref-1", "org-b")
    assert first != attachment_control_number("ref-2", "org-a")
    assert first != attachment_control_number("ref-1", "org-a", revision=2)
    assert first.isalnum()
    assert first.startswith("AT")
    assert len(first) == 20
    assert "REF" not in first


@pytest.mark.parametrize("revision", [0, 10_000])
def test_an_attachment_revision_out_of_range_is_refused(revision: int) -> None:
    with pytest.raises(ClaimChangeError, match="revision"):
        attachment_control_number("ref-1", "org-a", revision)


def test_the_package_number_goes_on_every_attachment_that_is_sent_and_not_on_those_on_request() -> None:
    claim = _with_attachments(Attachment("RB", "EL", None, (1,)), Attachment("DG", "AA", None, (3,)))

    numbered = with_attachment_control_number(claim, "AT1234")

    assert numbered.attachments == (Attachment("RB", "EL", "AT1234", (1,)), Attachment("DG", "AA", None, (3,)))


@pytest.mark.parametrize("number", ["X", "A" * 81, "AB*CD", "AB\u00e9"])
def test_an_attachment_number_a_payer_could_not_read_is_refused(number: str) -> None:
    claim = _with_attachments(Attachment("RB"))

    with pytest.raises(ClaimChangeError, match="attachment control number"):
        with_attachment_control_number(claim, number)


def test_a_claim_without_attachments_takes_no_attachment_number() -> None:
    with pytest.raises(ClaimChangeError, match="no attachment"):
        with_attachment_control_number(capture_claim(), "AT1234")


def test_a_replacement_and_a_void_keep_the_lines_and_name_the_payers_claim() -> None:
    original = capture_claim()

    replacement = as_replacement(original, " PCN1 ")
    void = as_void(original, "PCN1")

    assert (replacement.frequency, replacement.payer_claim_number) == ("7", "PCN1")
    assert (void.frequency, void.payer_claim_number) == ("8", "PCN1")
    assert replacement.lines == void.lines == original.lines


@pytest.mark.parametrize("number", ["", "  ", "P" * 51, "PCN*1"])
def test_a_correction_without_a_usable_payer_claim_number_is_refused(number: str) -> None:
    with pytest.raises(ClaimChangeError, match="payer's claim number"):
        as_replacement(capture_claim(), number)


def test_control_numbers_start_at_one_and_only_go_up() -> None:
    assert next_control_number(None) == 1
    assert next_control_number(1) == 2
    assert next_control_number(MAX_CONTROL_NUMBER - 1) == MAX_CONTROL_NUMBER


@pytest.mark.parametrize("previous", [MAX_CONTROL_NUMBER, -1])
def test_no_control_number_is_reused_or_wrapped(previous: int) -> None:
    with pytest.raises(ClaimChangeError, match="control numbers run from 1"):
        next_control_number(previous)
