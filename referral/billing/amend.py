"""What billing staff change on a generated claim before it leaves: its narrative, its attachment package's control
number, and whether it replaces or voids one the payer already has. Each function returns a new claim and never
touches the lines: what was billed stays what the engine and its rules produced.

Errors are ClaimChangeError (or NarrativeError for a narrative), whose messages name the field and never echo
identifiers or text, which are patient data.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

from referral.billing.model import Claim
from referral.billing.narrative import normalize_narrative

__all__ = [
    "MAX_CONTROL_NUMBER",
    "ClaimChangeError",
    "as_replacement",
    "as_void",
    "attachment_control_number",
    "next_control_number",
    "with_attachment_control_number",
    "with_narrative",
]

MAX_CONTROL_NUMBER = 999_999_999  # ISA13 and GS06 hold nine digits
_SEPARATORS = frozenset("*:^~")


class ClaimChangeError(ValueError):
    """A change that would make the claim wrong or unsendable."""


def with_narrative(claim: Claim, text: str) -> Claim:
    """``claim`` with billing's own narrative, as the 837D will carry it (NarrativeError when it cannot)."""
    return replace(claim, narrative=normalize_narrative(text))


def attachment_control_number(referral_id: str, organization_id: str, revision: int = 1) -> str:
    """A control number for one practice's attachment package on one referral: stable for the same revision, and a
    new one when the package is rebuilt (an attachment service gives a new id when images are added).

    ``AT`` + 16 hex digits of a digest + the revision: letters and digits only, 20 characters, well inside PWK06's
    2 to 80, and it names nobody.
    """
    if not 1 <= revision <= 9999:
        raise ClaimChangeError("the attachment package revision must be between 1 and 9999")
    digest = hashlib.sha256(f"attachment\x1f{referral_id}\x1f{organization_id}".encode()).hexdigest()[:16].upper()
    return f"AT{digest}{revision:02d}"


def with_attachment_control_number(claim: Claim, control_number: str) -> Claim:
    """``claim`` with its attachment package's number on every attachment that is sent (all but on-request ones).

    The package holds all of the claim's documentation, so every PWK points at the same number.
    """
    text = control_number.strip()
    if not 2 <= len(text) <= 80:
        raise ClaimChangeError("an attachment control number has 2 to 80 characters")
    if any(ch in _SEPARATORS or not (ch.isascii() and ch.isprintable()) for ch in text):
        raise ClaimChangeError("an attachment control number may hold printable ASCII other than * : ^ ~")
    if not claim.attachments:
        raise ClaimChangeError("this claim has no attachment for the payer, so it takes no attachment number")
    return replace(
        claim,
        attachments=tuple(
            replace(attachment, control_number=text) if attachment.needs_control_number else attachment
            for attachment in claim.attachments
        ),
    )


def _correction(claim: Claim, payer_claim_number: str, frequency: str) -> Claim:
    number = payer_claim_number.strip()
    if not number:
        raise ClaimChangeError("a replacement or void needs the payer's claim number (CLP07 of its remittance)")
    if len(number) > 50 or any(ch in _SEPARATORS or not (ch.isascii() and ch.isprintable()) for ch in number):
        raise ClaimChangeError("the payer's claim number must be at most 50 printable ASCII characters without * : ^ ~")
    return replace(claim, frequency=frequency, payer_claim_number=number)


def as_replacement(claim: Claim, payer_claim_number: str) -> Claim:
    """The claim sent again to replace the payer's ``payer_claim_number`` (frequency 7, REF*F8)."""
    return _correction(claim, payer_claim_number, "7")


def as_void(claim: Claim, payer_claim_number: str) -> Claim:
    """The claim sent again to cancel the payer's ``payer_claim_number`` (frequency 8, REF*F8); its lines repeat
    the original's so the payer can match what it voids."""
    return _correction(claim, payer_claim_number, "8")


def next_control_number(previous: int | None) -> int:
    """The interchange or group control number after ``previous`` (None: the first), never reused or wrapped: a
    receiver that sees a number again takes the file for a duplicate."""
    if previous is None:
        return 1
    if not 0 <= previous < MAX_CONTROL_NUMBER:
        raise ClaimChangeError(f"control numbers run from 1 to {MAX_CONTROL_NUMBER}; none is left after {previous}")
    return previous + 1
