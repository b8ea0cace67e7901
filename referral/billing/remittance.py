"""Remittances: an X12 835 (005010X221A1) read into payments per claim and line, checked, and matched to our claims.

What is read (claims-lifecycle.md §4): the payment (BPR), its trace number (TRN), payer and payee (N1*PR, N1*PE);
per claim (CLP) its status, amounts and the payer's claim number, claim-level adjustments (CAS) and remarks (MOA);
per line (SVC) the code as adjudicated and as submitted, amounts, date, adjustments, our line control number
(REF*6R), the allowed amount (AMT*B6) and remarks (LQ*HE); provider-level adjustments (PLB).

What is checked, besides the envelope (x12_read.py): each line's charge less its adjustments is what was paid on it;
each claim's charge less all its adjustments is what was paid on it; the payment is the claims' payments less the
provider-level adjustments (a debit, BPR03 D, is the same sum taken back). A file that does not add up is refused
with the segment that does not: posting it would put wrong amounts on the books. A patient share (CLP05) that the
PR adjustments do not back is kept as a warning, since payers send such files and the amounts still balance.

Reversals (CLP02 22) carry the earlier payment negated and are always posted on top of it, never instead of it; a
corrected claim that follows a reversal has the same CLP01 and usually a new payer claim number (CLP07).

``match_remittance`` pairs the payments with the practice's own claims: CLP01 is the CLM01 the export wrote, and
each SVC's REF*6R is a line control number. Both practices of a split share a referral's default CLM01, so a
payment is matched to a claim only when its lines' control numbers are that claim's (or, without any REF*6R, when
its charge is that claim's total), and never when the payee's NPI is another practice's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from referral.billing.adjustment_codes import GROUP_CODES, Advice, advise
from referral.billing.model import Claim
from referral.billing.x12 import claim_control_number
from referral.billing.x12_read import (
    Segment,
    SegmentCursor,
    TransactionSet,
    X12ParseError,
    parse_amount,
    parse_date,
    parse_optional_amount,
    parse_optional_date,
    quote,
    read_interchange,
)

__all__ = [
    "CLAIM_STATUSES",
    "Adjustment",
    "ClaimMatch",
    "ClaimPayment",
    "Denial",
    "LineMatch",
    "ProviderAdjustment",
    "Remittance",
    "RemittanceMatch",
    "ServicePayment",
    "X12ParseError",
    "denials",
    "match_remittance",
    "parse_835",
]

IMPLEMENTATION_GUIDE = "005010X221A1"
ZERO = Decimal("0")

# CLP02 in our words, and what each means for the claim's outcome.
CLAIM_STATUSES: dict[str, str] = {
    "1": "processed as primary",
    "2": "processed as secondary",
    "3": "processed as tertiary",
    "4": "denied",
    "19": "processed as primary and sent on to another payer",
    "20": "processed as secondary and sent on to another payer",
    "21": "processed as tertiary and sent on to another payer",
    "22": "reversal of an earlier payment",
    "23": "not this payer's claim; sent on to another payer",
    "25": "priced as a predetermination only; nothing paid",
}
_PROCESSED = frozenset({"1", "2", "3", "19", "20", "21"})
_HANDLING = frozenset({"C", "D", "H", "I", "P", "U", "X"})
_METHODS = frozenset({"ACH", "BOP", "CHK", "FWT", "NON"})


@dataclass(frozen=True)
class Adjustment:
    group: str  # CO, PR, PI, OA
    reason: str  # CARC
    amount: Decimal
    quantity: Decimal | None = None

    def advice(self, remarks: Sequence[str] = ()) -> Advice:
        return advise(self.group, self.reason, remarks)


@dataclass(frozen=True)
class ServicePayment:
    position: int  # of its SVC segment in the file
    qualifier: str  # AD for CDT codes
    code: str  # as the payer adjudicated it
    charge: Decimal
    paid: Decimal
    units: Decimal | None = None
    submitted_code: str | None = None  # SVC06: what we billed, when the payer changed the code
    line_control_number: str | None = None  # REF*6R
    service_date: date | None = None
    adjustments: tuple[Adjustment, ...] = ()
    remarks: tuple[str, ...] = ()  # LQ*HE
    allowed: Decimal | None = None  # AMT*B6

    @property
    def billed_code(self) -> str:
        return self.submitted_code or self.code

    @property
    def patient_owes(self) -> Decimal:
        return sum((a.amount for a in self.adjustments if a.group == "PR"), ZERO)

    def advice(self) -> tuple[Advice, ...]:
        return tuple(adjustment.advice(self.remarks) for adjustment in self.adjustments)

    @property
    def problems(self) -> tuple[Advice, ...]:
        """The adjustments a clerk must act on (not contract terms, not the patient's share)."""
        return tuple(advice for advice in self.advice() if advice.is_problem)

    @property
    def outcome(self) -> str:
        """paid (in full, or less only by contract terms and the patient's share), reduced, or denied."""
        if not self.problems:
            return "paid"
        return "denied" if self.paid == 0 and self.charge != 0 else "reduced"


@dataclass(frozen=True)
class ClaimPayment:
    position: int  # of its CLP segment in the file
    patient_control_number: str  # CLP01: the CLM01 we sent
    status_code: str  # CLP02
    charge: Decimal
    paid: Decimal
    patient_responsibility: Decimal | None
    filing_indicator: str
    payer_claim_number: str | None  # CLP07: needed for a replacement or void (REF*F8)
    place_of_service: str | None = None
    frequency: str | None = None
    patient_name: tuple[str, str] | None = None  # NM1*QC last, first
    member_id: str | None = None
    adjustments: tuple[Adjustment, ...] = ()  # claim level
    remarks: tuple[str, ...] = ()  # MOA
    services: tuple[ServicePayment, ...] = ()
    received_on: date | None = None  # DTM*050

    @property
    def status(self) -> str:
        return CLAIM_STATUSES[self.status_code]

    @property
    def is_reversal(self) -> bool:
        return self.status_code == "22"

    def advice(self) -> tuple[Advice, ...]:
        return tuple(adjustment.advice(self.remarks) for adjustment in self.adjustments)

    @property
    def outcome(self) -> str:
        """What the payment does to the claim: paid, partially_paid, denied, reversed, forwarded or predetermined.

        A zero payment is not a denial by itself: a line wholly applied to the deductible is paid (by the patient).
        """
        if self.status_code == "22":
            return "reversed"
        if self.status_code == "23":
            return "forwarded"
        if self.status_code == "25":
            return "predetermined"
        if self.status_code == "4":
            return "denied"
        outcomes = [service.outcome for service in self.services]
        claim_problems = any(advice.is_problem for advice in self.advice())
        if outcomes and all(outcome == "denied" for outcome in outcomes):
            return "denied"
        if not outcomes and claim_problems and self.paid == 0:
            return "denied"
        if claim_problems or any(outcome != "paid" for outcome in outcomes):
            return "partially_paid"
        return "paid"


@dataclass(frozen=True)
class ProviderAdjustment:
    provider_id: str
    fiscal_period_end: date
    reason: str  # e.g. WO overpayment recovery, L6 interest, FB forwarding balance
    reference: str | None
    amount: Decimal  # positive: taken from the payment


@dataclass(frozen=True)
class Remittance:
    interchange_control_number: str
    group_control_number: str
    control_number: str  # ST02
    handling: str  # BPR01
    paid_total: Decimal  # BPR02
    credit: bool  # BPR03 C (to the payee) or D (taken back)
    payment_method: str  # BPR04
    payment_date: date  # BPR16
    trace_number: str  # TRN02: the check or EFT number, the key for the deposit
    originator_id: str  # TRN03
    payer_name: str
    payer_id: str | None
    payee_name: str
    payee_id_qualifier: str | None  # XX: NPI
    payee_id: str | None
    claims: tuple[ClaimPayment, ...]
    provider_adjustments: tuple[ProviderAdjustment, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Denial:
    """One denied or reduced line (or a claim-level adjustment a clerk must act on), for the denials worklist."""

    patient_control_number: str  # CLP01
    payer_claim_number: str | None  # CLP07, for a replacement or void
    line_control_number: str | None  # REF*6R; None for a claim-level adjustment
    code: str | None  # the code we billed; None for a claim-level adjustment
    charge: Decimal
    paid: Decimal
    outcome: str  # denied or reduced
    problems: tuple[Advice, ...]  # each with its plain words, next step and, for missing information, the field


def denials(payment: ClaimPayment) -> tuple[Denial, ...]:
    """What in ``payment`` needs a clerk: denied and reduced lines, then claim-level adjustments that need action.

    A reversal is the payer undoing its own payment, not a denial, and yields nothing.
    """
    if payment.is_reversal:
        return ()
    found = [
        Denial(
            payment.patient_control_number,
            payment.payer_claim_number,
            service.line_control_number,
            service.billed_code,
            service.charge,
            service.paid,
            service.outcome,
            service.problems,
        )
        for service in payment.services
        if service.outcome != "paid"
    ]
    claim_level = tuple(advice for advice in payment.advice() if advice.is_problem)
    if claim_level:
        outcome = "denied" if payment.paid == 0 else "reduced"
        found.append(
            Denial(payment.patient_control_number, payment.payer_claim_number, None, None, payment.charge,
                   payment.paid, outcome, claim_level)
        )
    return tuple(found)


# -- reading ---------------------------------------------------------------------------------------------------------


def parse_835(text: str) -> tuple[Remittance, ...]:
    """Every 835 transaction set of the interchange in ``text`` (usually one: one payment to one payee).

    Raises X12ParseError naming the segment and its position when the file is not a well-formed, balanced 835.
    """
    interchange = read_interchange(text, functional_id="HP")
    remittances = []
    for group in interchange.groups:
        if group.version != IMPLEMENTATION_GUIDE:
            raise group.header.fail(f"GS08 {quote(group.version)} is not the 835 guide {IMPLEMENTATION_GUIDE}")
        for transaction_set in group.transaction_sets:
            if transaction_set.identifier != "835":
                raise transaction_set.header.fail(f"ST01 {quote(transaction_set.identifier)} is not an 835")
            remittances.append(
                _remittance(transaction_set, interchange.control_number, group.control_number)
            )
    return tuple(remittances)


def _remittance(transaction_set: TransactionSet, interchange: str, group: str) -> Remittance:
    cursor = SegmentCursor(transaction_set)
    bpr = cursor.expect("BPR", "the payment")
    handling = bpr.element(1)
    if handling not in _HANDLING:
        raise bpr.fail(f"BPR01 {quote(handling)} is not a transaction handling code")
    paid_total = parse_amount(bpr, 2, "total paid")
    if bpr.element(3) not in ("C", "D"):
        raise bpr.fail("BPR03 must be C (credit) or D (debit)")
    method = bpr.element(4)
    if method not in _METHODS:
        raise bpr.fail(f"BPR04 {quote(method)} is not a payment method (ACH, BOP, CHK, FWT, NON)")
    payment_date = parse_date(bpr, 16, "payment date")
    trn = cursor.expect("TRN", "the payment's trace number")
    if trn.element(1) != "1" or not trn.element(2):
        raise trn.fail("TRN must be TRN*1*<check or EFT number>*<payer id>")
    payer = payee = None
    warnings: list[str] = []
    claims: list[ClaimPayment] = []
    adjustments: list[ProviderAdjustment] = []
    while (segment := cursor.peek()) is not None:
        if segment.tag == "N1" and segment.element(1) == "PR":
            payer = cursor.next()
        elif segment.tag == "N1" and segment.element(1) == "PE":
            payee = cursor.next()
        elif segment.tag == "CLP":
            if payer is None or payee is None:
                raise segment.fail("a claim payment comes before the payer (N1*PR) and payee (N1*PE) are named")
            claims.append(_claim(cursor, warnings))
        elif segment.tag == "PLB":
            adjustments.extend(_provider_adjustments(cursor.next()))
        elif segment.tag in ("SVC", "CAS", "MOA", "LQ") or (segment.tag == "REF" and segment.element(1) == "6R"):
            raise segment.fail("this segment belongs to a claim payment (CLP) and comes before any")
        else:
            cursor.next()  # LX, TS3, TS2, DTM, N3, N4, PER, REF...: not needed for posting
    if payer is None:
        raise transaction_set.trailer.fail("the 835 does not name its payer (N1*PR)")
    if payee is None:
        raise transaction_set.trailer.fail("the 835 does not name its payee (N1*PE)")
    _check_total(bpr, paid_total, claims, adjustments)
    return Remittance(
        interchange_control_number=interchange,
        group_control_number=group,
        control_number=transaction_set.control_number,
        handling=handling,
        paid_total=paid_total,
        credit=bpr.element(3) == "C",
        payment_method=method,
        payment_date=payment_date,
        trace_number=trn.element(2),
        originator_id=trn.element(3),
        payer_name=payer.element(2),
        payer_id=payer.element(4) or trn.element(3) or None,
        payee_name=payee.element(2),
        payee_id_qualifier=payee.element(3) or None,
        payee_id=payee.element(4) or None,
        claims=tuple(claims),
        provider_adjustments=tuple(adjustments),
        warnings=tuple(warnings),
    )


def _check_total(
    bpr: Segment, paid_total: Decimal, claims: list[ClaimPayment], adjustments: list[ProviderAdjustment]
) -> None:
    if bpr.element(1) == "H":
        return  # notification only: no money moves, so the total carries nothing to balance
    expected = sum((claim.paid for claim in claims), ZERO) - sum((a.amount for a in adjustments), ZERO)
    sent = paid_total if bpr.element(3) == "C" else -paid_total
    if sent != expected:
        raise bpr.fail(
            f"the payment of {paid_total} ({'credit' if sent == paid_total else 'debit'}) does not equal the claims' "
            f"payments less the provider adjustments ({expected})"
        )


def _adjustments(segment: Segment) -> list[Adjustment]:
    group = segment.element(1)
    if group not in GROUP_CODES:
        raise segment.fail(f"CAS01 {quote(group)} is not a 5010 group code (CO, PR, PI, OA)")
    found = []
    for start in range(2, 20, 3):
        reason = segment.element(start)
        if not reason:
            if segment.element(start + 1):
                raise segment.fail(f"CAS{start + 1:02d} has an amount without a reason code in CAS{start:02d}")
            continue
        amount = parse_amount(segment, start + 1, f"amount of reason {quote(reason)}")
        found.append(Adjustment(group, reason, amount, parse_optional_amount(segment, start + 2, "quantity")))
    if not found:
        raise segment.fail("CAS has no reason code and amount")
    return found


def _claim(cursor: SegmentCursor, warnings: list[str]) -> ClaimPayment:
    clp = cursor.next()
    number = clp.element(1)
    if not number:
        raise clp.fail("CLP01 (our claim number) is missing")
    status = clp.element(2)
    if status not in CLAIM_STATUSES:
        raise clp.fail(f"CLP02 {quote(status)} is not a claim status code")
    charge = parse_amount(clp, 3, "claim charge")
    paid = parse_amount(clp, 4, "claim payment")
    patient_share = parse_optional_amount(clp, 5, "patient responsibility")
    adjustments: list[Adjustment] = []
    remarks: list[str] = []
    services: list[ServicePayment] = []
    patient_name: tuple[str, str] | None = None
    member_id = None
    received_on = None
    while (segment := cursor.peek()) is not None and segment.tag not in ("CLP", "PLB", "LX"):
        if segment.tag == "SVC":
            # A service loop runs to the next SVC, CLP, PLB or LX: nothing after it is claim-level.
            services.append(_service(cursor))
            continue
        cursor.next()
        if segment.tag == "CAS":
            adjustments += _adjustments(segment)
        elif segment.tag == "NM1" and segment.element(1) == "QC":
            patient_name = (segment.element(3), segment.element(4))
            member_id = segment.element(9) or member_id
        elif segment.tag == "NM1" and segment.element(1) == "IL":
            member_id = segment.element(9) or member_id
        elif segment.tag == "MOA":
            remarks += [code for code in segment.elements[2:7] if code]
        elif segment.tag == "MIA":
            remarks += [segment.element(i) for i in (5, 20, 21, 22, 23) if segment.element(i)]
        elif segment.tag == "DTM" and segment.element(1) == "050":
            received_on = parse_optional_date(segment, 2, "date received")
    claim = ClaimPayment(
        position=clp.position,
        patient_control_number=number,
        status_code=status,
        charge=charge,
        paid=paid,
        patient_responsibility=patient_share,
        filing_indicator=clp.element(6),
        payer_claim_number=clp.element(7) or None,
        place_of_service=clp.element(8) or None,
        frequency=clp.element(9) or None,
        patient_name=patient_name,
        member_id=member_id,
        adjustments=tuple(adjustments),
        remarks=tuple(remarks),
        services=tuple(services),
        received_on=received_on,
    )
    _check_claim_balance(clp, claim, warnings)
    return claim


def _service(cursor: SegmentCursor) -> ServicePayment:
    svc = cursor.next()
    procedure = svc.components(1)
    if len(procedure) < 2 or not procedure[0] or not procedure[1]:
        raise svc.fail("SVC01 must name the code as qualifier:code (AD:D0707)")
    charge = parse_amount(svc, 2, "line charge")
    paid = parse_amount(svc, 3, "line payment")
    submitted = svc.components(6)
    adjustments: list[Adjustment] = []
    remarks: list[str] = []
    control = None
    service_date = None
    allowed = None
    while (segment := cursor.peek()) is not None and segment.tag not in ("SVC", "CLP", "PLB", "LX"):
        cursor.next()
        if segment.tag == "CAS":
            adjustments += _adjustments(segment)
        elif segment.tag == "REF" and segment.element(1) == "6R":
            if control is not None:
                raise segment.fail("a service line carries one line item control number (REF*6R)")
            control = segment.element(2) or None
        elif segment.tag == "DTM" and segment.element(1) in ("472", "150"):
            service_date = parse_date(segment, 2, "service date")
        elif segment.tag == "AMT" and segment.element(1) == "B6":
            allowed = parse_amount(segment, 2, "allowed amount")
        elif segment.tag == "LQ" and segment.element(1) == "HE":
            if not segment.element(2):
                raise segment.fail("LQ*HE names no remark code")
            remarks.append(segment.element(2))
    service = ServicePayment(
        position=svc.position,
        qualifier=procedure[0],
        code=procedure[1],
        charge=charge,
        paid=paid,
        units=parse_optional_amount(svc, 5, "units paid"),
        submitted_code=submitted[1] if len(submitted) > 1 and submitted[1] else None,
        line_control_number=control,
        service_date=service_date,
        adjustments=tuple(adjustments),
        remarks=tuple(remarks),
        allowed=allowed,
    )
    adjusted = sum((a.amount for a in service.adjustments), ZERO)
    if service.charge - adjusted != service.paid:
        raise svc.fail(
            f"the line's charge {service.charge} less its adjustments {adjusted} is {service.charge - adjusted}, "
            f"but {service.paid} was paid"
        )
    return service


def _check_claim_balance(clp: Segment, claim: ClaimPayment, warnings: list[str]) -> None:
    all_adjustments = list(claim.adjustments) + [a for s in claim.services for a in s.adjustments]
    adjusted = sum((a.amount for a in all_adjustments), ZERO)
    if claim.charge - adjusted != claim.paid:
        raise clp.fail(
            f"the claim's charge {claim.charge} less its adjustments {adjusted} is {claim.charge - adjusted}, but "
            f"{claim.paid} was paid"
        )
    if claim.patient_responsibility is not None:
        owed = sum((a.amount for a in all_adjustments if a.group == "PR"), ZERO)
        if owed != claim.patient_responsibility:
            warnings.append(
                f"segment {clp.position} (CLP): the patient's share {claim.patient_responsibility} is not what the "
                f"patient-responsibility adjustments add up to ({owed})"
            )


def _provider_adjustments(plb: Segment) -> list[ProviderAdjustment]:
    provider = plb.element(1)
    if not provider:
        raise plb.fail("PLB01 (provider id) is missing")
    period = parse_date(plb, 2, "fiscal period date")
    found = []
    for start in range(3, 15, 2):
        if not plb.element(start):
            continue
        reason, *reference = plb.components(start)
        amount = parse_amount(plb, start + 1, f"amount of adjustment {quote(reason)}")
        found.append(ProviderAdjustment(provider, period, reason, reference[0] if reference else None, amount))
    if not found:
        raise plb.fail("PLB has no adjustment reason and amount")
    return found


# -- matching --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineMatch:
    service: ServicePayment
    line_number: int | None  # the claim line paid; None when no line could be told


@dataclass(frozen=True)
class ClaimMatch:
    payment: ClaimPayment
    claim_index: int  # position in the claims given to match_remittance
    lines: tuple[LineMatch, ...]

    @property
    def unmatched_services(self) -> tuple[ServicePayment, ...]:
        return tuple(line.service for line in self.lines if line.line_number is None)


@dataclass(frozen=True)
class RemittanceMatch:
    matched: tuple[ClaimMatch, ...]
    unmatched: tuple[ClaimPayment, ...]  # not ours, or ours no longer: nothing may be posted from them


def match_remittance(remittance: Remittance, claims: Sequence[Claim]) -> RemittanceMatch:
    """Pair each claim payment with one of ``claims`` (the posting practice's own) and each service with its line.

    A reversal and the corrected payment after it both match the claim they concern, in file order, so posting them
    in order leaves the claim with the corrected amounts.
    """
    matched: list[ClaimMatch] = []
    unmatched: list[ClaimPayment] = []
    for payment in remittance.claims:
        index = _claim_for(payment, remittance, claims)
        if index is None:
            unmatched.append(payment)
            continue
        matched.append(ClaimMatch(payment, index, _lines_for(payment, claims[index])))
    return RemittanceMatch(tuple(matched), tuple(unmatched))


def _claim_for(payment: ClaimPayment, remittance: Remittance, claims: Sequence[Claim]) -> int | None:
    controls = {service.line_control_number for service in payment.services if service.line_control_number}
    for index, claim in enumerate(claims):
        if claim_control_number(claim) != payment.patient_control_number:
            continue
        if remittance.payee_id_qualifier == "XX" and remittance.payee_id != claim.billing_organization.npi:
            continue  # paid to another practice
        ours = {line.control_number for line in claim.lines}
        if controls:
            if controls <= ours:
                return index
        elif abs(payment.charge) == claim.total:
            return index
    return None


def _lines_for(payment: ClaimPayment, claim: Claim) -> tuple[LineMatch, ...]:
    by_control = {line.control_number: line.number for line in claim.lines}
    taken: set[int] = set()
    found: list[LineMatch] = []
    for service in payment.services:
        number = by_control.get(service.line_control_number or "")
        if number is None:
            # No REF*6R: the one untaken line of the same code, date and charge, if there is exactly one.
            candidates = [
                line.number
                for line in claim.lines
                if line.number not in taken
                and line.code == service.billed_code
                and (service.service_date is None or line.date_of_service == service.service_date)
                and line.charge == abs(service.charge)
            ]
            number = candidates[0] if len(candidates) == 1 else None
        if number is not None and not payment.is_reversal:
            taken.add(number)
        found.append(LineMatch(service, number))
    return tuple(found)

