"""The CDT codes the engine emits or checks, labelled in our own short words.

Only code numbers come from CDT; the ADA's descriptor texts are copyrighted, so every label here is ours and is
meant for a billing clerk reading an explanation, not for a claim form. Dates are the first and last day a code may
be reported (docs/billing.md, "Code catalogue"); ``None`` means the code predates or outlives anything this system
bills.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

__all__ = [
    "CAPTURE_AND_INTERPRETATION",
    "CAPTURE_ONLY",
    "CATALOGUE",
    "EVALUATION",
    "INTERPRETATION",
    "TELEDENTISTRY",
    "TWINS",
    "Procedure",
    "UnknownCode",
    "capture_only_twin",
    "is_valid_on",
    "label",
    "procedure",
    "twins_of",
]

# Categories. A code's category says which component of imaging it bills, which is what the split rule turns on.
CAPTURE_ONLY = "capture only"
CAPTURE_AND_INTERPRETATION = "capture and interpretation"
INTERPRETATION = "interpretation only"
EVALUATION = "evaluation"
TELEDENTISTRY = "teledentistry"


class UnknownCode(KeyError):
    """A code the catalogue does not describe; the engine cannot vouch for its validity."""


@dataclass(frozen=True)
class Procedure:
    code: str
    label: str
    category: str
    valid_from: date | None = None
    valid_to: date | None = None

    def is_valid_on(self, day: date) -> bool:
        if self.valid_from is not None and day < self.valid_from:
            return False
        return not (self.valid_to is not None and day > self.valid_to)


_CDT_2013 = date(2013, 1, 1)  # CBCT split into capture-only and capture-with-reading codes (docs/billing.md)
_CDT_2018 = date(2018, 1, 1)  # teledentistry codes first reportable
_CDT_2021 = date(2021, 1, 1)  # the image-capture-only family
_BEFORE_CDT_2023 = date(2022, 12, 31)  # last day for the retired 3D photo codes

_PROCEDURES = (
    # Evaluations. Only D0140 is emitted by default; the others exist so a payer profile can choose one.
    Procedure("D0120", "periodic evaluation, patient of record", EVALUATION),
    Procedure("D0140", "limited evaluation, one problem", EVALUATION),
    Procedure("D0150", "comprehensive evaluation, new or returning patient", EVALUATION),
    Procedure("D0170", "limited re-evaluation of a known problem", EVALUATION),
    Procedure("D0171", "re-evaluation after surgery", EVALUATION),
    # Capture with reading: one practice took the image and read it.
    Procedure("D0210", "complete intraoral series, taken and read", CAPTURE_AND_INTERPRETATION),
    Procedure("D0220", "periapical, first of the day, taken and read", CAPTURE_AND_INTERPRETATION),
    Procedure("D0230", "periapical, each further one that day, taken and read", CAPTURE_AND_INTERPRETATION),
    Procedure("D0240", "occlusal film, taken and read", CAPTURE_AND_INTERPRETATION),
    Procedure("D0251", "extraoral posterior film, taken and read", CAPTURE_AND_INTERPRETATION),
    Procedure("D0270", "one bitewing, taken and read", CAPTURE_AND_INTERPRETATION),
    Procedure("D0272", "set of two bitewings, taken and read", CAPTURE_AND_INTERPRETATION),
    Procedure("D0273", "set of three bitewings, taken and read", CAPTURE_AND_INTERPRETATION),
    Procedure("D0274", "set of four bitewings, taken and read", CAPTURE_AND_INTERPRETATION),
    Procedure("D0277", "set of seven or eight vertical bitewings, taken and read", CAPTURE_AND_INTERPRETATION),
    Procedure("D0330", "panoramic film, taken and read", CAPTURE_AND_INTERPRETATION),
    Procedure("D0340", "cephalometric film, taken, read and traced", CAPTURE_AND_INTERPRETATION),
    Procedure("D0350", "2D photos of mouth or face, taken and reviewed", CAPTURE_AND_INTERPRETATION),
    Procedure("D0351", "3D photo, taken and reviewed (retired)", CAPTURE_AND_INTERPRETATION, None, _BEFORE_CDT_2023),
    Procedure("D0364", "cone beam CT, small field, taken and read", CAPTURE_AND_INTERPRETATION, _CDT_2013),
    Procedure("D0365", "cone beam CT, lower arch, taken and read", CAPTURE_AND_INTERPRETATION, _CDT_2013),
    Procedure("D0366", "cone beam CT, upper arch, taken and read", CAPTURE_AND_INTERPRETATION, _CDT_2013),
    Procedure("D0367", "cone beam CT, both jaws, taken and read", CAPTURE_AND_INTERPRETATION, _CDT_2013),
    Procedure("D0368", "cone beam CT, jaw joints, taken and read", CAPTURE_AND_INTERPRETATION, _CDT_2013),
    # Capture only: this practice took the image, someone at another practice reads it.
    Procedure("D0380", "cone beam CT, small field, capture only", CAPTURE_ONLY, _CDT_2013),
    Procedure("D0381", "cone beam CT, lower arch, capture only", CAPTURE_ONLY, _CDT_2013),
    Procedure("D0382", "cone beam CT, upper arch, capture only", CAPTURE_ONLY, _CDT_2013),
    Procedure("D0383", "cone beam CT, both jaws, capture only", CAPTURE_ONLY, _CDT_2013),
    Procedure("D0384", "cone beam CT, jaw joints, capture only", CAPTURE_ONLY, _CDT_2013),
    Procedure("D0701", "panoramic, capture only", CAPTURE_ONLY, _CDT_2021),
    Procedure("D0702", "cephalometric, capture only", CAPTURE_ONLY, _CDT_2021),
    Procedure("D0703", "2D photo, capture only", CAPTURE_ONLY, _CDT_2021),
    Procedure("D0704", "3D photo, capture only (retired)", CAPTURE_ONLY, _CDT_2021, _BEFORE_CDT_2023),
    Procedure("D0705", "extraoral posterior, capture only", CAPTURE_ONLY, _CDT_2021),
    Procedure("D0706", "occlusal, capture only", CAPTURE_ONLY, _CDT_2021),
    Procedure("D0707", "periapical, capture only", CAPTURE_ONLY, _CDT_2021),
    Procedure("D0708", "bitewing, capture only", CAPTURE_ONLY, _CDT_2021),
    Procedure("D0709", "complete intraoral series, capture only", CAPTURE_ONLY, _CDT_2021),
    # Reading only. Its first year is not confirmed by any source we hold (docs/billing.md), so no start date.
    Procedure("D0391", "reading of another practice's image, with written report", INTERPRETATION),
    Procedure("D9995", "teledentistry, live video", TELEDENTISTRY, _CDT_2018),
    Procedure("D9996", "teledentistry, stored and forwarded for later review", TELEDENTISTRY, _CDT_2018),
)

CATALOGUE: dict[str, Procedure] = {p.code: p for p in _PROCEDURES}

# Capture-only code -> the capture-with-reading codes that bill the same image (docs/billing.md, "Code catalogue").
# D0277 is listed with the bitewing group although the sources' pairing stops at D0274: a vertical bitewing set is
# the same images.
TWINS: dict[str, tuple[str, ...]] = {
    "D0707": ("D0220", "D0230"),
    "D0708": ("D0270", "D0272", "D0273", "D0274", "D0277"),
    "D0709": ("D0210",),
    "D0706": ("D0240",),
    "D0705": ("D0251",),
    "D0701": ("D0330",),
    "D0702": ("D0340",),
    "D0703": ("D0350",),
    "D0704": ("D0351",),
    "D0380": ("D0364",),
    "D0381": ("D0365",),
    "D0382": ("D0366",),
    "D0383": ("D0367",),
    "D0384": ("D0368",),
}

_CAPTURE_ONLY_OF: dict[str, str] = {full: capture for capture, fulls in TWINS.items() for full in fulls}


def procedure(code: str) -> Procedure:
    try:
        return CATALOGUE[code]
    except KeyError:
        raise UnknownCode(f"{code} is not in the claims engine's code catalogue") from None


def label(code: str) -> str:
    """Our short label for ``code``, or an empty string for a code we do not describe."""
    known = CATALOGUE.get(code)
    return known.label if known else ""


def is_valid_on(code: str, day: date) -> bool:
    """Whether ``code`` may be reported for a service on ``day``; raises UnknownCode for codes not catalogued."""
    return procedure(code).is_valid_on(day)


def capture_only_twin(code: str) -> str | None:
    """The capture-only code billing the capture part of the capture-with-reading ``code``, if it has one."""
    return _CAPTURE_ONLY_OF.get(code)


def twins_of(code: str) -> frozenset[str]:
    """Codes that bill an overlapping component of the same image as ``code`` (either direction)."""
    if code in TWINS:
        return frozenset(TWINS[code])
    capture = _CAPTURE_ONLY_OF.get(code)
    return frozenset({capture}) if capture else frozenset()
