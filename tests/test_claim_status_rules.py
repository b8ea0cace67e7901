"""The claim life cycle's moves, without a database: which status may follow which."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from referral.errors import Conflict
from referral.models import CLAIM_STATUSES
from referral.services import claim_lifecycle as lifecycle
from referral.services.actor import Actor


class _Session:
    def get(self, *_args: Any) -> None:
        return None


def _claim(status: str | None) -> Any:
    return SimpleNamespace(status=status, events=[], updated_at=None)


def test_every_status_has_its_moves_and_words():
    assert set(lifecycle.ALLOWED) == {None, *CLAIM_STATUSES}
    assert set(lifecycle.STATUS_WORDS) == set(CLAIM_STATUSES)
    for targets in lifecycle.ALLOWED.values():
        assert targets <= set(CLAIM_STATUSES)


@pytest.mark.parametrize(("before", "after"), [
    ("ready", "submitted"), ("submitted", "accepted"), ("submitted", "rejected"), ("accepted", "paid"),
    ("accepted", "partially_paid"), ("submitted", "denied"), ("denied", "appealed"), ("denied", "corrected"),
    ("paid", "closed"), ("rejected", "submitted"), ("rejected", "ready"), ("hold", "ready"), ("ready", "hold"),
])
def test_the_life_cycle_moves_forward(before: str, after: str):
    claim = _claim(before)
    event = lifecycle.change_status(_Session(), Actor.operator(), claim, after, "why")  # type: ignore[arg-type]
    assert claim.status == after
    assert (event.from_status, event.to_status, event.sequence, event.note) == (before, after, 1, "why")
    assert event.actor_label == "the system"


@pytest.mark.parametrize(("before", "after"), [
    ("hold", "submitted"), ("ready", "paid"), ("paid", "ready"), ("closed", "paid"), ("submitted", "hold"),
    ("accepted", "submitted"),
])
def test_a_move_the_life_cycle_does_not_allow_is_refused(before: str, after: str):
    claim = _claim(before)
    with pytest.raises(Conflict):
        lifecycle.change_status(_Session(), Actor.operator(), claim, after)  # type: ignore[arg-type]
    assert claim.status == before
    assert claim.events == []


def test_a_reversal_may_put_back_any_earlier_status_and_a_note_keeps_the_status():
    claim = _claim("paid")
    lifecycle.change_status(_Session(), Actor.operator(), claim, "accepted", "reversed", force=True)  # type: ignore[arg-type]
    note = lifecycle.note(_Session(), Actor.operator(), claim, "looked at it")  # type: ignore[arg-type]
    assert claim.status == "accepted"
    assert (note.from_status, note.to_status, note.sequence) == ("accepted", "accepted", 2)
