"""Builders of the files payers and clearinghouses send back: 835 remittances, 999 and 277CA acknowledgements.

Amounts a builder can work out (claim totals, the payment, counts in the trailers) are computed from the parts, so
a test states only what it is about; pass a value explicitly to build a file that does not add up. The people and
numbers are the invented ones of claims-lifecycle.md §7. Shared by the billing tests and, later, the API tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from referral.billing.model import Claim
from referral.billing.x12 import claim_control_number, format_amount

__all__ = [
    "ClaimPaid",
    "ClaimStatus",
    "ElementError",
    "LinePaid",
    "LineStatus",
    "SegmentError",
    "SetAcknowledged",
    "acknowledgement_999",
    "claim_acknowledgement_277ca",
    "interchange",
    "paid_as_billed",
    "recount",
    "remittance_835",
]

Cas = tuple[str, str, str]  # group, reason, amount


def _money(value: str | Decimal) -> Decimal:
    return Decimal(str(value))


def _amount(value: str | Decimal) -> str:
    return format_amount(_money(value)) if _money(value) >= 0 else "-" + format_amount(-_money(value))


def _segment(*elements: str) -> str:
    parts = list(elements)
    while parts and parts[-1] == "":
        parts.pop()
    return "*".join(parts) + "~"


def interchange(
    functional_id: str,
    version: str,
    transaction_sets: Sequence[list[str]],
    *,
    control: int = 1,
    sender: str = "EXAMPLEPAYER",
    receiver: str = "MAPLE01",
    created: date = date(2026, 5, 6),
) -> str:
    """ISA/GS around ``transaction_sets`` (each its segments between ST and SE), every count and number right."""
    isa = "*".join(
        [
            "ISA", "00", " " * 10, "00", " " * 10, "ZZ", sender.ljust(15), "ZZ", receiver.ljust(15),
            created.strftime("%y%m%d"), "1200", "^", "00501", str(control).zfill(9), "0", "P", ":",
        ]
    ) + "~"
    out = [isa, _segment("GS", functional_id, sender, receiver, created.strftime("%Y%m%d"), "1200", str(control),
                         "X", version)]
    for number, body in enumerate(transaction_sets, start=1):
        st = str(number).zfill(4)
        identifier = {"HP": "835", "FA": "999", "HN": "277"}[functional_id]
        out.append(_segment("ST", identifier, st, version))
        out.extend(body)
        out.append(_segment("SE", str(len(body) + 2), st))
    out.append(_segment("GE", str(len(transaction_sets)), str(control)))
    out.append(_segment("IEA", "1", str(control).zfill(9)))
    return "".join(out)


def recount(text: str) -> str:
    """``text`` with every SE01 counting its transaction set again, after a test added or removed segments."""
    segments = text.split("~")
    start = 0
    for index, segment in enumerate(segments):
        if segment.startswith("ST*"):
            start = index
        elif segment.startswith("SE*"):
            elements = segment.split("*")
            elements[1] = str(index - start + 1)
            segments[index] = "*".join(elements)
    return "~".join(segments)


# -- 835 -------------------------------------------------------------------------------------------------------------


@dataclass
class LinePaid:
    code: str
    charge: str | Decimal
    paid: str | Decimal
    control: str | None  # REF*6R
    adjustments: Sequence[Cas] = ()
    remarks: Sequence[str] = ()
    day: date | None = date(2026, 4, 15)
    allowed: str | None = None
    submitted_code: str | None = None  # SVC06: when the payer recoded the line

    def segments(self) -> list[str]:
        original = f"AD:{self.submitted_code}" if self.submitted_code else ""
        out = [_segment("SVC", f"AD:{self.code}", _amount(self.charge), _amount(self.paid), "", "1", original)]
        if self.day is not None:
            out.append(_segment("DTM", "472", self.day.strftime("%Y%m%d")))
        out += [_segment("CAS", group, reason, _amount(amount)) for group, reason, amount in self.adjustments]
        if self.control is not None:
            out.append(_segment("REF", "6R", self.control))
        if self.allowed is not None:
            out.append(_segment("AMT", "B6", _amount(self.allowed)))
        out += [_segment("LQ", "HE", code) for code in self.remarks]
        return out


@dataclass
class ClaimPaid:
    number: str  # CLP01: the CLM01 we sent
    lines: Sequence[LinePaid] = ()
    status: str = "1"
    payer_claim_number: str = "PCN260415017"
    adjustments: Sequence[Cas] = ()  # claim level
    remarks: Sequence[str] = ()  # MOA
    charge: str | Decimal | None = None  # default: the lines' charges
    paid: str | Decimal | None = None  # default: the lines' payments less claim-level adjustments
    patient_share: str | Decimal | None = None  # default: the PR adjustments
    patient: tuple[str, str] = ("RIVERA", "AVA")
    member_id: str = "ABC123456789"
    place: str = "11"
    frequency: str = "1"

    @property
    def total_charge(self) -> Decimal:
        if self.charge is not None:
            return _money(self.charge)
        return sum((_money(line.charge) for line in self.lines), Decimal("0"))

    @property
    def total_paid(self) -> Decimal:
        if self.paid is not None:
            return _money(self.paid)
        lines = sum((_money(line.paid) for line in self.lines), Decimal("0"))
        if not self.lines:
            lines = self.total_charge
        return lines - sum((_money(amount) for _, _, amount in self.adjustments), Decimal("0"))

    def segments(self) -> list[str]:
        share = self.patient_share
        if share is None:
            cas = [*self.adjustments, *(a for line in self.lines for a in line.adjustments)]
            share = sum((_money(amount) for group, _, amount in cas if group == "PR"), Decimal("0"))
        out = [
            _segment(
                "CLP", self.number, self.status, _amount(self.total_charge), _amount(self.total_paid),
                _amount(share), "12", self.payer_claim_number, self.place, self.frequency,
            )
        ]
        out += [_segment("CAS", group, reason, _amount(amount)) for group, reason, amount in self.adjustments]
        out.append(_segment("NM1", "QC", "1", *self.patient, "", "", "", "MI", self.member_id))
        if self.remarks:
            out.append(_segment("MOA", "", "", *self.remarks))
        for line in self.lines:
            out += line.segments()
        return out


def remittance_835(
    claims: Sequence[ClaimPaid],
    *,
    trace: str = "0012345678",
    payer: tuple[str, str] = ("EXAMPLE DENTAL PLAN", "99999"),
    payee: tuple[str, str] = ("MAPLE FAMILY DENTAL", "1234567893"),
    provider_adjustments: Sequence[tuple[str, str, str]] = (),  # reason, reference, amount
    paid_total: str | Decimal | None = None,
    credit: bool = True,
    handling: str = "I",
    method: str = "CHK",
    payment_date: date = date(2026, 5, 6),
    control: int = 1,
) -> str:
    """One 835 paying ``claims`` to ``payee`` (name, NPI); the total is the claims' payments less PLB amounts."""
    total = (
        _money(paid_total)
        if paid_total is not None
        else sum((claim.total_paid for claim in claims), Decimal("0"))
        - sum((_money(amount) for _, _, amount in provider_adjustments), Decimal("0"))
    )
    body = [
        _segment("BPR", handling, _amount(abs(total)), "C" if credit else "D", method, *[""] * 11,
                 payment_date.strftime("%Y%m%d")),
        _segment("TRN", "1", trace, "1" + payer[1].rjust(9, "0")),
        _segment("DTM", "405", payment_date.strftime("%Y%m%d")),
        _segment("N1", "PR", payer[0], "XV", payer[1]),
        _segment("N3", "1 PLAN WAY"),
        _segment("N4", "SPRINGFIELD", "IL", "62701"),
        _segment("PER", "BL", "EDI DESK", "TE", "8005550100"),
        _segment("N1", "PE", payee[0], "XX", payee[1]),
    ]
    if claims:
        body.append(_segment("LX", "1"))
    for claim in claims:
        body += claim.segments()
    if provider_adjustments:
        plb: list[str] = ["PLB", payee[1], payment_date.strftime("%Y") + "1231"]
        for reason, reference, amount in provider_adjustments:
            plb += [f"{reason}:{reference}" if reference else reason, _amount(amount)]
        body.append(_segment(*plb))
    return interchange("HP", "005010X221A1", [body], control=control)


def paid_as_billed(claim: Claim, *, contract_cut: dict[int, str] | None = None,
                   denied: dict[int, tuple[str, str, Sequence[str]]] | None = None,
                   payer_claim_number: str = "PCN260415017") -> ClaimPaid:
    """The payment of an engine claim: each line paid at its charge, less a contractual cut (CO 45) for the line
    numbers in ``contract_cut``, or denied in full for those in ``denied`` (group, reason, remarks)."""
    lines = []
    for line in claim.lines:
        charge = line.charge
        adjustments: list[Cas] = []
        remarks: Sequence[str] = ()
        paid = charge
        if denied and line.number in denied:
            group, reason, remarks = denied[line.number]
            adjustments.append((group, reason, str(charge)))
            paid = Decimal("0")
        elif contract_cut and line.number in contract_cut:
            adjustments.append(("CO", "45", contract_cut[line.number]))
            paid = charge - _money(contract_cut[line.number])
        lines.append(
            LinePaid(line.code, charge, paid, line.control_number, adjustments, remarks, line.date_of_service)
        )
    return ClaimPaid(claim_control_number(claim), lines, payer_claim_number=payer_claim_number)


# -- 999 -------------------------------------------------------------------------------------------------------------


@dataclass
class ElementError:
    position: str  # IK401, e.g. "2" or "2:1"
    reference: str  # IK402, data element reference number
    code: str  # IK403
    bad_value: str = ""  # IK404


@dataclass
class SegmentError:
    segment_id: str  # IK301
    position: int  # IK302: position in the transaction set (ST = 1)
    loop: str  # IK303
    code: str  # IK304
    elements: Sequence[ElementError] = ()
    claim_number: str | None = None  # CTX*CLM01: the claim the error sits in


@dataclass
class SetAcknowledged:
    control_number: str  # the 837's ST02
    status: str = "A"  # IK501
    codes: Sequence[str] = ()  # IK502..IK506
    errors: Sequence[SegmentError] = ()
    identifier: str = "837"


def acknowledgement_999(
    group_control_number: str,
    sets: Sequence[SetAcknowledged],
    *,
    group_status: str | None = None,
    group_codes: Sequence[str] = (),
    version: str = "005010X224A2",
    control: int = 1,
) -> str:
    """A 999 answering the 837 group ``group_control_number`` (its GS06), one AK2 loop per transaction set."""
    accepted = sum(1 for s in sets if s.status in ("A", "E"))
    if group_status is None:
        if accepted == len(sets):
            group_status = "E" if any(s.status == "E" for s in sets) else "A"
        else:
            group_status = "P" if accepted else "R"
    body = [_segment("AK1", "HC", group_control_number, version)]
    for ack in sets:
        body.append(_segment("AK2", ack.identifier, ack.control_number, version))
        for error in ack.errors:
            body.append(_segment("IK3", error.segment_id, str(error.position), error.loop, error.code))
            if error.claim_number:
                body.append(_segment("CTX", f"CLM01:{error.claim_number}"))
            for element in error.elements:
                body.append(_segment("IK4", element.position, element.reference, element.code, element.bad_value))
        body.append(_segment("IK5", ack.status, *ack.codes))
    body.append(_segment("AK9", group_status, str(len(sets)), str(len(sets)), str(accepted), *group_codes))
    return interchange("FA", "005010X231A1", [body], control=control)


# -- 277CA -----------------------------------------------------------------------------------------------------------


@dataclass
class LineStatus:
    control: str  # REF*FJ: our line item control number
    code: str
    charge: str
    category: str = "A2"
    status: str = "20"
    entity: str = ""


@dataclass
class ClaimStatus:
    number: str  # TRN02: the CLM01 we sent
    category: str = "A2"
    status: str = "20"
    entity: str = ""
    more: Sequence[tuple[str, str, str]] = ()  # further (category, status, entity) in STC10/STC11
    amount: str = "105"
    payer_claim_number: str | None = "PCN260415017"
    patient: tuple[str, str] = ("RIVERA", "AVA")
    member_id: str = "ABC123456789"
    lines: Sequence[LineStatus] = field(default_factory=tuple)
    day: date = date(2026, 4, 17)


def _stc(category: str, status: str, entity: str) -> str:
    return ":".join(part for part in (category, status, entity) if part)


def claim_acknowledgement_277ca(
    claims: Sequence[ClaimStatus],
    *,
    billing: tuple[str, str] = ("MAPLE FAMILY DENTAL", "1234567893"),
    payer: tuple[str, str] = ("EXAMPLE DENTAL PLAN", "99999"),
    control: int = 1,
) -> str:
    """A 277CA from ``payer`` about ``claims`` of one billing provider (name, NPI)."""
    day = "20260417"
    body = [
        _segment("BHT", "0085", "08", "277CA0001", day, "1200", "TH"),
        _segment("HL", "1", "", "20", "1"),
        _segment("NM1", "PR", "2", payer[0], "", "", "", "", "PI", payer[1]),
        _segment("TRN", "1", "277CA0001"),
        _segment("DTP", "050", "D8", day),
        _segment("DTP", "009", "D8", day),
        _segment("HL", "2", "1", "21", "1"),
        _segment("NM1", "41", "2", billing[0], "", "", "", "", "46", "MAPLE01"),
        _segment("TRN", "2", "000000007"),
        _segment("STC", "A1:19:PR", day, "WQ", "0"),
        _segment("QTY", "90", str(len(claims))),
        _segment("HL", "3", "2", "19", "1"),
        _segment("NM1", "85", "2", billing[0], "", "", "", "", "XX", billing[1]),
        _segment("TRN", "1", "0"),
    ]
    for number, claim in enumerate(claims, start=4):
        rejected = claim.category in ("A3", "A4", "A6", "A7", "A8")
        stc = ["STC", _stc(claim.category, claim.status, claim.entity), claim.day.strftime("%Y%m%d"),
               "U" if rejected else "WQ", claim.amount]
        if claim.more:
            stc += ["", "", "", "", "", *(_stc(*extra) for extra in claim.more[:2])]
        body += [
            _segment("HL", str(number), "3", "PT"),
            _segment("NM1", "QC", "1", *claim.patient, "", "", "", "MI", claim.member_id),
            _segment("TRN", "2", claim.number),
            _segment(*stc),
        ]
        if claim.payer_claim_number:
            body.append(_segment("REF", "1K", claim.payer_claim_number))
        body.append(_segment("DTP", "472", "RD8", "20260415-20260415"))
        for line in claim.lines:
            body += [
                _segment("SVC", f"AD:{line.code}", line.charge, "", "", "", "1"),
                _segment("STC", _stc(line.category, line.status, line.entity), day, "WQ", line.charge),
                _segment("REF", "FJ", line.control),
                _segment("DTP", "472", "D8", "20260415"),
            ]
    return interchange("HN", "005010X214", [body], control=control)
