"""Tooth numbering, oral areas and surfaces in ADA Universal terms.

Everything the server stores or bills uses ADA Universal designations; other
notations (ISO 3950 / FDI, SNOMED CT concepts found in DICOM) are converted at
the edge so the rest of the code only ever sees one scheme.
"""

from __future__ import annotations

import re
from typing import Literal

from pydicom.sr._cid_dict import cid_concepts
from pydicom.sr._snomed_dict import mapping as _snomed_rt_mapping
from pydicom.sr.codedict import codes

__all__ = [
    "AREAS",
    "PERMANENT_TEETH",
    "PRIMARY_TEETH",
    "SURFACES",
    "fdi_from_universal",
    "normalize_area",
    "normalize_surfaces",
    "normalize_tooth",
    "parse_teeth",
    "snomed_from_universal",
    "tooth_arch",
    "tooth_quadrant",
    "universal_from_fdi",
    "universal_from_snomed",
    "universal_from_snomed_rt",
]

Arch = Literal["maxillary", "mandibular"]
Quadrant = Literal["10", "20", "30", "40"]

PERMANENT_TEETH: tuple[str, ...] = tuple(str(n) for n in range(1, 33))
PRIMARY_TEETH: tuple[str, ...] = tuple("ABCDEFGHIJKLMNOPQRST")
_SUPERNUMERARY_PERMANENT: tuple[str, ...] = tuple(str(n + 50) for n in range(1, 33))
_SUPERNUMERARY_PRIMARY: tuple[str, ...] = tuple(letter + "S" for letter in PRIMARY_TEETH)
_ALL_TEETH = frozenset(PERMANENT_TEETH + PRIMARY_TEETH + _SUPERNUMERARY_PERMANENT + _SUPERNUMERARY_PRIMARY)

# An escape rather than a literal en dash keeps the source ASCII-only.
_TOOTH_RANGES = "1\u201332, A\u2013T, 51\u201382, AS\u2013TS"

AREAS: dict[str, str] = {
    "00": "whole mouth",
    "01": "maxillary arch",
    "02": "mandibular arch",
    "10": "upper right quadrant",
    "20": "upper left quadrant",
    "30": "lower left quadrant",
    "40": "lower right quadrant",
}

SURFACES = "MOIDBFL"

# Echoing arbitrarily long client input back in an error message helps nobody.
_ECHO_LIMIT = 40


def _echo(value: object) -> str:
    text = str(value)
    if len(text) > _ECHO_LIMIT:
        text = text[:_ECHO_LIMIT] + "..."
    return repr(text)


_NUMBER = re.compile(r"[0-9]+")
_LETTERS = re.compile(r"[A-Z]S?")


def _try_normalize_tooth(value: object) -> str | None:
    # bool is an int subclass; True must not silently become tooth 1.
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip().upper()
    # fullmatch with an ASCII class: str.isdigit() would accept e.g. fullwidth digits.
    if _NUMBER.fullmatch(text):
        text = str(int(text))
    elif not _LETTERS.fullmatch(text):
        return None
    return text if text in _ALL_TEETH else None


def normalize_tooth(value: str | int) -> str:
    """Return the canonical ADA Universal designation for ``value``.

    Raises ValueError with a message fit to show to the person who typed it.
    """
    tooth = _try_normalize_tooth(value)
    if tooth is None:
        shown = value.strip() if isinstance(value, str) else value
        raise ValueError(f"{_echo(shown)} is not an ADA Universal tooth number ({_TOOTH_RANGES})")
    return tooth


def parse_teeth(value: str | list[str] | list[str | int]) -> list[str]:
    """Parse a comma-separated string or a list into distinct Universal designations.

    Order is preserved (first occurrence wins) because clinicians list teeth in
    the order that matters to them. Blank entries, e.g. from a trailing comma,
    are skipped. Every bad entry is reported at once so a form can be fixed in
    one round trip.
    """
    entries: list[object] = list(value.split(",")) if isinstance(value, str) else list(value)
    teeth: list[str] = []
    bad: list[str] = []
    for entry in entries:
        if isinstance(entry, str) and not entry.strip():
            continue
        tooth = _try_normalize_tooth(entry)
        if tooth is None:
            bad.append(_echo(entry.strip() if isinstance(entry, str) else entry))
        elif tooth not in teeth:
            teeth.append(tooth)
    if bad:
        noun = (
            "is not an ADA Universal tooth number"
            if len(bad) == 1
            else ("are not ADA Universal tooth numbers")
        )
        raise ValueError(f"{', '.join(bad)} {noun} ({_TOOTH_RANGES})")
    return teeth


def normalize_area(value: str | int) -> str:
    """Return the two-digit ADA oral area code ("00", "01", "02", "10" ... "40")."""
    text = str(value).strip() if not isinstance(value, bool) else ""
    if _NUMBER.fullmatch(text) and len(text) <= 2:
        text = text.zfill(2)
    if text not in AREAS:
        choices = ", ".join(f"{code} {name}" for code, name in AREAS.items())
        raise ValueError(f"{_echo(value)} is not an ADA oral area code ({choices})")
    return text


def normalize_surfaces(value: str) -> str:
    """Return surfaces as uppercase letters from ``SURFACES``, duplicates dropped.

    The input order is kept because conventional spellings ("MOD", "DO") are
    what clinicians expect to read back.
    """
    if not isinstance(value, str):
        raise ValueError(f"{_echo(value)} is not a list of tooth surfaces ({SURFACES})")
    text = value.strip().upper()
    if not text:
        raise ValueError(f"at least one tooth surface is required ({', '.join(SURFACES)})")
    bad = sorted({ch for ch in text if ch not in SURFACES})
    if bad:
        raise ValueError(
            f"{_echo(value.strip())} contains invalid tooth surfaces "
            f"({', '.join(repr(ch) for ch in bad)}); use only {', '.join(SURFACES)}"
        )
    return "".join(dict.fromkeys(text))


def _base_tooth(tooth: str | int) -> str:
    """Map a supernumerary designation onto the regular tooth it sits beside."""
    canonical = normalize_tooth(tooth)
    if canonical.isdigit():
        number = int(canonical)
        return str(number - 50) if number > 50 else canonical
    return canonical[0]


def tooth_quadrant(tooth: str | int) -> Quadrant:
    """Return the ADA area code of the quadrant holding ``tooth``."""
    base = _base_tooth(tooth)
    # Universal numbering runs clockwise from the patient's upper right, so
    # each quadrant is a contiguous block (8 permanent, 5 primary teeth).
    index = int(base) - 1 if base.isdigit() else PRIMARY_TEETH.index(base)
    block = 8 if base.isdigit() else 5
    quadrants: tuple[Quadrant, ...] = ("10", "20", "30", "40")
    return quadrants[index // block]


def tooth_arch(tooth: str | int) -> Arch:
    """Return "maxillary" or "mandibular" for ``tooth``."""
    return "maxillary" if tooth_quadrant(tooth) in ("10", "20") else "mandibular"


# --- ISO 3950 / FDI ---------------------------------------------------------

_PERMANENT_POSITIONS = 8
_PRIMARY_POSITIONS = 5


def _universal_from_position(primary: bool, quadrant: int, position: int) -> str:
    """Universal designation for FDI-style (quadrant 1-4, position from the midline).

    Positions count outward from the midline while Universal numbers run
    clockwise, so quadrants 1 and 3 count down and quadrants 2 and 4 count up.
    """
    size = _PRIMARY_POSITIONS if primary else _PERMANENT_POSITIONS
    if not (1 <= quadrant <= 4 and 1 <= position <= size):
        raise ValueError(f"no such tooth: quadrant {quadrant}, position {position}")
    start = (quadrant - 1) * size
    offset = size - position if quadrant in (1, 3) else position - 1
    index = start + offset
    return PRIMARY_TEETH[index] if primary else str(index + 1)


def _position_from_universal(tooth: str) -> tuple[bool, int, int]:
    primary = not tooth.isdigit()
    size = _PRIMARY_POSITIONS if primary else _PERMANENT_POSITIONS
    index = PRIMARY_TEETH.index(tooth) if primary else int(tooth) - 1
    quadrant, offset = divmod(index, size)
    quadrant += 1
    position = size - offset if quadrant in (1, 3) else offset + 1
    return primary, quadrant, position


def universal_from_fdi(code: str | int) -> str:
    """Convert a two-digit ISO 3950 (FDI) designation, e.g. "36" -> "19", "55" -> "A"."""
    text = str(code).strip() if not isinstance(code, bool) else ""
    if not re.fullmatch(r"[1-8][1-8]", text):
        raise ValueError(f"{_echo(code)} is not an ISO 3950 (FDI) tooth number")
    quadrant, position = int(text[0]), int(text[1])
    primary = quadrant > 4
    try:
        return _universal_from_position(primary, quadrant - 4 if primary else quadrant, position)
    except ValueError:
        raise ValueError(f"{_echo(code)} is not an ISO 3950 (FDI) tooth number") from None


def fdi_from_universal(tooth: str | int) -> str:
    """Convert a Universal designation to ISO 3950 (FDI); supernumeraries have no FDI code."""
    canonical = normalize_tooth(tooth)
    if canonical not in PERMANENT_TEETH and canonical not in PRIMARY_TEETH:
        raise ValueError(f"supernumerary tooth {canonical} has no ISO 3950 (FDI) number")
    primary, quadrant, position = _position_from_universal(canonical)
    return f"{quadrant + 4 if primary else quadrant}{position}"


# --- SNOMED CT (DICOM CID 4018 permanent / CID 4019 deciduous) --------------

_CID_PERMANENT = 4018
_CID_DECIDUOUS = 4019

_WORDS = re.compile(r"[A-Z][a-z]*|[a-z]+|[0-9]+")
_ORDINALS = {"first": 1, "second": 2, "third": 3}
# Position counted from the midline, as in ISO 3950.
_PERMANENT_KINDS = {
    ("central", None): 1,
    ("lateral", None): 2,
    ("canine", None): 3,
    ("premolar", 1): 4,
    ("premolar", 2): 5,
    ("molar", 1): 6,
    ("molar", 2): 7,
    ("molar", 3): 8,
}
_PRIMARY_KINDS = {
    ("central", None): 1,
    ("lateral", None): 2,
    ("canine", None): 3,
    ("molar", 1): 4,
    ("molar", 2): 5,
}
_SYNONYMS = {"cuspid": "canine", "bicuspid": "premolar", "upper": "maxillary", "lower": "mandibular"}
# Words that carry no information for placing a tooth; DICOM's keywords use
# them inconsistently (e.g. "MandibularLeftLateralTooth" has no "Incisor").
_NOISE = {"tooth", "teeth", "incisor", "of"}


def _tooth_from_keyword(keyword: str, default_primary: bool) -> str:
    """Place a DICOM concept keyword such as 'PermanentMaxillaryRightThirdMolarTooth'."""
    words = [_SYNONYMS.get(w.lower(), w.lower()) for w in _WORDS.findall(keyword)]
    words = [w for w in words if w not in _NOISE]

    primary = default_primary
    arch = side = kind = None
    ordinal: int | None = None
    for word in words:
        if word in ("deciduous", "primary"):
            primary = True
        elif word == "permanent":
            primary = False
        elif word in ("maxillary", "mandibular"):
            arch = word
        elif word in ("left", "right"):
            side = word
        elif word in _ORDINALS:
            ordinal = _ORDINALS[word]
        elif word in ("central", "lateral", "canine", "premolar", "molar"):
            kind = word
        else:
            raise ValueError(f"unexpected word {word!r} in tooth concept {keyword!r}")
    if primary != default_primary:
        raise ValueError(f"tooth concept {keyword!r} contradicts the dentition of its CID")
    if arch is None or side is None or kind is None:
        raise ValueError(f"tooth concept {keyword!r} lacks arch, side or tooth type")
    positions = _PRIMARY_KINDS if primary else _PERMANENT_KINDS
    position = positions.get((kind, ordinal))
    if position is None:
        raise ValueError(f"tooth concept {keyword!r} names no known tooth")
    # FDI quadrants: 1 upper right, 2 upper left, 3 lower left, 4 lower right.
    quadrant = {
        ("maxillary", "right"): 1,
        ("maxillary", "left"): 2,
        ("mandibular", "left"): 3,
        ("mandibular", "right"): 4,
    }[(arch, side)]
    return _universal_from_position(primary, quadrant, position)


def _build_snomed_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for cid, primary in ((_CID_PERMANENT, False), (_CID_DECIDUOUS, True)):
        for keyword in cid_concepts[cid]["SCT"]:
            code = str(getattr(codes.SCT, keyword).value)
            tooth = _tooth_from_keyword(keyword, default_primary=primary)
            if code in table or tooth in table.values():
                raise RuntimeError(f"SNOMED tooth table: {keyword} ({code}) maps to {tooth} twice")
            table[code] = tooth
    expected = set(PERMANENT_TEETH) | set(PRIMARY_TEETH)
    if set(table.values()) != expected:
        missing = sorted(expected - set(table.values()))
        raise RuntimeError(f"SNOMED tooth table is missing teeth {missing}")
    return table


# Derived from pydicom's copy of the DICOM standard rather than typed by hand,
# so a transcription slip cannot silently misfile a radiograph.
_SNOMED_TO_UNIVERSAL: dict[str, str] = _build_snomed_table()
_UNIVERSAL_TO_SNOMED: dict[str, str] = {tooth: code for code, tooth in _SNOMED_TO_UNIVERSAL.items()}
# Older DICOM files use the retired SNOMED RT identifiers (designator "SRT").
_SNOMED_RT_TO_UNIVERSAL: dict[str, str] = {
    _snomed_rt_mapping["SCT"][code]: tooth
    for code, tooth in _SNOMED_TO_UNIVERSAL.items()
    if code in _snomed_rt_mapping["SCT"]
}


def universal_from_snomed(code: str) -> str | None:
    """Universal designation for a SNOMED CT tooth concept id, or None if it is not a tooth."""
    return _SNOMED_TO_UNIVERSAL.get(str(code).strip())


def universal_from_snomed_rt(code: str) -> str | None:
    """Universal designation for a retired SNOMED RT tooth id (e.g. "T-54210"), or None."""
    return _SNOMED_RT_TO_UNIVERSAL.get(str(code).strip().upper())


def snomed_from_universal(tooth: str | int) -> str | None:
    """SNOMED CT concept id for a tooth; None for supernumeraries, which have none in CID 4018/4019."""
    return _UNIVERSAL_TO_SNOMED.get(normalize_tooth(tooth))
