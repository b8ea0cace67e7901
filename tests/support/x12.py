"""Reading an 837D back for the tests: segments, claims and lines, and corrupting one on purpose."""

from __future__ import annotations

from collections.abc import Callable

from referral.billing.model import (
    Claim,
)
from referral.billing.x12 import (
    to_837d,
)
from referral.billing.x12_validator import validate_837d
from tests.support.claims import (
    CREATED_AT,
    SUBMITTER,
)


def export(claims: list[Claim], **overrides: object) -> str:
    options: dict[str, object] = {
        "sender_id": "NORTHSIDE01",
        "receiver_id": "CLEARHOUSE",
        "interchange_control_number": 42,
        "group_control_number": 7,
        "created_at": CREATED_AT,
        "submitter": SUBMITTER,
        "receiver_name": "Example Clearinghouse",
        "usage": "T",
    }
    options.update(overrides)
    return to_837d(claims, **options)


Segment = list[str]


def parse(text: str) -> list[Segment]:
    return [raw.split("*") for raw in text.split("~") if raw]


def render(segments: list[Segment]) -> str:
    return "".join("*".join(segment) + "~" for segment in segments)


def recount(segments: list[Segment]) -> None:
    """Fix SE01 after an edit, so that a test corrupts one thing only."""
    start = 0
    for index, segment in enumerate(segments):
        if segment[0] == "ST":
            start = index
        elif segment[0] == "SE":
            segment[1] = str(index - start + 1)


def corrupt(text: str, edit: Callable[[list[Segment]], None]) -> str:
    segments = parse(text)
    edit(segments)
    recount(segments)
    return render(segments)


def claims_in(text: str) -> list[list[Segment]]:
    """Each claim's segments, from its CLM to the next HL, CLM or SE."""
    blocks: list[list[Segment]] = []
    current: list[Segment] | None = None
    for segment in parse(text):
        if segment[0] == "CLM":
            current = [segment]
            blocks.append(current)
        elif segment[0] in ("HL", "SE"):
            current = None
        elif current is not None:
            current.append(segment)
    return blocks


def lines_in(claim: list[Segment]) -> list[list[Segment]]:
    blocks: list[list[Segment]] = []
    for segment in claim:
        if segment[0] == "LX":
            blocks.append([segment])
        elif blocks:
            blocks[-1].append(segment)
    return blocks


def first(segments: list[Segment], tag: str, qualifier: str | None = None) -> Segment:
    return next(s for s in segments if s[0] == tag and (qualifier is None or s[1] == qualifier))


def only(segments: list[Segment], tag: str, qualifier: str | None = None) -> list[Segment]:
    return [s for s in segments if s[0] == tag and (qualifier is None or s[1] == qualifier)]


def claim_with(text: str, code: str) -> list[Segment]:
    """The claim whose first line bills ``code``."""
    return next(c for c in claims_in(text) if first(c, "SV3")[1] == f"AD:{code}")


def problems_after(interchange: str, edit: Callable[[list[Segment]], None]) -> list[str]:
    return validate_837d(corrupt(interchange, edit))


def assert_reported(problems: list[str], fragment: str) -> None:
    assert any(fragment in problem for problem in problems), problems
