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
    "legacy_snomed_codes",
    "normalize_area",
    "normalize_surfaces",
    "normalize_tooth",
    "parse_teeth",
    "snomed_from_universal",
    "snomed_rt_codes",
    "tooth_arch",
    "tooth_quadrant",
    "universal_from_code",
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


def try_tooth(value: object) -> str | None:
    """The canonical designation of ``value``, or ``None`` when it is not a tooth (for searches)."""
    return _try_normalize_tooth(value)


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


def _snomed_rt_of(tooth: str) -> str:
    """The SNOMED RT id of a tooth in the T-54xx0 series that PS3.16 Annex O pairs with CID 4018/4019.

    Permanent teeth run in Universal order from T-54210 (tooth 1) in steps of ten. Deciduous teeth run by
    FDI quadrant (5, 6, 8, 7 in that order) and position from the midline: T-54610 is 51, T-54660 is 61,
    T-54710 is 81 and T-54760 is 71.
    """
    if tooth.isdigit():
        return f"T-5{4200 + 10 * int(tooth)}"
    _, quadrant, position = _position_from_universal(tooth)
    base = {1: 4600, 2: 4650, 3: 4750, 4: 4700}[quadrant]
    return f"T-5{base + 10 * position}"


def _build_legacy_tables() -> tuple[dict[str, str], dict[str, str]]:
    """Older codes for the same teeth: (SNOMED CT id -> tooth, SNOMED RT id -> tooth).

    DICOM editions before about 2020 listed other SNOMED CT concepts in CID 4018/4019 (e.g. 5140004 for
    tooth 3, now 865995000), each paired with a T-54xx0 SNOMED RT id; some deciduous teeth also have a
    T-54xx1 variant. pydicom's SNOMED CT <-> RT mapping (PS3.16 Annex O) knows all of them, so both
    families are reached from the T-54xx0 series and from the current codes.
    """
    to_rt: dict[str, str] = _snomed_rt_mapping["SCT"]
    from_rt: dict[str, str] = _snomed_rt_mapping["SRT"]
    legacy_sct: dict[str, str] = {}
    rt: dict[str, str] = {}

    def add(table: dict[str, str], code: str | None, tooth: str) -> None:
        if code is None:
            return
        if table.get(code, tooth) != tooth:
            raise RuntimeError(f"tooth code {code} maps to both {table[code]} and {tooth}")
        table[code] = tooth

    for tooth in PERMANENT_TEETH + PRIMARY_TEETH:
        current = _UNIVERSAL_TO_SNOMED[tooth]
        series = _snomed_rt_of(tooth)
        variants = [series, f"{series[:-1]}1", to_rt.get(current)]
        for code in variants:
            if code is not None and code in from_rt:
                add(rt, code, tooth)
                add(legacy_sct, from_rt[code], tooth)
        add(rt, series, tooth)
        add(rt, to_rt.get(current), tooth)
        for code in list(legacy_sct):
            if legacy_sct[code] == tooth:
                add(rt, to_rt.get(code), tooth)
    for code, tooth in legacy_sct.items():
        if _SNOMED_TO_UNIVERSAL.get(code, tooth) != tooth:
            raise RuntimeError(f"SNOMED CT {code} names tooth {_SNOMED_TO_UNIVERSAL[code]} and {tooth}")
    return legacy_sct, rt


_LEGACY_SNOMED_TO_UNIVERSAL, _SNOMED_RT_TO_UNIVERSAL = _build_legacy_tables()
_ANY_SNOMED_CT_TO_UNIVERSAL: dict[str, str] = {**_LEGACY_SNOMED_TO_UNIVERSAL, **_SNOMED_TO_UNIVERSAL}

# Coding scheme designators seen on tooth codes: SNOMED CT, its retired RT predecessor (under two names) and
# ISO 3950. Writers mix them up, so each family is tried under each SNOMED designator.
_SNOMED_DESIGNATORS = frozenset({"SCT", "SNM3", "SRT", "99SDM"})


def universal_from_snomed(code: str) -> str | None:
    """Universal designation for a SNOMED CT tooth concept id, current or from an older DICOM edition, or
    None if it is not a tooth."""
    return _ANY_SNOMED_CT_TO_UNIVERSAL.get(str(code).strip())


def universal_from_snomed_rt(code: str) -> str | None:
    """Universal designation for a retired SNOMED RT tooth id (e.g. "T-54210"), or None."""
    return _SNOMED_RT_TO_UNIVERSAL.get(str(code).strip().upper())


def universal_from_code(value: str, scheme: str) -> str | None:
    """Universal designation for a coded tooth as DICOM carries it (Code Value and Coding Scheme
    Designator), or None when the code names no tooth."""
    value = str(value).strip()
    scheme = str(scheme).strip().upper()
    if scheme in _SNOMED_DESIGNATORS:
        return universal_from_snomed(value) or universal_from_snomed_rt(value)
    if "ISO" in scheme or "3950" in scheme or scheme == "FDI":
        try:
            return universal_from_fdi(value)
        except ValueError:
            return None
    return None


def snomed_rt_codes(tooth: str | int) -> list[str]:
    """Every SNOMED RT id known for a tooth, the T-54xx0 one first."""
    canonical = normalize_tooth(tooth)
    first = _snomed_rt_of(canonical) if canonical in _UNIVERSAL_TO_SNOMED else None
    others = sorted(code for code, t in _SNOMED_RT_TO_UNIVERSAL.items() if t == canonical and code != first)
    return ([first] if first else []) + others


def legacy_snomed_codes(tooth: str | int) -> list[str]:
    """SNOMED CT ids listed for a tooth by DICOM editions before the current codes."""
    canonical = normalize_tooth(tooth)
    current = _UNIVERSAL_TO_SNOMED.get(canonical)
    return sorted(code for code, t in _LEGACY_SNOMED_TO_UNIVERSAL.items() if t == canonical and code != current)


def snomed_from_universal(tooth: str | int) -> str | None:
    """SNOMED CT concept id for a tooth; None for supernumeraries, which have none in CID 4018/4019."""
    return _UNIVERSAL_TO_SNOMED.get(normalize_tooth(tooth))
