"""Acknowledgements of the 837D files we sent: the 999 (did each transaction set pass the syntax and guide checks)
and the 277CA (was each claim taken into adjudication), read into accepted or rejected with the reasons in words.

* A 999 (GS01 FA, 005010X231A1) answers one functional group of ours: AK1 repeats its GS06, each AK2 one of its
  transaction sets by ST02. IK5 (per set) and AK9 (per group) say A accepted, E accepted with errors noted, P
  partly accepted (groups only), or M/R/W/X rejected. IK3 names a segment in error by tag and position in the set,
  IK4 an element in it, and a CTX can name the claim (CLM01) the error sits in. A set without its own AK2 takes the
  group's verdict.
* A 277CA (GS01 HN, 005010X214) reports claims one by one: under each patient level, TRN02 is our CLM01, STC says
  how the claim fared (category : status code : entity), REF*1K is the payer's claim number and each line's REF*FJ
  our line control number. A2 (or A5, split) is accepted into adjudication and an 835 will follow; A3, A4, A6, A7
  and A8 are rejections, after which no 835 comes and the claim is corrected and sent again as a new original;
  A0/A1 only say the file got somewhere.

Code meanings are our own short words (claims-lifecycle.md §5); codes we do not list still read as their number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from referral.billing.model import Claim
from referral.billing.x12 import claim_control_number
from referral.billing.x12_read import (
    Segment,
    SegmentCursor,
    TransactionSet,
    X12ParseError,
    parse_optional_amount,
    parse_optional_date,
    quote,
    read_interchange,
)

__all__ = [
    "CLAIM_STATUS_CATEGORIES",
    "CLAIM_STATUS_CODES",
    "ELEMENT_ERRORS",
    "ENTITIES",
    "SEGMENT_ERRORS",
    "SET_STATUSES",
    "ClaimAcknowledgement",
    "ClaimStatus",
    "ElementError",
    "FunctionalAcknowledgement",
    "LineStatus",
    "SegmentError",
    "SetAcknowledgement",
    "StatusCode",
    "StatusMatch",
    "X12ParseError",
    "match_claim_statuses",
    "parse_277ca",
    "parse_999",
]

# -- 999 codes -------------------------------------------------------------------------------------------------------

SET_STATUSES: dict[str, str] = {
    "A": "accepted",
    "E": "accepted, with errors noted",
    "P": "partly accepted: some transaction sets were rejected",
    "M": "rejected: the message authentication failed",
    "R": "rejected",
    "W": "rejected: the assurance checks failed",
    "X": "rejected: the content could not be read after decryption",
}
_ACCEPTED_STATUSES = frozenset({"A", "E"})

SEGMENT_ERRORS: dict[str, str] = {
    "1": "segment not recognised",
    "2": "segment not expected here",
    "3": "a required segment is missing",
    "4": "a loop repeats more often than allowed",
    "5": "a segment repeats more often than allowed",
    "6": "segment not part of this kind of transaction",
    "7": "segment out of order",
    "8": "the segment has element errors",
    "I4": "a segment the guide does not use is present",
    "I6": "a segment the guide requires in this situation is missing",
    "I7": "a loop occurs fewer times than the guide requires",
    "I8": "a segment occurs fewer times than the guide requires",
    "I9": "a segment the guide rules out in this situation is present",
}
ELEMENT_ERRORS: dict[str, str] = {
    "1": "a required element is missing",
    "2": "an element required by another one is missing",
    "3": "too many elements",
    "4": "the value is too short",
    "5": "the value is too long",
    "6": "the value has a character that is not allowed",
    "7": "the code is not a valid value",
    "8": "the date is not valid",
    "9": "the time is not valid",
    "10": "an element is present that another one rules out",
    "12": "too many repetitions",
    "13": "too many components",
    "I6": "the guide does not allow this code here",
    "I9": "an element the guide requires in this situation is missing",
    "I10": "an element the guide does not use is present",
    "I11": "too few repetitions for the guide",
    "I12": "the value does not match the guide's pattern",
    "I13": "an element the guide rules out in this situation is present",
}
SET_ERRORS: dict[str, str] = {
    "1": "this kind of transaction is not supported",
    "2": "the SE trailer is missing",
    "3": "ST02 and SE02 differ",
    "4": "SE01 does not count the segments",
    "5": "one or more segments have errors",
    "6": "the transaction set identifier is missing or invalid",
    "7": "the transaction set control number is missing or invalid",
    "18": "the transaction set is outside a functional group",
    "19": "the implementation guide named in ST03 is not valid",
    "23": "the transaction set control number is used twice in the group",
    "I5": "one or more segments break the implementation guide",
}
GROUP_ERRORS: dict[str, str] = {
    "1": "this kind of functional group is not supported",
    "2": "this version is not supported",
    "3": "the GE trailer is missing",
    "4": "GS06 and GE02 differ",
    "5": "GE01 does not count the transaction sets",
    "6": "the group control number is not valid",
}

# -- 277CA codes -----------------------------------------------------------------------------------------------------

CLAIM_STATUS_CATEGORIES: dict[str, str] = {
    "A0": "forwarded to another entity",
    "A1": "received",
    "A2": "accepted into the payer's adjudication system",
    "A3": "returned as unprocessable",
    "A4": "not found",
    "A5": "split by the payer into several claims",
    "A6": "rejected: information is missing",
    "A7": "rejected: information is not valid",
    "A8": "rejected: a field does not agree with another",
}
_REJECTED = frozenset({"A3", "A4", "A6", "A7", "A8"})
_ACCEPTED = frozenset({"A2", "A5"})
_RECEIVED = frozenset({"A0", "A1"})
_CATEGORY_FAMILIES = {
    "P": "pending at the payer",
    "F": "finalized by the payer",
    "R": "the payer asks for more information",
    "E": "the payer could not answer",
}

CLAIM_STATUS_CODES: dict[str, str] = {
    "0": "no more detail can be given electronically",
    "1": "see the remittance for details",
    "2": "see the payer's letter for details",
    "3": "decided; waiting for the next payment run",
    "15": "one or more codes were changed by the payer",
    "16": "sent on to another entity",
    "17": "sent on by a third party to another entity",
    "18": "received, but the status returned was not valid",
    "19": "receipt acknowledged",
    "20": "accepted for processing",
    "21": "information missing or not valid (another code says which)",
    "23": "returned to the sender",
    "24": "the sender is not approved to send electronically",
    "25": "the entity is not approved",
    "26": "the entity was not found",
    "27": "the policy was cancelled",
    "28": "sent to the wrong payer",
    "29": "subscriber and policy number do not match",
    "30": "subscriber and subscriber id do not match",
    "31": "subscriber and policy holder's name do not match",
    "32": "subscriber and policy number not found",
    "33": "subscriber and subscriber id not found",
    "34": "subscriber and policy holder's name not found",
    "35": "claim not found",
    "54": "duplicate of a claim or line already processed",
    "78": "duplicate of a claim or line waiting to be processed",
    "85": "the entity is not the primary payer",
    "88": "the entity was not eligible on the dates of service",
    "89": "not eligible for dental benefits on the dates of service",
    "97": "the payer has no eligibility on file for the patient",
    "116": "sent to the wrong payer",
    "122": "missing or invalid data keeps the payer from processing it",
    "145": "the entity's specialty code",
    "153": "the entity's id number",
    "156": "the patient's relationship to the subscriber",
    "157": "the entity's sex",
    "158": "the entity's birth date",
    "164": "the entity's member number",
    "187": "the dates of service",
    "239": "the dental information",
    "240": "the tooth surfaces",
    "244": "the tooth number or letter",
    "249": "the place of service",
    "562": "the entity's NPI",
}

ENTITIES: dict[str, str] = {
    "03": "dependant",
    "1P": "provider",
    "40": "receiver",
    "41": "submitter",
    "77": "service location",
    "82": "rendering provider",
    "85": "billing provider",
    "87": "pay-to provider",
    "DN": "referring provider",
    "GB": "other insured",
    "IL": "subscriber",
    "PR": "payer",
    "QC": "patient",
}


def _words(table: dict[str, str], code: str, kind: str) -> str:
    return table.get(code, f"{kind} {code}")


# -- 999 -------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ElementError:
    position: str  # IK401: element position, with component position when there is one (2:1)
    reference: str  # IK402: data element reference number
    code: str  # IK403
    bad_value: str  # IK404: a copy of the bad data, which may be patient data: never put it in a message

    @property
    def explanation(self) -> str:
        return f"element {self.position}: {_words(ELEMENT_ERRORS, self.code, 'element error')}"


@dataclass(frozen=True)
class SegmentError:
    segment_id: str  # IK301
    position: int  # IK302: position in our transaction set, ST being 1
    loop: str  # IK303
    code: str  # IK304
    elements: tuple[ElementError, ...] = ()
    claim_number: str | None = None  # from CTX*CLM01: the CLM01 of the claim the error sits in

    @property
    def explanation(self) -> str:
        where = f"segment {self.position} ({self.segment_id}" + (f", loop {self.loop})" if self.loop else ")")
        parts = [f"{where}: {_words(SEGMENT_ERRORS, self.code, 'segment error')}"]
        parts += [element.explanation for element in self.elements]
        return "; ".join(parts)


@dataclass(frozen=True)
class SetAcknowledgement:
    identifier: str  # AK201: 837
    control_number: str  # AK202: our ST02
    status: str  # IK501
    codes: tuple[str, ...] = ()  # IK502-IK506
    errors: tuple[SegmentError, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.status in _ACCEPTED_STATUSES

    @property
    def reasons(self) -> tuple[str, ...]:
        found = [_words(SET_ERRORS, code, "transaction set error") for code in self.codes]
        found += [error.explanation for error in self.errors]
        return tuple(found)


@dataclass(frozen=True)
class FunctionalAcknowledgement:
    interchange_control_number: str  # of the 999 itself
    functional_id: str  # AK101: HC for our claims
    group_control_number: str  # AK102: the GS06 we sent
    version: str  # AK103
    status: str  # AK901
    included: int  # AK902
    received: int  # AK903
    accepted_count: int  # AK904
    group_codes: tuple[str, ...]
    sets: tuple[SetAcknowledgement, ...]

    @property
    def group_reasons(self) -> tuple[str, ...]:
        return tuple(_words(GROUP_ERRORS, code, "functional group error") for code in self.group_codes)

    def outcome_for(self, control_number: str) -> str:
        """accepted, rejected or unknown, for our transaction set ``control_number`` (ST02) of this group."""
        ack = next((s for s in self.sets if s.control_number == control_number), None)
        if ack is not None:
            return "accepted" if ack.accepted else "rejected"
        # No AK2 of its own: a wholly accepted or wholly rejected group speaks for every set in it; a partly
        # accepted one says nothing about this set, and nothing should be changed on its word.
        if self.status in _ACCEPTED_STATUSES:
            return "accepted"
        return "unknown" if self.status == "P" else "rejected"

    def reasons_for(self, control_number: str) -> tuple[str, ...]:
        ack = next((s for s in self.sets if s.control_number == control_number), None)
        reasons = ack.reasons if ack is not None else ()
        # A partly accepted group says nothing more about a set that has its own verdict.
        if self.status not in _ACCEPTED_STATUSES and (ack is None or self.status != "P"):
            reasons += (f"the group was {_words(SET_STATUSES, self.status, 'status')}", *self.group_reasons)
        return reasons


def parse_999(text: str) -> tuple[FunctionalAcknowledgement, ...]:
    """Every 999 transaction set in ``text``, each answering one functional group of ours."""
    interchange = read_interchange(text, functional_id="FA")
    found = []
    for group in interchange.groups:
        for transaction_set in group.transaction_sets:
            if transaction_set.identifier != "999":
                raise transaction_set.header.fail(f"ST01 {quote(transaction_set.identifier)} is not a 999")
            found.append(_functional_acknowledgement(transaction_set, interchange.control_number))
    return tuple(found)


def _count(segment: Segment, index: int, what: str) -> int:
    value = segment.element(index)
    if not value.isdigit():
        raise segment.fail(f"{segment.tag}{index:02d} ({what}) must be a count")
    return int(value)


def _status(segment: Segment, index: int, allowed: Sequence[str]) -> str:
    value = segment.element(index)
    if value not in allowed:
        raise segment.fail(f"{segment.tag}{index:02d} {quote(value)} is not one of {', '.join(allowed)}")
    return value


def _functional_acknowledgement(transaction_set: TransactionSet, interchange: str) -> FunctionalAcknowledgement:
    cursor = SegmentCursor(transaction_set)
    ak1 = cursor.expect("AK1", "the group acknowledged")
    if not ak1.element(2):
        raise ak1.fail("AK102 (the group control number acknowledged) is missing")
    sets: list[SetAcknowledgement] = []
    while cursor.at("AK2"):
        sets.append(_set_acknowledgement(cursor))
    ak9 = cursor.expect("AK9", "the group's result")
    status = _status(ak9, 1, ("A", "E", "P", "M", "R", "W", "X"))
    leftover = cursor.peek()
    if leftover is not None:
        raise leftover.fail("nothing may follow AK9 in a 999")
    return FunctionalAcknowledgement(
        interchange_control_number=interchange,
        functional_id=ak1.element(1),
        group_control_number=ak1.element(2),
        version=ak1.element(3),
        status=status,
        included=_count(ak9, 2, "transaction sets included"),
        received=_count(ak9, 3, "transaction sets received"),
        accepted_count=_count(ak9, 4, "transaction sets accepted"),
        group_codes=tuple(code for code in ak9.elements[4:9] if code),
        sets=tuple(sets),
    )


def _set_acknowledgement(cursor: SegmentCursor) -> SetAcknowledgement:
    ak2 = cursor.expect("AK2", "a transaction set acknowledged")
    if not ak2.element(2):
        raise ak2.fail("AK202 (the transaction set control number acknowledged) is missing")
    errors: list[SegmentError] = []
    while cursor.at("IK3"):
        errors.append(_segment_error(cursor))
    if cursor.at("CTX"):
        cursor.next()  # a context at set level names nothing we post
    ik5 = cursor.expect("IK5", "the transaction set's result")
    return SetAcknowledgement(
        identifier=ak2.element(1),
        control_number=ak2.element(2),
        status=_status(ik5, 1, ("A", "E", "M", "R", "W", "X")),
        codes=tuple(code for code in ik5.elements[1:6] if code),
        errors=tuple(errors),
    )


def _claim_context(segment: Segment) -> str | None:
    # CTX*CLM01:<our claim number>: the business unit the error belongs to.
    name, _, value = segment.element(1).partition(segment.component_separator)
    return value or None if name == "CLM01" else None


def _segment_error(cursor: SegmentCursor) -> SegmentError:
    ik3 = cursor.expect("IK3", "a segment in error")
    if not ik3.element(2).isdigit():
        raise ik3.fail("IK302 (the position of the segment in error) must be a number")
    claim_number = None
    elements: list[ElementError] = []
    while (segment := cursor.peek()) is not None and segment.tag in ("CTX", "IK4"):
        cursor.next()
        if segment.tag == "CTX":
            claim_number = _claim_context(segment) or claim_number
            continue
        elements.append(ElementError(segment.element(1), segment.element(2), segment.element(3), segment.element(4)))
    return SegmentError(ik3.element(1), int(ik3.element(2)), ik3.element(3), ik3.element(4), tuple(elements),
                        claim_number)


# -- 277CA -----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusCode:
    category: str  # STC01-1 (A2, A7...)
    code: str  # STC01-2
    entity: str = ""  # STC01-3: whose data the code is about

    @property
    def words(self) -> str:
        family = _CATEGORY_FAMILIES.get(self.category[:1], f"category {self.category}")
        category = CLAIM_STATUS_CATEGORIES.get(self.category, family)
        detail = _words(CLAIM_STATUS_CODES, self.code, "status") if self.code else ""
        entity = f" ({_words(ENTITIES, self.entity, 'entity')})" if self.entity else ""
        return f"{category}: {detail}{entity}" if detail else category


def _outcome(statuses: Sequence[StatusCode]) -> str:
    categories = {status.category for status in statuses}
    if categories & _REJECTED:
        return "rejected"
    if categories & _ACCEPTED:
        return "accepted"
    if categories & _RECEIVED:
        return "received"
    if any(category.startswith("P") for category in categories):
        return "pending"
    return "other"


@dataclass(frozen=True)
class LineStatus:
    line_control_number: str | None  # REF*FJ
    code: str  # the procedure the SVC names
    charge: Decimal | None
    statuses: tuple[StatusCode, ...]

    @property
    def outcome(self) -> str:
        return _outcome(self.statuses)


@dataclass(frozen=True)
class ClaimStatus:
    patient_control_number: str  # TRN02: the CLM01 we sent
    statuses: tuple[StatusCode, ...]
    status_date: date | None
    amount: Decimal | None  # STC04: the claim's charge as the payer read it
    payer_claim_number: str | None  # REF*1K
    clearinghouse_trace: str | None  # REF*D9
    billing_provider_id: str | None  # NM1*85 NM109 of the provider level above
    lines: tuple[LineStatus, ...] = ()

    @property
    def outcome(self) -> str:
        """accepted (an 835 will follow), rejected (fix it and send a new original), received, pending or other."""
        return _outcome(self.statuses)

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(status.words for status in self.statuses)


@dataclass(frozen=True)
class ClaimAcknowledgement:
    interchange_control_number: str
    control_number: str  # ST02
    payer_name: str
    payer_id: str | None
    receiver_statuses: tuple[StatusCode, ...]  # about the whole file, at the information receiver level
    provider_statuses: tuple[StatusCode, ...]  # about the billing provider's claims as a whole
    claims: tuple[ClaimStatus, ...]


def parse_277ca(text: str) -> tuple[ClaimAcknowledgement, ...]:
    """Every 277CA transaction set in ``text``."""
    interchange = read_interchange(text, functional_id="HN")
    found = []
    for group in interchange.groups:
        for transaction_set in group.transaction_sets:
            if transaction_set.identifier != "277":
                raise transaction_set.header.fail(f"ST01 {quote(transaction_set.identifier)} is not a 277")
            found.append(_claim_acknowledgement(transaction_set, interchange.control_number))
    return tuple(found)


def _statuses(stc: Segment) -> list[StatusCode]:
    found = []
    for index in (1, 10, 11):
        parts = stc.components(index)
        if not parts[0]:
            if index == 1:
                raise stc.fail("STC01 (the claim's status category) is missing")
            continue
        category = parts[0]
        if not (len(category) == 2 and category[0] in "ADEFPR" and category.isalnum()):
            raise stc.fail(f"STC{index:02d}-1 {quote(category)} is not a claim status category")
        found.append(StatusCode(category, parts[1] if len(parts) > 1 else "", parts[2] if len(parts) > 2 else ""))
    return found


def _claim_acknowledgement(transaction_set: TransactionSet, interchange: str) -> ClaimAcknowledgement:
    cursor = SegmentCursor(transaction_set)
    cursor.expect("BHT", "the beginning of the 277")
    payer_name, payer_id = "", None
    receiver: list[StatusCode] = []
    provider: list[StatusCode] = []
    claims: list[ClaimStatus] = []
    level = ""
    provider_id: str | None = None
    while (segment := cursor.peek()) is not None:
        if segment.tag == "HL":
            cursor.next()
            level = segment.element(3)
            if level not in ("20", "21", "19", "PT"):
                raise segment.fail(f"HL03 {quote(level)} is not a level of a 277CA (20, 21, 19, PT)")
            if level == "PT":
                claims.append(_claim_status(cursor, segment, provider_id))
            continue
        cursor.next()
        if segment.tag == "NM1" and segment.element(1) == "PR":
            payer_name, payer_id = segment.element(3), segment.element(9) or None
        elif segment.tag == "NM1" and segment.element(1) == "85":
            provider_id = segment.element(9) or None
        elif segment.tag == "STC":
            if level == "21":
                receiver += _statuses(segment)
            elif level == "19":
                provider += _statuses(segment)
            else:
                raise segment.fail("a status (STC) outside the receiver, provider or patient levels")
        elif segment.tag in ("TRN", "SVC") and level == "":
            raise segment.fail("this segment comes before any hierarchical level (HL)")
    return ClaimAcknowledgement(
        interchange_control_number=interchange,
        control_number=transaction_set.control_number,
        payer_name=payer_name,
        payer_id=payer_id,
        receiver_statuses=tuple(receiver),
        provider_statuses=tuple(provider),
        claims=tuple(claims),
    )


def _claim_status(cursor: SegmentCursor, hl: Segment, provider_id: str | None) -> ClaimStatus:
    number = None
    statuses: list[StatusCode] = []
    status_date = None
    amount = None
    payer_claim_number = None
    trace = None
    lines: list[LineStatus] = []
    while (segment := cursor.peek()) is not None and segment.tag != "HL":
        if segment.tag == "SVC":
            lines.append(_line_status(cursor))
            continue
        cursor.next()
        if segment.tag == "TRN" and segment.element(1) == "2":
            number = segment.element(2) or None
        elif segment.tag == "STC":
            statuses += _statuses(segment)
            status_date = status_date or parse_optional_date(segment, 2, "status date")
            amount = amount if amount is not None else parse_optional_amount(segment, 4, "claim charge")
        elif segment.tag == "REF" and segment.element(1) == "1K":
            payer_claim_number = segment.element(2) or None
        elif segment.tag == "REF" and segment.element(1) == "D9":
            trace = segment.element(2) or None
    if number is None:
        raise hl.fail("the patient level names no claim: its TRN*2 (our claim number) is missing")
    if not statuses:
        raise hl.fail("the patient level gives the claim no status (STC)")
    return ClaimStatus(number, tuple(statuses), status_date, amount, payer_claim_number, trace, provider_id,
                       tuple(lines))


def _line_status(cursor: SegmentCursor) -> LineStatus:
    svc = cursor.next()
    procedure = svc.components(1)
    statuses: list[StatusCode] = []
    control = None
    while (segment := cursor.peek()) is not None and segment.tag not in ("SVC", "HL"):
        cursor.next()
        if segment.tag == "STC":
            statuses += _statuses(segment)
        elif segment.tag == "REF" and segment.element(1) == "FJ":
            control = segment.element(2) or None
    if not statuses:
        raise svc.fail("the service line is given no status (STC)")
    return LineStatus(control, procedure[1] if len(procedure) > 1 else procedure[0],
                      parse_optional_amount(svc, 2, "line charge"), tuple(statuses))


@dataclass(frozen=True)
class StatusMatch:
    status: ClaimStatus
    claim_index: int  # position in the claims given to match_claim_statuses
    line_numbers: tuple[int | None, ...]  # the claim line of each line status, None when none carries its REF*FJ


def match_claim_statuses(
    acknowledgement: ClaimAcknowledgement, claims: Sequence[Claim]
) -> tuple[tuple[StatusMatch, ...], tuple[ClaimStatus, ...]]:
    """Pair each claim status with one of ``claims`` (the practice's own): TRN02 is the CLM01 we sent.

    A referral's two claims share the default CLM01, so the billing provider's NPI, when the 277CA names it, must be
    the claim's, and the line statuses' REF*FJ must be the claim's line control numbers. Returns the matches and the
    statuses that are not ours.
    """
    matched: list[StatusMatch] = []
    unmatched: list[ClaimStatus] = []
    for status in acknowledgement.claims:
        controls = {line.line_control_number for line in status.lines if line.line_control_number}
        index = next(
            (
                index
                for index, claim in enumerate(claims)
                if claim_control_number(claim) == status.patient_control_number
                and status.billing_provider_id in (None, claim.billing_organization.npi)
                and controls <= {line.control_number for line in claim.lines}
            ),
            None,
        )
        if index is None:
            unmatched.append(status)
            continue
        by_control = {line.control_number: line.number for line in claims[index].lines}
        numbers = tuple(by_control.get(line.line_control_number or "") for line in status.lines)
        matched.append(StatusMatch(status, index, numbers))
    return tuple(matched), tuple(unmatched)
