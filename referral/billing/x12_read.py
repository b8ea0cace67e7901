"""Reading an X12 interchange someone sent us (an 835, a 999, a 277CA) into its envelope and segments.

The separators are the ones the sender's ISA declares, not ours. The envelope is checked as it is read: every GS
closed by a GE counting its transaction sets, every ST closed by an SE counting its segments, control numbers
repeated in the trailers, and one IEA at the end. A file that stops early (an upload cut short, a download that
failed half way) is reported as such, naming the last segment that arrived.

Every problem is an X12ParseError naming the segment (its tag and its position in the file, the ISA being 1) so
the sender or the clerk can find it. Messages quote codes and counts, never names or member ids: error messages get
logged, and remittances are patient data.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

__all__ = [
    "FunctionalGroup",
    "Interchange",
    "Segment",
    "SegmentCursor",
    "TransactionSet",
    "X12ParseError",
    "parse_amount",
    "parse_date",
    "parse_optional_amount",
    "parse_optional_date",
    "quote",
    "read_interchange",
]

_ISA_LENGTH = 106
_TAG = re.compile(r"[A-Z][A-Z0-9]{1,2}")
_AMOUNT = re.compile(r"-?(\d+(\.\d*)?|\.\d+)")
_QUOTE_LIMIT = 12  # codes and amounts are short; anything longer is not quoted back


class X12ParseError(ValueError):
    """A file that is not a well-formed X12 interchange of the expected kind."""

    def __init__(self, message: str, *, segment: str | None = None, position: int | None = None) -> None:
        self.segment = segment
        self.position = position
        self.detail = message
        if segment is not None and position is not None:
            where = f"segment {position} ({segment}): "
        elif segment is not None:
            where = f"{segment}: "
        else:
            where = ""
        super().__init__(where + message)


def quote(value: str) -> str:
    """A value fit to appear in an error message: short codes and amounts only."""
    if len(value) > _QUOTE_LIMIT or not value.isascii():
        return "(a long value)"
    return repr(value)


@dataclass(frozen=True)
class Segment:
    tag: str
    elements: tuple[str, ...]  # elements[0] is element 01
    position: int  # 1-based position in the interchange; the ISA is 1
    component_separator: str = ":"

    def element(self, index: int) -> str:
        """Element ``index`` (1-based, as X12 numbers them), or an empty string when it is not there."""
        return self.elements[index - 1] if 0 < index <= len(self.elements) else ""

    def components(self, index: int) -> list[str]:
        return self.element(index).split(self.component_separator)

    def fail(self, message: str) -> X12ParseError:
        return X12ParseError(message, segment=self.tag, position=self.position)


@dataclass(frozen=True)
class TransactionSet:
    header: Segment  # ST
    segments: tuple[Segment, ...]  # between ST and SE
    trailer: Segment  # SE

    @property
    def identifier(self) -> str:
        return self.header.element(1)

    @property
    def control_number(self) -> str:
        return self.header.element(2)


@dataclass(frozen=True)
class FunctionalGroup:
    header: Segment  # GS
    transaction_sets: tuple[TransactionSet, ...]

    @property
    def functional_id(self) -> str:
        return self.header.element(1)

    @property
    def control_number(self) -> str:
        return self.header.element(6)

    @property
    def version(self) -> str:
        return self.header.element(8)


@dataclass(frozen=True)
class Interchange:
    header: Segment  # ISA
    groups: tuple[FunctionalGroup, ...]

    @property
    def control_number(self) -> str:
        return self.header.element(13)

    @property
    def sender(self) -> str:
        return self.header.element(6).strip()

    @property
    def receiver(self) -> str:
        return self.header.element(8).strip()


class SegmentCursor:
    """Walks the segments of one transaction set, one loop at a time."""

    def __init__(self, transaction_set: TransactionSet) -> None:
        self._set = transaction_set
        self._segments = transaction_set.segments
        self._index = 0

    def peek(self) -> Segment | None:
        return self._segments[self._index] if self._index < len(self._segments) else None

    def at(self, tag: str, qualifier: str | None = None) -> bool:
        segment = self.peek()
        return segment is not None and segment.tag == tag and (qualifier is None or segment.element(1) == qualifier)

    def take(self, tag: str, qualifier: str | None = None) -> Segment | None:
        if not self.at(tag, qualifier):
            return None
        segment = self._segments[self._index]
        self._index += 1
        return segment

    def next(self) -> Segment:
        segment = self.peek()
        if segment is None:
            raise self._set.trailer.fail("the transaction set ends where more was expected")
        self._index += 1
        return segment

    def expect(self, tag: str, what: str, qualifier: str | None = None) -> Segment:
        segment = self.take(tag, qualifier)
        if segment is not None:
            return segment
        found = self.peek() or self._set.trailer
        wanted = f"{tag}*{qualifier}" if qualifier else tag
        raise found.fail(f"expected {wanted} ({what}) here")

    def rest(self) -> Iterator[Segment]:
        while (segment := self.peek()) is not None:
            self._index += 1
            yield segment


def parse_optional_amount(segment: Segment, index: int, what: str) -> Decimal | None:
    value = segment.element(index)
    if not value:
        return None
    if not _AMOUNT.fullmatch(value):
        raise segment.fail(f"{segment.tag}{index:02d} ({what}) {quote(value)} is not an amount")
    try:
        return Decimal(value)
    except InvalidOperation:
        raise segment.fail(f"{segment.tag}{index:02d} ({what}) {quote(value)} is not an amount") from None


def parse_amount(segment: Segment, index: int, what: str) -> Decimal:
    amount = parse_optional_amount(segment, index, what)
    if amount is None:
        raise segment.fail(f"{segment.tag}{index:02d} ({what}) is missing")
    return amount


def parse_optional_date(segment: Segment, index: int, what: str) -> date | None:
    value = segment.element(index)
    if not value:
        return None
    try:
        if not re.fullmatch(r"[0-9]{8}", value):
            raise ValueError(value)
        return datetime.strptime(value, "%Y%m%d").date()  # noqa: DTZ007 - a calendar date, no time of day
    except ValueError:
        raise segment.fail(f"{segment.tag}{index:02d} ({what}) {quote(value)} is not a CCYYMMDD date") from None


def parse_date(segment: Segment, index: int, what: str) -> date:
    day = parse_optional_date(segment, index, what)
    if day is None:
        raise segment.fail(f"{segment.tag}{index:02d} ({what}) is missing")
    return day


# -- reading ---------------------------------------------------------------------------------------------------------


def _separators(text: str) -> tuple[str, str, str, str]:
    """Element, repetition, component separators and segment terminator, from the fixed-width ISA."""
    if not text.startswith("ISA"):
        raise X12ParseError("the file does not start with an ISA segment, so it is not an X12 interchange")
    if len(text) < _ISA_LENGTH:
        raise X12ParseError("the file ends inside its first segment", segment="ISA", position=1)
    element = text[3]
    if element.isalnum() or element.isspace():
        raise X12ParseError("the element separator after ISA must be a punctuation mark", segment="ISA", position=1)
    position = -1
    for _ in range(16):
        position = text.find(element, position + 1)
        if position < 0:
            raise X12ParseError("the segment does not have 16 elements", segment="ISA", position=1)
    component, terminator = text[position + 1], text[position + 2] if position + 2 < len(text) else ""
    repetition = text.split(element)[11][:1] if text.count(element) >= 11 else ""
    if not terminator or terminator.isalnum() or terminator == " ":
        raise X12ParseError("the segment terminator after ISA16 is missing", segment="ISA", position=1)
    if len({element, component, terminator}) != 3:
        raise X12ParseError("the separators and the segment terminator must all differ", segment="ISA", position=1)
    return element, repetition, component, terminator


def _segments(text: str) -> list[Segment]:
    element, _, component, terminator = _separators(text)
    pieces = text.split(terminator)
    trailing = pieces.pop()
    segments: list[Segment] = []
    for raw in pieces:
        cleaned = raw.strip("\r\n\t ")
        if not cleaned:
            continue
        tag, *elements = cleaned.split(element)
        position = len(segments) + 1
        if not _TAG.fullmatch(tag):
            raise X12ParseError(
                f"{quote(tag)} is not a segment identifier; the file may be damaged", segment="?", position=position
            )
        segments.append(Segment(tag, tuple(elements), position, component))
    if trailing.strip("\r\n\t "):
        last = segments[-1] if segments else None
        position = len(segments) + 1
        name = trailing.strip().split(element)[0][:3] or "?"
        raise X12ParseError(
            "the file ends in the middle of this segment, without its terminator: it was cut short"
            + (f" after segment {last.position} ({last.tag})" if last else ""),
            segment=name,
            position=position,
        )
    return segments


def read_interchange(text: str, *, functional_id: str | None = None) -> Interchange:
    """The interchange in ``text`` with its envelope checked; with ``functional_id`` (HP for an 835, FA for a 999,
    HN for a 277CA) every group must be of that kind."""
    if not isinstance(text, str) or not text.strip():
        raise X12ParseError("the file is empty")
    segments = _segments(text.lstrip("\ufeff\r\n\t "))
    isa = segments[0]
    groups: list[FunctionalGroup] = []
    index = 1
    while index < len(segments) and segments[index].tag == "GS":
        group, index = _group(segments, index, functional_id)
        groups.append(group)
    if index >= len(segments):
        last = segments[-1]
        raise last.fail("the file stops after this segment without its IEA trailer: it was cut short")
    iea = segments[index]
    if iea.tag != "IEA":
        raise iea.fail("expected a GS (functional group) or the IEA trailer here")
    if index != len(segments) - 1:
        raise segments[index + 1].fail("nothing may follow the IEA trailer")
    if not groups:
        raise iea.fail("the interchange holds no functional group (GS)")
    if iea.element(1) != str(len(groups)):
        raise iea.fail(f"IEA01 counts {quote(iea.element(1))} functional groups; the interchange holds {len(groups)}")
    if iea.element(2) != isa.element(13):
        raise iea.fail("IEA02 does not repeat the interchange control number of ISA13")
    return Interchange(isa, tuple(groups))


def _group(segments: list[Segment], index: int, functional_id: str | None) -> tuple[FunctionalGroup, int]:
    gs = segments[index]
    if functional_id is not None and gs.element(1) != functional_id:
        raise gs.fail(f"this is a {quote(gs.element(1))} group; this kind of file travels in an {functional_id} group")
    sets: list[TransactionSet] = []
    index += 1
    while index < len(segments) and segments[index].tag == "ST":
        transaction_set, index = _transaction_set(segments, index)
        sets.append(transaction_set)
    if index >= len(segments):
        raise segments[-1].fail("the file stops after this segment without its GE and IEA trailers: it was cut short")
    ge = segments[index]
    if ge.tag != "GE":
        raise ge.fail("expected an ST (transaction set) or the GE trailer here")
    if not sets:
        raise ge.fail("the functional group holds no transaction set (ST)")
    if ge.element(1) != str(len(sets)):
        raise ge.fail(f"GE01 counts {quote(ge.element(1))} transaction sets; the group holds {len(sets)}")
    if ge.element(2) != gs.element(6):
        raise ge.fail("GE02 does not repeat the group control number of GS06")
    return FunctionalGroup(gs, tuple(sets)), index + 1


def _transaction_set(segments: list[Segment], index: int) -> tuple[TransactionSet, int]:
    st = segments[index]
    end = index + 1
    while end < len(segments) and segments[end].tag != "SE":
        if segments[end].tag in ("ST", "GE", "GS", "IEA", "ISA"):
            raise segments[end].fail(f"the transaction set opened by segment {st.position} (ST) has no SE before this")
        end += 1
    if end >= len(segments):
        raise segments[-1].fail("the file stops after this segment without SE, GE and IEA: it was cut short")
    se = segments[end]
    count = end - index + 1
    if se.element(1) != str(count):
        raise se.fail(f"SE01 counts {quote(se.element(1))} segments; the transaction set has {count} from ST to SE")
    if se.element(2) != st.element(2):
        raise se.fail("SE02 does not repeat the transaction set control number of ST02")
    return TransactionSet(st, tuple(segments[index + 1 : end]), se), end + 1
