"""A structural check of an 837D (005010X224A2) interchange, reported as sentences a billing clerk can act on.

No open-source validator knows the 837D (pyx12 maps only the 837P and 837I for 5010), so this checks what our
exporter is responsible for: the envelope and its counts, the HL hierarchy (parents, child flags, which levels hold
claims), subscriber and dependant loops (SBR, PAT, names, demographics), claim totals, frequency and the payer's
claim number, attachments (PWK), the claim note (NTE), service lines and their places, tooth designations and
provider identifiers (docs/billing.md, "The 837D" and "Teeth, areas and surfaces"; docs/claims-lifecycle.md). It
does not
know every TR3 situational rule, and a payer's 999/277CA remains the final word.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from referral.dental import SURFACES, normalize_tooth
from referral.validation import npi_is_valid, taxonomy_is_valid

__all__ = ["validate_837d"]

IMPLEMENTATION_GUIDE = "005010X224A2"
_ISA_LENGTH = 106
# Widths of ISA01..ISA16; receivers find the separators by position, so every one is fixed.
_ISA_WIDTHS = (2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1, 1)
_CDT = re.compile(r"D[0-9]{4}")
_AMOUNT = re.compile(r"[0-9]+(\.[0-9]{1,2})?")
_FREQUENCIES = ("1", "7", "8")
_PLACE = re.compile(r"[0-9]{2}")
_DATE = re.compile(r"(19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])")
# PWK01 report types and PWK02 transmission codes a dental claim uses (claims-lifecycle.md §3).
_REPORT_TYPES = frozenset({"RB", "RR", "DG", "B4", "OZ", "P6", "DA", "EB", "OB"})
_TRANSMISSIONS = frozenset({"AA", "BM", "EL", "EM", "FT", "FX"})
_MAX_ATTACHMENTS = 10
# Open Dental writes at most five claim notes; the 837D's own repeat count is not confirmed (claims-lifecycle.md §2).
_MAX_NOTES = 5
_NOTE_LENGTH = 80
# PAT01 for a dependant: spouse, child, employee, unknown, life partner, other relationship.
_PATIENT_RELATIONSHIPS = frozenset({"01", "19", "20", "21", "53", "G8"})
_PAYER_SEQUENCES = frozenset("PSTABCDEFGHU")

Segment = list[str]


@dataclass
class _Line:
    number: str
    position: int
    services: list[Segment] = field(default_factory=list)
    teeth: list[Segment] = field(default_factory=list)
    line_control_numbers: list[str] = field(default_factory=list)
    has_service_date: bool = False
    paperwork: list[int] = field(default_factory=list)  # positions of PWK segments found inside the line


@dataclass
class _Claim:
    segment: Segment
    position: int
    level: str
    level_number: str = ""
    has_service_date: bool = False
    has_payer_claim_number: bool = False
    lines: list[_Line] = field(default_factory=list)
    notes: list[tuple[int, Segment]] = field(default_factory=list)
    paperwork: list[tuple[int, Segment]] = field(default_factory=list)


@dataclass
class _Level:
    """One HL and the name loops (NM1 entity code -> segment ids that follow it) and segments inside it."""

    number: str
    parent: str
    code: str
    child_flag: str
    position: int
    segments: list[str] = field(default_factory=list)
    names: dict[str, list[Segment]] = field(default_factory=dict)
    name_segments: dict[str, Segment] = field(default_factory=dict)
    subscriber: Segment | None = None
    patient: Segment | None = None
    subscriber_relationship: str | None = None


class _Report:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, message: str) -> None:
        self.problems.append(message)


def validate_837d(text: str) -> list[str]:
    """Problems found in ``text``; an empty list means it passed every check."""
    report = _Report()
    separators = _read_isa(text, report)
    if separators is None:
        return report.problems
    element, component, terminator = separators
    segments = [raw.strip("\r\n").split(element) for raw in text.split(terminator) if raw.strip("\r\n")]
    _check_envelope(segments, component, report)
    return report.problems


# -- envelope --------------------------------------------------------------------------------------


def _read_isa(text: str, report: _Report) -> tuple[str, str, str] | None:
    """The element separator, component separator and segment terminator, or None if the ISA is unreadable."""
    if not text.startswith("ISA") or len(text) < 4:
        report.add("the interchange does not start with an ISA segment")
        return None
    element = text[3]
    # ISA16 is the single character after the sixteenth element separator; the terminator follows it.
    position = -1
    for _ in range(16):
        position = text.find(element, position + 1)
        if position < 0:
            report.add("the ISA segment does not have 16 elements")
            return None
    if position + 2 >= len(text):
        report.add("the ISA segment is cut short")
        return None
    component, terminator = text[position + 1], text[position + 2]
    length = position + 3
    if length != _ISA_LENGTH:
        report.add(f"the ISA segment is {length} characters long; it must be exactly {_ISA_LENGTH}")
    values = text[4 : position + 2].split(element)
    for index, (value, width) in enumerate(zip(values, _ISA_WIDTHS, strict=True), start=1):
        if len(value) != width:
            report.add(f"ISA{index:02d} is {len(value)} characters wide; it must be {width}")
    repetition = values[10]
    if values[11] != "00501":
        report.add(f"ISA12 is {values[11]!r}; a 5010 interchange carries 00501")
    if not (values[12].isascii() and values[12].isdigit()):
        report.add("ISA13 (interchange control number) must be nine digits")
    if values[13] not in ("0", "1"):
        report.add("ISA14 (acknowledgment requested) must be 0 or 1")
    if values[14] not in ("P", "T"):
        report.add("ISA15 (usage) must be P or T")
    chosen = [element, repetition, component, terminator]
    if len(set(chosen)) != len(chosen):
        report.add("the element, repetition, component and segment separators must all differ")
    if any(ch.isalnum() or ch == " " for ch in chosen):
        report.add("separators must not be letters, digits or spaces")
    return element, component, terminator


def _check_envelope(segments: list[Segment], component: str, report: _Report) -> None:
    isa = segments[0]
    if segments[-1][0] != "IEA":
        report.add("the interchange does not end with an IEA segment")
    groups = 0
    group: Segment | None = None
    sets_in_group = 0
    transaction_start: int | None = None
    for position, segment in enumerate(segments[1:], start=2):
        tag = segment[0]
        if transaction_start is not None:
            if tag == "SE":
                _check_transaction(segments[transaction_start - 1 : position], transaction_start, component, report)
                transaction_start = None
            elif tag in ("ISA", "IEA", "GS", "GE", "ST"):
                report.add(f"segment {position} ({tag}) appears before the SE that closes the transaction set")
            continue
        if tag == "GS":
            if group is not None:
                report.add(f"segment {position} (GS) opens a group before the previous GE")
            group, sets_in_group = segment, 0
            groups += 1
            _check_gs(segment, report)
        elif tag == "ST":
            if group is None:
                report.add(f"segment {position} (ST) is outside a functional group")
            else:
                sets_in_group += 1
                if _element(segment, 3) != _element(group, 8):
                    report.add(f"ST03 {_element(segment, 3)!r} does not match GS08 {_element(group, 8)!r}")
            transaction_start = position
        elif tag == "GE":
            if group is None:
                report.add(f"segment {position} (GE) closes no group")
                continue
            if _element(segment, 1) != str(sets_in_group):
                report.add(f"GE01 is {_element(segment, 1)!r} but the group holds {sets_in_group} transaction sets")
            if _element(segment, 2) != _element(group, 6):
                report.add(f"GE02 {_element(segment, 2)!r} does not match GS06 {_element(group, 6)!r}")
            group = None
        elif tag == "IEA":
            if position != len(segments):
                report.add(f"segment {position} (IEA) is followed by more segments")
            if group is not None:
                report.add("the last functional group has no GE")
            if _element(segment, 1) != str(groups):
                report.add(f"IEA01 is {_element(segment, 1)!r} but the interchange holds {groups} functional groups")
            if _element(segment, 2) != _element(isa, 13):
                report.add(f"IEA02 {_element(segment, 2)!r} does not match ISA13 {_element(isa, 13)!r}")
        else:
            report.add(f"segment {position} ({tag}) is outside a transaction set")
    if transaction_start is not None:
        report.add("the last transaction set has no SE")
    if groups == 0:
        report.add("the interchange holds no functional group (GS)")


def _check_gs(segment: Segment, report: _Report) -> None:
    if _element(segment, 1) != "HC":
        report.add(f"GS01 is {_element(segment, 1)!r}; claims travel in an HC group")
    if _element(segment, 8) != IMPLEMENTATION_GUIDE:
        report.add(f"GS08 is {_element(segment, 8)!r}; an 837D carries {IMPLEMENTATION_GUIDE}")
    if not re.fullmatch(r"[0-9]{1,9}", _element(segment, 6)):
        report.add("GS06 (group control number) must be one to nine digits")


# -- transaction set -------------------------------------------------------------------------------


def _check_transaction(segments: list[Segment], start: int, component: str, report: _Report) -> None:
    st, se = segments[0], segments[-1]
    control = _element(st, 2)
    where = f"transaction set {control}"
    if _element(st, 1) != "837":
        report.add(f"{where}: ST01 is {_element(st, 1)!r}, not 837")
    if _element(st, 3) != IMPLEMENTATION_GUIDE:
        report.add(f"{where}: ST03 is {_element(st, 3)!r}; an 837D carries {IMPLEMENTATION_GUIDE}")
    if _element(se, 1) != str(len(segments)):
        report.add(f"{where}: SE01 is {_element(se, 1)!r} but the set has {len(segments)} segments from ST to SE")
    if _element(se, 2) != control:
        report.add(f"{where}: SE02 {_element(se, 2)!r} does not match ST02 {control!r}")
    if len(segments) < 2 or segments[1][0] != "BHT":
        report.add(f"{where}: BHT must follow ST")
    header_names = {_element(s, 1) for s in segments if s[0] == "NM1"}
    for entity, loop in (("41", "1000A submitter"), ("40", "1000B receiver")):
        if entity not in header_names:
            report.add(f"{where}: the {loop} name (NM1*{entity}) is missing")
    _check_submitter_contact(segments, where, report)

    levels, claims = _walk(segments, start, where, report)
    _check_hierarchy(levels, where, report)
    _check_claim_holders(levels, claims, where, report)
    for claim in claims:
        _check_claim(claim, component, where, report)
    control_numbers = Counter(n for claim in claims for line in claim.lines for n in line.line_control_numbers)
    for number, count in control_numbers.items():
        if count > 1:
            report.add(f"{where}: line control number REF*6R {number!r} is used by {count} lines")
    for segment in segments:
        if segment[0] == "NM1" and _element(segment, 8) == "XX" and not npi_is_valid(_element(segment, 9)):
            report.add(f"{where}: NM1*{_element(segment, 1)} NPI {_element(segment, 9)!r} fails the check digit")
        if segment[0] == "PRV":
            if _element(segment, 2) != "PXC":
                report.add(f"{where}: PRV*{_element(segment, 1)} must qualify its taxonomy with PXC")
            if not taxonomy_is_valid(_element(segment, 3)):
                report.add(f"{where}: taxonomy {_element(segment, 3)!r} is not 10 characters ending in X")


def _check_submitter_contact(segments: list[Segment], where: str, report: _Report) -> None:
    submitter = next((i for i, s in enumerate(segments) if s[0] == "NM1" and _element(s, 1) == "41"), None)
    if submitter is None:
        return
    contact = segments[submitter + 1] if submitter + 1 < len(segments) else []
    if not contact or contact[0] != "PER" or _element(contact, 1) != "IC":
        report.add(f"{where}: the submitter needs a contact (PER*IC after NM1*41)")
    elif _element(contact, 3) not in ("TE", "EM", "FX") or not _element(contact, 4):
        report.add(f"{where}: the submitter contact needs a phone number or email address (PER03/PER04)")


def _walk(segments: list[Segment], start: int, where: str, report: _Report) -> tuple[list[_Level], list[_Claim]]:
    """Assign every segment to its HL, claim and line."""
    levels: list[_Level] = []
    claims: list[_Claim] = []
    level: _Level | None = None
    claim: _Claim | None = None
    line: _Line | None = None
    for position, segment in enumerate(segments, start=start):
        tag = segment[0]
        if tag == "HL":
            level = _Level(
                _element(segment, 1), _element(segment, 2), _element(segment, 3), _element(segment, 4), position
            )
            levels.append(level)
            claim = line = None
            continue
        if tag == "CLM":
            if level is None or level.code not in ("22", "23"):
                report.add(f"{where}: segment {position} (CLM) is not under a subscriber or patient HL")
            claim = _Claim(segment, position, level.code if level else "", level.number if level else "")
            claims.append(claim)
            line = None
            continue
        if tag == "LX":
            if claim is None:
                report.add(f"{where}: segment {position} (LX) is outside a claim")
                continue
            line = _Line(_element(segment, 1), position)
            claim.lines.append(line)
            continue
        if line is not None:
            _attach_to_line(line, segment, position)
        elif claim is not None:
            if tag == "DTP" and _element(segment, 1) == "472":
                claim.has_service_date = True
            elif tag == "REF" and _element(segment, 1) == "F8":
                claim.has_payer_claim_number = True
            elif tag == "NTE":
                claim.notes.append((position, segment))
            elif tag == "PWK":
                claim.paperwork.append((position, segment))
            elif tag in ("SV3", "TOO"):
                report.add(f"{where}: segment {position} ({tag}) is outside a service line (LX)")
        elif level is not None:
            level.segments.append(tag)
            if tag == "NM1":
                level.names[_element(segment, 1)] = []
                level.name_segments[_element(segment, 1)] = segment
            elif level.names:
                list(level.names.values())[-1].append(segment)
            if tag == "SBR":
                level.subscriber = segment
                level.subscriber_relationship = _element(segment, 2)
            elif tag == "PAT":
                level.patient = segment
        elif tag in ("SV3", "TOO"):
            report.add(f"{where}: segment {position} ({tag}) is outside a service line (LX)")
    return levels, claims


def _attach_to_line(line: _Line, segment: Segment, position: int) -> None:
    tag = segment[0]
    if tag == "PWK":
        line.paperwork.append(position)
    elif tag == "SV3":
        line.services.append(segment)
    elif tag == "TOO":
        line.teeth.append(segment)
    elif tag == "DTP" and _element(segment, 1) == "472":
        line.has_service_date = True
    elif tag == "REF" and _element(segment, 1) == "6R":
        line.line_control_numbers.append(_element(segment, 2))


def _check_hierarchy(levels: list[_Level], where: str, report: _Report) -> None:
    codes: dict[str, str] = {}
    parents_with_children = {level.parent for level in levels if level.parent}
    expected_parent = {"20": "", "22": "20", "23": "22"}
    names = {"20": "2000A billing provider", "22": "2000B subscriber", "23": "2000C patient"}
    if not any(level.code == "20" for level in levels):
        report.add(f"{where}: there is no billing provider HL (HL03 20)")
    for index, level in enumerate(levels, start=1):
        here = f"{where}: HL {level.number!r} (segment {level.position})"
        if level.number != str(index):
            report.add(f"{here} should be numbered {index}; HL01 counts up from 1")
        if level.code not in expected_parent:
            report.add(f"{here} has level code {level.code!r}; an 837D uses 20, 22 and 23")
        else:
            wanted = expected_parent[level.code]
            if not wanted and level.parent:
                report.add(f"{here}: a {names[level.code]} level has no parent, but HL02 is {level.parent!r}")
            elif wanted and codes.get(level.parent) != wanted:
                report.add(f"{here}: the parent of a {names[level.code]} must be an earlier {names[wanted]} HL")
        has_children = level.number in parents_with_children
        if level.child_flag != ("1" if has_children else "0"):
            report.add(
                f"{here}: HL04 is {level.child_flag!r} but the level {'has' if has_children else 'has no'} children"
            )
        codes[level.number] = level.code
        _check_level_contents(level, has_children, here, report)


def _check_level_contents(level: _Level, has_children: bool, here: str, report: _Report) -> None:
    if level.code == "20":
        billing = level.names.get("85")
        if billing is None:
            report.add(f"{here}: the billing provider name (NM1*85) is missing")
            return
        tags = {s[0] for s in billing}
        if "N3" not in tags or "N4" not in tags:
            report.add(f"{here}: the billing provider needs an address (N3 and N4)")
        if not any(s[0] == "REF" and _element(s, 1) == "EI" for s in billing):
            report.add(f"{here}: the billing provider needs its tax id (REF*EI)")
        for segment in billing:
            if segment[0] == "N4" and not re.fullmatch(r"[0-9]{9}", _element(segment, 3)):
                report.add(f"{here}: the billing provider's ZIP code must have 9 digits (ZIP+4)")
    elif level.code == "22":
        _check_subscriber_level(level, has_children, here, report)
    elif level.code == "23":
        if level.patient is None:
            report.add(f"{here}: the patient level needs a PAT segment")
        elif _element(level.patient, 1) not in _PATIENT_RELATIONSHIPS:
            report.add(
                f"{here}: PAT01 {_element(level.patient, 1)!r} is not a relationship of a dependant to the subscriber "
                f"({', '.join(sorted(_PATIENT_RELATIONSHIPS))})"
            )
        name = level.name_segments.get("QC")
        if name is None:
            report.add(f"{here}: the patient name (NM1*QC) is missing")
        else:
            if _element(name, 8) or _element(name, 9):
                report.add(f"{here}: a dependant has no identifier of its own in NM1*QC (NM108/NM109 stay empty)")
            _check_demographics(level.names["QC"], "patient", here, report)


def _check_subscriber_level(level: _Level, has_children: bool, here: str, report: _Report) -> None:
    if level.subscriber is None:
        report.add(f"{here}: the subscriber level needs an SBR segment")
    else:
        if _element(level.subscriber, 1) not in _PAYER_SEQUENCES:
            report.add(f"{here}: SBR01 {_element(level.subscriber, 1)!r} is not a payer responsibility (P, S, T...)")
        if not _element(level.subscriber, 9):
            report.add(f"{here}: SBR09 (claim filing indicator) is missing")
    for entity, name in (("IL", "subscriber"), ("PR", "payer")):
        if entity not in level.names:
            report.add(f"{here}: the {name} name (NM1*{entity}) is missing")
    subscriber = level.name_segments.get("IL")
    if subscriber is not None and (_element(subscriber, 8) != "MI" or not _element(subscriber, 9)):
        report.add(f"{here}: the subscriber's member id goes in NM1*IL with qualifier MI (NM108/NM109)")
    relationship = level.subscriber_relationship
    if has_children and relationship:
        report.add(f"{here}: SBR02 must be empty when the patient is a dependant (2000C follows)")
    if not has_children and relationship != "18":
        report.add(f"{here}: without a 2000C the subscriber is the patient, so SBR02 must be 18")
    if not has_children:
        _check_demographics(level.names.get("IL", []), "subscriber who is the patient", here, report)
    else:
        # Optional for a subscriber who is not the patient; when sent, it must be well formed.
        for segment in level.names.get("IL", []):
            if segment[0] == "DMG":
                _check_dmg(segment, "subscriber", here, report)


def _check_demographics(loop: list[Segment], who: str, here: str, report: _Report) -> None:
    tags = {segment[0] for segment in loop}
    for tag, what in (("N3", "street address"), ("N4", "city, state and ZIP"), ("DMG", "birth date and sex")):
        if tag not in tags:
            report.add(f"{here}: the {who} needs a {what} ({tag})")
    for segment in loop:
        if segment[0] == "DMG":
            _check_dmg(segment, who, here, report)


def _check_dmg(segment: Segment, who: str, here: str, report: _Report) -> None:
    if _element(segment, 1) != "D8" or not _DATE.fullmatch(_element(segment, 2)):
        report.add(f"{here}: the {who}'s birth date must be DMG*D8*CCYYMMDD")
    if _element(segment, 3) not in ("F", "M", "U"):
        report.add(f"{here}: the {who}'s sex (DMG03) must be F, M or U")


def _check_claim_holders(levels: list[_Level], claims: list[_Claim], where: str, report: _Report) -> None:
    """Claims hang from the lowest level: the patient's, which is the subscriber's own level when there is no 2000C.

    Every billing provider level has subscribers below it, every lowest level holds at least one claim, and a
    subscriber level with a dependant below holds none itself.
    """
    holding = Counter(claim.level_number for claim in claims)
    parents = {level.parent for level in levels if level.parent}
    for level in levels:
        here = f"{where}: HL {level.number!r} (segment {level.position})"
        has_children = level.number in parents
        if level.code == "20" and not has_children:
            report.add(f"{here}: the billing provider level has no subscriber level below it")
        elif level.code == "22" and has_children and holding[level.number]:
            report.add(f"{here}: a subscriber level with a dependant below it must not hold claims itself")
        elif level.code in ("22", "23") and not has_children and not holding[level.number]:
            report.add(f"{here}: the level holds no claim (CLM)")


def _check_claim(claim: _Claim, component: str, where: str, report: _Report) -> None:
    here = f"{where}: claim {_element(claim.segment, 1)!r} (segment {claim.position})"
    if len(_element(claim.segment, 1)) > 20:
        report.add(f"{here}: CLM01 is longer than 20 characters")
    facility = _element(claim.segment, 5).split(component)
    if len(facility) != 3:
        report.add(f"{here}: CLM05 must have three components (place of service : B : frequency)")
    else:
        place, qualifier, frequency = facility
        if not re.fullmatch(r"[0-9]{2}", place):
            report.add(f"{here}: CLM05-1 {place!r} is not a two-digit place of service code")
        if qualifier != "B":
            report.add(f"{here}: CLM05-2 must be B (place of service codes)")
        if frequency not in _FREQUENCIES:
            report.add(f"{here}: CLM05-3 {frequency!r} is not a dental claim frequency (1, 7 or 8)")
        elif frequency != "1" and not claim.has_payer_claim_number:
            report.add(f"{here}: a replacement or void (CLM05-3 {frequency}) needs the payer's claim number (REF*F8)")
        elif frequency == "1" and claim.has_payer_claim_number:
            report.add(f"{here}: an original claim (CLM05-3 1) carries no payer claim number (REF*F8)")
    _check_notes(claim, here, report)
    _check_paperwork(claim, here, report)
    if not claim.lines:
        report.add(f"{here}: the claim has no service lines")
    total = _amount(_element(claim.segment, 2))
    if total is None:
        report.add(f"{here}: CLM02 {_element(claim.segment, 2)!r} is not an amount")
    line_sum = Decimal("0")
    sum_known = True
    claim_place = facility[0] if len(facility) == 3 else ""
    for index, line in enumerate(claim.lines, start=1):
        charge = _check_line(line, index, component, claim_place, here, report)
        if charge is None:
            sum_known = False
        else:
            line_sum += charge
    if total is not None and sum_known and total != line_sum:
        report.add(
            f"{here}: CLM02 {_element(claim.segment, 2)} does not equal the sum of its line charges "
            f"(SV302 total {line_sum})"
        )
    if not claim.has_service_date and not all(line.has_service_date for line in claim.lines):
        report.add(f"{here}: a service date (DTP*472) is needed on the claim or on every line")


def _check_notes(claim: _Claim, here: str, report: _Report) -> None:
    if len(claim.notes) > _MAX_NOTES:
        report.add(f"{here}: {len(claim.notes)} claim notes (NTE); send at most {_MAX_NOTES}")
    for position, note in claim.notes:
        if _element(note, 1) != "ADD":
            report.add(f"{here}: the claim note (segment {position}) must be NTE*ADD, the dental claim's remarks")
        text = _element(note, 2)
        if not 1 <= len(text) <= _NOTE_LENGTH:
            report.add(
                f"{here}: the claim note (segment {position}) is {len(text)} characters; NTE02 holds 1 to "
                f"{_NOTE_LENGTH}"
            )
        if any(not (ch.isascii() and ch.isprintable()) for ch in text):
            report.add(f"{here}: the claim note (segment {position}) holds characters X12 cannot carry")


def _check_paperwork(claim: _Claim, here: str, report: _Report) -> None:
    if len(claim.paperwork) > _MAX_ATTACHMENTS:
        report.add(f"{here}: {len(claim.paperwork)} PWK segments; a claim carries at most {_MAX_ATTACHMENTS}")
    for position, pwk in claim.paperwork:
        what = f"{here}: PWK (segment {position})"
        if _element(pwk, 1) not in _REPORT_TYPES:
            report.add(f"{what}: PWK01 {_element(pwk, 1)!r} is not a dental attachment report type")
        transmission = _element(pwk, 2)
        control = _element(pwk, 6)
        if transmission not in _TRANSMISSIONS:
            report.add(f"{what}: PWK02 {transmission!r} is not an attachment transmission code")
        elif transmission == "AA":
            if _element(pwk, 5) or control:
                report.add(f"{what}: documentation available on request (AA) carries no control number")
        elif _element(pwk, 5) != "AC" or not 2 <= len(control) <= 80:
            report.add(f"{what}: an attachment that is sent needs its control number as PWK05 AC and PWK06 (2-80)")


def _check_line(
    line: _Line, index: int, component: str, claim_place: str, claim_here: str, report: _Report
) -> Decimal | None:
    """Check one 2400 loop and return its SV302 charge (None when unreadable)."""
    here = f"{claim_here}, line {line.number!r} (segment {line.position})"
    if line.number != str(index):
        report.add(f"{here}: LX should be {index}; service lines are numbered 1 to n")
    for position in line.paperwork:
        report.add(f"{here}: PWK (segment {position}) belongs to the claim (2300); an 837D line has no PWK")
    if len(line.services) != 1:
        report.add(f"{here}: a service line needs exactly one SV3, found {len(line.services)}")
        return None
    service = line.services[0]
    procedure = _element(service, 1).split(component)
    if len(procedure) < 2 or procedure[0] != "AD":
        report.add(f"{here}: SV301 must start with AD (an ADA CDT code)")
    elif not _CDT.fullmatch(procedure[1]):
        report.add(f"{here}: SV301 code {procedure[1]!r} is not a CDT code (D and four digits)")
    charge = _amount(_element(service, 2))
    if charge is None:
        report.add(f"{here}: SV302 {_element(service, 2)!r} is not an amount")
    place = _element(service, 3)
    if place and not _PLACE.fullmatch(place):
        report.add(f"{here}: SV303 {place!r} is not a two-digit place of service code")
    elif place and place == claim_place:
        report.add(f"{here}: SV303 repeats the claim's place of service; send it only where the line's differs")
    quantity = _element(service, 6)
    if quantity and not re.fullmatch(r"[0-9]+", quantity):
        report.add(f"{here}: SV306 {quantity!r} is not a whole number of procedures")
    if len(line.teeth) > 1 and quantity not in ("", "1"):
        report.add(
            f"{here}: {len(line.teeth)} TOO segments on a line with SV306 quantity {quantity}; several "
            "teeth are allowed only when the quantity is 1"
        )
    for tooth in line.teeth:
        _check_tooth(tooth, component, here, report)
    if not line.line_control_numbers:
        report.add(f"{here}: the line has no line item control number (REF*6R)")
    elif len(line.line_control_numbers) > 1:
        report.add(f"{here}: the line has {len(line.line_control_numbers)} REF*6R segments; it needs one")
    return charge


def _check_tooth(segment: Segment, component: str, here: str, report: _Report) -> None:
    if _element(segment, 1) != "JP":
        report.add(f"{here}: TOO01 must be JP (ADA Universal tooth numbering)")
    tooth = _element(segment, 2)
    if not tooth:
        report.add(f"{here}: a TOO segment names no tooth")
    else:
        try:
            canonical = normalize_tooth(tooth)
        except ValueError:
            canonical = None
        if canonical != tooth:
            report.add(f"{here}: tooth {tooth!r} is not an ADA Universal designation (1-32, A-T, 51-82, AS-TS)")
    surfaces = _element(segment, 3)
    if surfaces:
        codes = surfaces.split(component)
        bad = [code for code in codes if len(code) != 1 or code not in SURFACES]
        if bad:
            report.add(f"{here}: surfaces {', '.join(repr(b) for b in bad)} are not among {', '.join(SURFACES)}")
        if len(codes) > 5:
            report.add(f"{here}: TOO03 carries at most five surfaces")


def _element(segment: Segment, index: int) -> str:
    return segment[index] if index < len(segment) else ""


def _amount(text: str) -> Decimal | None:
    if not _AMOUNT.fullmatch(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None
