"""Free text as an X12 element can carry it: the basic character set, upper case, without our separators.

X12 has no escape mechanism, so a character that is not allowed (or that is one of our separators) can only be left
out. Lower case belongs to the extended set, which not every payer accepts, hence the customary upper-casing.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["BASIC_CHARACTERS", "basic_text"]

# The basic character set less the element (*), component (:), repetition (^) and segment (~) separators we use.
BASIC_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 !\"&'()+,-./;?=")
_NOT_BASIC = re.compile(r"[^A-Z0-9 !\"&'()+,\-./;?=]")


def basic_text(value: str) -> str:
    """``value`` upper-cased, accents reduced to their letter (José -> JOSE), other characters turned into spaces,
    and runs of spaces collapsed."""
    ascii_only = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    return " ".join(_NOT_BASIC.sub(" ", ascii_only.upper()).split())
