"""Claims as one X12 837D interchange (HIPAA dental claim, implementation guide 005010X224A2).

Layout decisions (the TR3 is not public; see docs/billing.md, "The 837D", for what is known):

* One ST/SE transaction set per billing organization, in the order the organizations first appear. The 2000A loop
  is the billing provider, so a set per organization holds exactly one 2000A, and the 999 the receiver returns
  accepts or rejects each organization's claims on their own: a capture office's bad claim cannot take the
  reader's claims down with it.
* One 2000B (and, for a dependant, one 2000C) per claim, even when two claims name the same subscriber: the
  hierarchy stays a plain function of the claim and no claim depends on its neighbours. A dependant's 2010BA names
  the subscriber from the coverage, with the subscriber's address and birth date when known: the TR3 asks for them
  only when the patient is the subscriber, but clearinghouses ask for them and payers complain when they are missing
  (claims-lifecycle.md §1).
* Loop 2300 carries, in this order, the claim's service date, one PWK per kind of documentation the payer wants
  (an 837D has PWK only at claim level, claims-lifecycle.md §3, so lines needing documentation are covered by the
  claim's PWK), REF*F8 with the payer's claim number for a replacement (7) or void (8), and the narrative in one
  NTE*ADD. A line performed at another place than the claim's carries its own place of service in SV303.
* A batch (``to_837d_batch``) is many claims of one billing practice for one payer: one transaction set, one 2000A,
  a 2000B per claim, each claim with its own CLM01.
* Free text (names, addresses) is reduced to the X12 basic character set and upper-cased; our separators are not
  in that set, so they can never end up inside an element. X12 has no escape mechanism, which leaves stripping as
  the only option. Identifiers are never altered: one that cannot be sent as it is (a separator inside a member
  id, say) raises ExportError, because a silently changed id would mis-route the claim or its remittance.
* Only what the payer needs to adjudicate goes out: ids, demographics, codes, teeth, dates, amounts. The lines'
  explanations, rule ids, edits and image ids stay home.

The exporter does not re-check payer rules; ``validate_837d`` (x12_validator.py) does, on the finished text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from referral.billing.model import (
    RELATIONSHIP_CODES,
    Address,
    Claim,
    ClaimLine,
    OrganizationFacts,
    PatientFacts,
    ProviderFacts,
    SubscriberFacts,
)
from referral.billing.narrative import NarrativeError, normalize_narrative
from referral.billing.profiles import ATTACHMENT_REPORT_TYPES, ATTACHMENT_TRANSMISSIONS, ProfileError, get_profile
from referral.billing.x12_text import basic_text

__all__ = [
    "COMPONENT",
    "ELEMENT",
    "IMPLEMENTATION_GUIDE",
    "REPETITION",
    "SEGMENT",
    "ExportError",
    "Submitter",
    "claim_control_number",
    "claim_filing_indicator",
    "format_amount",
    "line_teeth",
    "patient_control_number",
    "to_837d",
    "to_837d_batch",
]

IMPLEMENTATION_GUIDE = "005010X224A2"
ELEMENT = "*"
COMPONENT = ":"
REPETITION = "^"
SEGMENT = "~"
_SEPARATORS = frozenset(ELEMENT + COMPONENT + REPETITION + SEGMENT)

# Maximum element lengths from the 5010 837 segment definitions.
_NAME_LAST_OR_ORG = 60
_NAME_FIRST = 35
_ADDRESS_LINE = 55
_CITY = 30
_ID = 80
_REF = 50
_PATIENT_CONTROL = 20

_SEX = {"F": "F", "M": "M", "U": "U"}
_FREQUENCIES = ("1", "7", "8")
_MAX_ATTACHMENTS = 10  # PWK repeats at most ten times in loop 2300


class ExportError(ValueError):
    """The claims cannot be written as an 837D at all (as opposed to being written and failing validation)."""


@dataclass(frozen=True)
class Submitter:
    """Loop 1000A: who sends the file, and whom the receiver's EDI staff call about it (PER needs a number)."""

    name: str
    contact_name: str
    phone: str | None = None
    email: str | None = None


def to_837d(
    claims: Sequence[Claim],
    *,
    sender_id: str,
    receiver_id: str,
    interchange_control_number: int,
    group_control_number: int,
    created_at: datetime,
    usage: str = "P",
    submitter: Submitter | None = None,
    receiver_name: str | None = None,
) -> str:
    """One interchange (ISA/IEA) holding one functional group (GS/GE) of 837D transaction sets.

    Without ``submitter`` the first claim's billing organization is named as submitter, with no contact number
    (nothing in the claims carries one), which ``validate_837d`` reports: pass a Submitter for a file to send.
    Without ``receiver_name`` the receiver is named after the payer whose id it is, or else after its id.
    """
    if not claims:
        raise ExportError("an 837D needs at least one claim")
    if usage not in ("P", "T"):
        raise ExportError("usage must be P (production) or T (test)")
    for name, number in (("interchange", interchange_control_number), ("group", group_control_number)):
        if not 1 <= number <= 999_999_999:
            raise ExportError(f"the {name} control number must be between 1 and 999999999")
    sender = _id(sender_id, "sender id", 15)
    receiver = _id(receiver_id, "receiver id", 15)

    by_organization: dict[str, list[Claim]] = {}
    for claim in claims:
        by_organization.setdefault(claim.billing_organization.id, []).append(claim)

    interchange = str(interchange_control_number).zfill(9)
    group = str(group_control_number)
    segments = [
        _isa(sender, receiver, created_at, interchange, usage),
        _segment("GS", "HC", sender, receiver, _date(created_at), _time(created_at), group, "X", IMPLEMENTATION_GUIDE),
    ]
    header = _Header(
        created_at=created_at,
        group=group,
        submitter=submitter or Submitter(claims[0].billing_organization.name, claims[0].billing_organization.name),
        sender=sender,
        receiver=receiver,
        receiver_name=receiver_name or _payer_name(claims, receiver) or receiver,
    )
    for index, organization_claims in enumerate(by_organization.values(), start=1):
        segments.extend(_transaction_set(organization_claims, control=str(index).zfill(4), header=header))
    segments.append(_segment("GE", str(len(by_organization)), group))
    segments.append(_segment("IEA", "1", interchange))
    return "".join(segments)


def to_837d_batch(
    claims: Sequence[Claim],
    *,
    sender_id: str,
    receiver_id: str,
    interchange_control_number: int,
    group_control_number: int,
    created_at: datetime,
    usage: str = "P",
    submitter: Submitter | None = None,
    receiver_name: str | None = None,
) -> str:
    """Many claims of one billing practice for one payer as one interchange, each claim with its own CLM01.

    The control numbers are the caller's, who keeps them unique and increasing per practice (``next_control_number``
    in amend.py helps). A batch mixing practices or payers, or two claims sharing a CLM01 (which the payer's 835
    could not tell apart), is refused with ExportError.
    """
    if not claims:
        raise ExportError("a batch needs at least one claim")
    practices = {claim.billing_organization.id for claim in claims}
    if len(practices) > 1:
        raise ExportError(f"a batch holds the claims of one billing practice; these belong to {len(practices)}")
    payers = {claim.coverage.payer_id if claim.coverage else None for claim in claims}
    if None in payers:
        missing = next(claim for claim in claims if claim.coverage is None)
        raise ExportError(f"the {missing.role} claim of referral {missing.referral_id} has no coverage to bill")
    if len(payers) > 1:
        raise ExportError(f"a batch goes to one payer; these claims name {len(payers)} payers")
    seen: dict[str, Claim] = {}
    for claim in claims:
        number = claim_control_number(claim)
        if number in seen:
            raise ExportError(
                f"two claims of the batch would both be sent as CLM01 {number} (referrals {seen[number].referral_id} "
                f"and {claim.referral_id}); the payer could not tell their payments apart"
            )
        seen[number] = claim
    return to_837d(
        claims,
        sender_id=sender_id,
        receiver_id=receiver_id,
        interchange_control_number=interchange_control_number,
        group_control_number=group_control_number,
        created_at=created_at,
        usage=usage,
        submitter=submitter,
        receiver_name=receiver_name,
    )


def patient_control_number(referral_id: str) -> str:
    """CLM01, which the payer echoes back in the 835 (CLP01): the referral id's letters and digits, at most 20.

    Only the first 20 of a UUID's 32 hex digits survive, which still leaves collisions out of reach; callers
    matching a remittance to a referral compute the same value rather than parsing it.
    """
    compact = re.sub(r"[^0-9A-Za-z]", "", referral_id).upper()
    if not compact:
        raise ExportError("the referral id has no letters or digits to make a patient control number from")
    return compact[:_PATIENT_CONTROL]


def claim_control_number(claim: Claim) -> str:
    """The CLM01 the 837D carries for ``claim``: the caller's choice, or else made from the referral id."""
    if claim.patient_control_number is None:
        return patient_control_number(claim.referral_id)
    return _id(claim.patient_control_number, "patient control number (CLM01)", _PATIENT_CONTROL)


def _payer_name(claims: Sequence[Claim], payer_id: str) -> str | None:
    # Sent straight to a payer, the receiver is that payer.
    return next((c.coverage.payer_name for c in claims if c.coverage and c.coverage.payer_id == payer_id), None)


def claim_filing_indicator(claim: Claim) -> str:
    """SBR09: what the claim's payer profile says; without one, MC (Medicaid) when the profile id or the payer's
    name says Medicaid, otherwise CI (commercial)."""
    try:
        stated = get_profile(claim.payer_profile).claim_filing_indicator
    except ProfileError:
        stated = None  # a profile this server does not ship (a test's, or one since removed)
    if stated:
        return stated
    words = f"{claim.payer_profile} {claim.coverage.payer_name if claim.coverage else ''}".lower()
    return "MC" if "medicaid" in words or "medi-cal" in words else "CI"


def format_amount(value: Decimal) -> str:
    """Cents at most, and no trailing zeros: X12 R elements carry no padding ("125", "125.5")."""
    text = f"{value.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def line_teeth(line: ClaimLine) -> list[str]:
    """The teeth a line names, ``tooth`` first, each once."""
    return list(dict.fromkeys(t for t in (line.tooth, *line.teeth) if t))


# -- segments --------------------------------------------------------------------------------------


def _segment(*elements: str) -> str:
    parts = list(elements)
    # Trailing empty elements must be left out rather than sent as a run of separators.
    while parts and parts[-1] == "":
        parts.pop()
    return ELEMENT.join(parts) + SEGMENT


def _isa(sender: str, receiver: str, created_at: datetime, control: str, usage: str) -> str:
    # Fixed width throughout: receivers locate the separators by position, so every element is padded.
    elements = [
        "ISA",
        "00",
        " " * 10,  # no authorization information
        "00",
        " " * 10,  # no security information
        "ZZ",
        sender.ljust(15),
        "ZZ",
        receiver.ljust(15),
        created_at.strftime("%y%m%d"),
        created_at.strftime("%H%M"),
        REPETITION,
        "00501",
        control,
        "0",  # no TA1 requested; the 999 answers for the content
        usage,
        COMPONENT,
    ]
    return ELEMENT.join(elements) + SEGMENT


@dataclass(frozen=True)
class _Header:
    created_at: datetime
    group: str
    submitter: Submitter
    sender: str
    receiver: str
    receiver_name: str


class _Hierarchy:
    """HL numbering within one transaction set."""

    def __init__(self) -> None:
        self.count = 0

    def next(self, parent: str, level: str, has_children: bool) -> tuple[str, str]:
        self.count += 1
        number = str(self.count)
        return number, _segment("HL", number, parent, level, "1" if has_children else "0")


def _transaction_set(claims: list[Claim], *, control: str, header: _Header) -> list[str]:
    organization = claims[0].billing_organization
    segments = [
        _segment("ST", "837", control, IMPLEMENTATION_GUIDE),
        # 0019: information source, subscriber, dependent; 00: original; CH: chargeable (a claim, not an encounter)
        _segment(
            "BHT", "0019", "00", f"{header.group}{control}", _date(header.created_at), _time(header.created_at), "CH"
        ),
        *_submitter_loops(header),
    ]
    hierarchy = _Hierarchy()
    billing_hl, hl = hierarchy.next("", "20", has_children=True)
    segments.append(hl)
    segments.extend(_billing_provider(organization, claims))
    for claim in claims:
        segments.extend(_claim_hierarchy(claim, billing_hl, hierarchy))
    segments.append(_segment("SE", str(len(segments) + 1), control))
    return segments


def _submitter_loops(header: _Header) -> Iterator[str]:
    submitter = header.submitter
    yield _segment(
        "NM1",
        "41",
        "2",
        _text(submitter.name, _NAME_LAST_OR_ORG, "submitter name"),
        "",
        "",
        "",
        "",
        "46",
        header.sender,
    )
    contact: list[str] = []
    if submitter.phone:
        digits = re.sub(r"\D", "", submitter.phone)
        if not digits:
            raise ExportError("the submitter's phone number has no digits")
        contact += ["TE", digits]
    if submitter.email:
        contact += ["EM", _id(submitter.email, "submitter email", 256)]
    yield _segment("PER", "IC", _text(submitter.contact_name, 60, "submitter contact name"), *contact)
    yield _segment(
        "NM1",
        "40",
        "2",
        _text(header.receiver_name, _NAME_LAST_OR_ORG, "receiver name"),
        "",
        "",
        "",
        "",
        "46",
        header.receiver,
    )


def _billing_provider(organization: OrganizationFacts, claims: list[Claim]) -> Iterator[str]:
    # A billing NPI that is also a rendering provider's is a dentist billing in their own (Type 1) name: the TR3
    # then wants the taxonomy here, because no 2310B will carry it, and the name as a person's.
    own = next((c.rendering_provider for c in claims if c.rendering_provider.npi == organization.npi), None)
    if own is not None:
        yield _segment("PRV", "BI", "PXC", _id(own.taxonomy, "taxonomy", 50))
        yield _person_name("85", own, "XX", own.npi)
    else:
        yield _segment(
            "NM1",
            "85",
            "2",
            _text(organization.name, _NAME_LAST_OR_ORG, "organization name"),
            "",
            "",
            "",
            "",
            "XX",
            _id(organization.npi, "billing NPI", _ID),
        )
    yield from _address(organization.address)
    yield _segment("REF", "EI", _id(organization.tax_id.replace("-", ""), "tax id", _REF))


def _claim_hierarchy(claim: Claim, billing_hl: str, hierarchy: _Hierarchy) -> Iterator[str]:
    coverage = claim.coverage
    if coverage is None:
        raise ExportError(f"the {claim.role} claim of referral {claim.referral_id} has no coverage to bill")
    if coverage.relationship not in RELATIONSHIP_CODES:
        raise ExportError(
            f"the {claim.role} claim of referral {claim.referral_id} names the patient's relationship to the "
            f"subscriber as {coverage.relationship!r}; it must be one of {', '.join(RELATIONSHIP_CODES)}"
        )
    patient_is_subscriber = coverage.patient_is_subscriber
    subscriber_hl, hl = hierarchy.next(billing_hl, "22", has_children=not patient_is_subscriber)
    yield hl
    yield _segment(
        "SBR",
        "P",
        RELATIONSHIP_CODES["self"] if patient_is_subscriber else "",
        _id(coverage.group_number, "group number", _REF) if coverage.group_number else "",
        "",
        "",
        "",
        "",
        "",
        claim_filing_indicator(claim),
    )
    if patient_is_subscriber:
        yield _person_name("IL", claim.patient, "MI", coverage.member_id)
        yield from _demographics(claim.patient.address, claim.patient.birth_date, claim.patient.sex)
    else:
        subscriber = coverage.subscriber
        if subscriber is None:
            raise ExportError(
                f"the {claim.role} claim of referral {claim.referral_id} is for a dependant ({coverage.relationship}) "
                "and 2010BA needs the subscriber's name: add the subscriber to the patient's coverage"
            )
        yield _person_name("IL", subscriber, "MI", coverage.member_id)
        yield from _demographics(subscriber.address, subscriber.birth_date, subscriber.sex)
    yield _segment(
        "NM1",
        "PR",
        "2",
        _text(coverage.payer_name, _NAME_LAST_OR_ORG, "payer name"),
        "",
        "",
        "",
        "",
        "PI",
        _id(coverage.payer_id, "payer id", _ID),
    )
    if not patient_is_subscriber:
        _, hl = hierarchy.next(subscriber_hl, "23", has_children=False)
        yield hl
        yield _segment("PAT", RELATIONSHIP_CODES[coverage.relationship])
        yield _person_name("QC", claim.patient)
        yield from _demographics(claim.patient.address, claim.patient.birth_date, claim.patient.sex)
    yield from _claim(claim)


def _claim(claim: Claim) -> Iterator[str]:
    where = f"the {claim.role} claim of referral {claim.referral_id}"
    charges = [format_amount(line.charge) for line in claim.lines]
    if not charges:
        raise ExportError(f"{where} has no lines")
    # The total is summed from the rounded line charges so that CLM02 equals the sum of the SV302 as sent.
    total = format_amount(sum((Decimal(charge) for charge in charges), Decimal("0")))
    place = _place(claim.place_of_service, "place of service")
    frequency = claim.frequency
    if frequency not in _FREQUENCIES:
        raise ExportError(f"{where} has frequency {frequency!r}; a dental claim is 1 (original), 7 or 8")
    yield _segment(
        "CLM",
        claim_control_number(claim),
        total,
        "",
        "",
        COMPONENT.join((place, "B", frequency)),
        "Y",
        "A",
        "Y",
        "Y",
    )
    yield _segment("DTP", "472", "D8", _date(claim.date_of_service))
    yield from _paperwork(claim, where)
    if frequency != "1":
        if not claim.payer_claim_number:
            raise ExportError(
                f"{where} is a {'replacement' if frequency == '7' else 'void'} (frequency {frequency}) and needs the "
                "payer's claim number from the remittance (REF*F8)"
            )
        yield _segment("REF", "F8", _id(claim.payer_claim_number, "payer claim number", _REF))
    if claim.narrative:
        try:
            note = normalize_narrative(claim.narrative)
        except NarrativeError as exc:
            raise ExportError(f"{where}: {exc}") from None
        yield _segment("NTE", "ADD", note)
    if claim.referring_provider is not None:
        yield _person_name("DN", claim.referring_provider, "XX", claim.referring_provider.npi)
    rendering = claim.rendering_provider
    if rendering.npi != claim.billing_organization.npi:
        yield _person_name("82", rendering, "XX", rendering.npi)
        yield _segment("PRV", "PE", "PXC", _id(rendering.taxonomy, "taxonomy", 50))
    for number, (line, charge) in enumerate(zip(claim.lines, charges, strict=True), start=1):
        yield from _line(number, line, charge, place)


def _paperwork(claim: Claim, where: str) -> Iterator[str]:
    """One PWK per attachment: report type, how it travels, and the package's control number."""
    if len(claim.attachments) > _MAX_ATTACHMENTS:
        raise ExportError(f"{where} lists {len(claim.attachments)} attachments; an 837D claim carries at most 10")
    for attachment in claim.attachments:
        if attachment.report_type not in ATTACHMENT_REPORT_TYPES:
            raise ExportError(f"{where} has an attachment of unknown report type {attachment.report_type!r}")
        if attachment.transmission not in ATTACHMENT_TRANSMISSIONS:
            raise ExportError(f"{where} has an attachment sent by unknown means {attachment.transmission!r}")
        if not attachment.needs_control_number:
            # Available on request: no number, and a payer refuses one that comes with AA.
            yield _segment("PWK", attachment.report_type, attachment.transmission)
            continue
        if not attachment.control_number:
            raise ExportError(
                f"{where} needs its attachment package ({ATTACHMENT_REPORT_TYPES[attachment.report_type]}) and the "
                "package's control number before it can be sent"
            )
        control = _id(attachment.control_number, "attachment control number", _ID)
        if len(control) < 2:
            raise ExportError(f"{where}: an attachment control number has at least 2 characters")
        yield _segment("PWK", attachment.report_type, attachment.transmission, "", "", "AC", control)


def _line(number: int, line: ClaimLine, charge: str, claim_place: str) -> Iterator[str]:
    teeth = line_teeth(line)
    area = _id(line.area, "oral cavity area", 3) if line.area and not teeth else ""
    quantity = str(line.quantity) if line.quantity > 1 else ""
    # SV303 only where the line's place differs from the claim's (CLM05-1).
    place = _place(line.place_of_service, "line place of service") if line.place_of_service else ""
    if place == claim_place:
        place = ""
    yield _segment("LX", str(number))
    yield _segment(
        "SV3", COMPONENT.join(("AD", _id(line.code, "procedure code", 48))), charge, place, area, "", quantity
    )
    surfaces = COMPONENT.join(_id(line.surfaces, "surfaces", 10)) if line.surfaces else ""
    for tooth in teeth:
        yield _segment("TOO", "JP", _id(tooth, "tooth", 3), surfaces)
    yield _segment("DTP", "472", "D8", _date(line.date_of_service))
    yield _segment("REF", "6R", _id(line.control_number, "line control number", _REF))


# -- values ----------------------------------------------------------------------------------------


def _person_name(
    entity: str,
    person: PatientFacts | ProviderFacts | SubscriberFacts,
    id_qualifier: str = "",
    identifier: str = "",
) -> str:
    return _segment(
        "NM1",
        entity,
        "1",
        _text(person.last_name, _NAME_LAST_OR_ORG, "last name"),
        _text(person.first_name, _NAME_FIRST, "first name"),
        "",
        "",
        "",
        id_qualifier,
        _id(identifier, f"NM1*{entity} identifier", _ID) if identifier else "",
    )


def _demographics(address: Address | None, birth_date: date | None, sex: str | None) -> Iterator[str]:
    if address is not None:
        yield from _address(address)
    if birth_date is not None:
        yield _segment("DMG", "D8", _date(birth_date), _SEX.get(sex or "U", "U"))


def _address(address: Address) -> Iterator[str]:
    line2 = _text(address.line2, _ADDRESS_LINE, "address line 2", required=False) if address.line2 else ""
    yield _segment("N3", _text(address.line1, _ADDRESS_LINE, "address line 1"), line2)
    yield _segment(
        "N4", _text(address.city, _CITY, "city"), _text(address.state, 2, "state"), re.sub(r"\D", "", address.zip)
    )


def _place(value: str, what: str) -> str:
    if not re.fullmatch(r"[0-9]{2}", value):
        raise ExportError(f"the {what} must be a two-digit place-of-service code")
    return value


def _text(value: str, max_length: int, what: str, *, required: bool = True) -> str:
    cleaned = basic_text(value)[:max_length].rstrip()
    if required and not cleaned:
        raise ExportError(f"the {what} has no characters an 837D can carry")
    return cleaned


def _id(value: str, what: str, max_length: int) -> str:
    # The value itself stays out of the message: member ids and the like are patient data and errors get logged.
    text = value.strip()
    if not text:
        raise ExportError(f"the {what} is empty")
    if len(text) > max_length:
        raise ExportError(f"the {what} is longer than the {max_length} characters X12 allows")
    if any(ch in _SEPARATORS or not (ch.isascii() and ch.isprintable()) for ch in text):
        raise ExportError(f"the {what} contains characters that X12 reserves or cannot carry")
    return text


def _date(value: date) -> str:
    return value.strftime("%Y%m%d")


def _time(value: datetime) -> str:
    return value.strftime("%H%M")
