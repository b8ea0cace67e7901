"""What a payer's adjustment codes mean for a dental billing clerk, and what to do next.

An 835 explains every amount it did not pay with a group code (who carries it), a claim adjustment reason code
(CARC, why) and, often, remittance advice remark codes (RARC, more detail). The code numbers are X12's; every
meaning and next step here is our own short wording for a clerk, not the official text (the master lists are at
x12.org/codes). The selection is what a practice billing diagnostic imaging and teledentistry meets
(claims-lifecycle.md §4); an unknown code still gets an answer: read it on the master list and decide.

Each code leads to one action:

========================  =====================================================================================
none                      a contract term: write off what the contract says, nothing to chase
bill_patient              the patient's share (deductible, coinsurance, copay)
send_attachment           documentation needed: send the claim's attachment package
review_history            bundling, frequency or duplicate: review the patient's claim history
fix_field                 missing or wrong information: correct the named field and send a replacement
resubmit                  unprocessable: correct it and send a new original claim
check_coverage            not a benefit of the patient's plan
check_provider            the provider's enrollment or credentialing
other_payer               another payer goes first or is the right one
appeal                    only an appeal with the narrative and documentation can change it
review                    the code alone does not say: read the remarks and the payer's letter
========================  =====================================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "ACTIONS",
    "CARC",
    "GROUP_CODES",
    "RARC",
    "Advice",
    "CodeAdvice",
    "advise",
    "carc",
    "rarc",
]

ACTIONS: dict[str, str] = {
    "none": "nothing to chase: write off the amount as the contract says",
    "bill_patient": "bill the patient for this amount",
    "send_attachment": "send the claim's attachment package (images, capture note, signed report) and ask the "
    "payer to reprocess the line",
    "review_history": "review the patient's claim history for the same, bundled or duplicate service, then correct "
    "or appeal with the reason this service was billable on its own",
    "fix_field": "correct the field and send a replacement claim (frequency 7) with the payer's claim number",
    "resubmit": "correct the claim and send it again as a new original claim (frequency 1)",
    "check_coverage": "check the patient's plan benefits for this service; if the plan does not cover it, the group "
    "code says whether the patient may be billed",
    "check_provider": "check the provider's enrollment and credentialing with this payer, and that the right "
    "rendering provider is on the claim",
    "other_payer": "send the claim to the payer that is responsible first (coordination of benefits)",
    "appeal": "appeal with the narrative and the documentation that show the service was needed and billable",
    "review": "read the remark codes and the payer's letter, then decide",
}

# Claim adjustment group codes of 5010 (CR was retired before 5010).
GROUP_CODES: dict[str, str] = {
    "CO": "contractual: the practice absorbs it and may not bill the patient",
    "PR": "patient responsibility: the patient owes it",
    "PI": "payer's own reduction without a contract term: the patient may not be billed; question it if it looks "
    "wrong",
    "OA": "other adjustment: neither a contract term nor the patient's share",
}


@dataclass(frozen=True)
class CodeAdvice:
    code: str
    meaning: str  # our own words
    action: str  # a key of ACTIONS
    field: str | None = None  # for fix_field: what to correct

    @property
    def next_step(self) -> str:
        step = ACTIONS[self.action]
        if self.action == "fix_field" and self.field:
            return f"correct the {self.field} and send a replacement claim (frequency 7) with the payer's claim number"
        return step


def _table(*rows: CodeAdvice) -> dict[str, CodeAdvice]:
    return {row.code: row for row in rows}


CARC: dict[str, CodeAdvice] = _table(
    # The patient's share.
    CodeAdvice("1", "applied to the patient's deductible", "bill_patient"),
    CodeAdvice("2", "the patient's coinsurance share", "bill_patient"),
    CodeAdvice("3", "the patient's copay", "bill_patient"),
    # Contract terms.
    CodeAdvice("45", "above the fee the payer allows for this code", "none"),
    CodeAdvice("131", "a discount negotiated for this claim", "none"),
    CodeAdvice("253", "the federal sequestration cut", "none"),
    CodeAdvice("23", "what an earlier payer already paid or adjusted", "none"),
    # Documentation.
    CodeAdvice("163", "the attachment the claim announced was never received", "send_attachment"),
    CodeAdvice("164", "the attachment arrived too late", "send_attachment"),
    CodeAdvice("250", "the document received was not the one needed", "send_attachment"),
    CodeAdvice("251", "the document received was incomplete", "send_attachment"),
    CodeAdvice("252", "a document (images, report or notes) is needed to pay this", "send_attachment"),
    # Missing or wrong information.
    CodeAdvice("16", "information is missing or wrong on the claim; the remark code says which", "fix_field",
               "information the remark code names"),
    CodeAdvice("17", "information the payer asked for was not sent or was incomplete", "fix_field",
               "information the payer asked for"),
    CodeAdvice("125", "a submission or billing error; the remark code says which", "fix_field",
               "information the remark code names"),
    CodeAdvice("4", "the modifier is missing or does not fit the code", "fix_field", "procedure modifier"),
    CodeAdvice("181", "the code was not valid on the date of service", "fix_field", "procedure code or service date"),
    CodeAdvice("31", "the payer cannot find the patient among its members", "fix_field",
               "member id, subscriber and patient's relationship"),
    CodeAdvice("140", "the member id and the patient's name do not match the payer's records", "fix_field",
               "member id and patient name"),
    CodeAdvice("206", "the NPI is missing", "fix_field", "billing or rendering NPI"),
    CodeAdvice("207", "the NPI is not a valid number", "fix_field", "billing or rendering NPI"),
    CodeAdvice("208", "the NPI does not match the payer's provider records", "check_provider"),
    # Bundling, frequency, duplicates.
    CodeAdvice("18", "a duplicate of a claim or line the payer already has", "review_history"),
    CodeAdvice("97", "paid as part of another service already processed (bundled)", "review_history"),
    CodeAdvice("119", "the benefit maximum for the period has been reached", "review_history"),
    CodeAdvice("151", "the payer finds this many services, or this often, not supported", "review_history"),
    CodeAdvice("231", "cannot be paid with the other procedure done the same day", "review_history"),
    CodeAdvice("234", "not paid on its own", "review_history"),
    CodeAdvice("236", "does not go with another procedure of the same day", "review_history"),
    CodeAdvice("261", "does not fit the patient's history", "review_history"),
    CodeAdvice("B5", "the plan's coverage rules (often how often) were not met or were exceeded", "review_history"),
    CodeAdvice("B13", "already paid on an earlier payment", "review_history"),
    CodeAdvice("B15", "needs a qualifying service that has not been billed or paid", "review_history"),
    CodeAdvice("B20", "another provider performed part or all of it", "review_history"),
    # Coverage.
    CodeAdvice("96", "not covered; the remark code says why", "check_coverage"),
    CodeAdvice("204", "not covered by the patient's current plan", "check_coverage"),
    CodeAdvice("49", "not covered because it is routine or goes with a routine exam", "check_coverage"),
    CodeAdvice("26", "the service came before the coverage began", "check_coverage"),
    CodeAdvice("27", "the service came after the coverage ended", "check_coverage"),
    CodeAdvice("35", "the lifetime maximum has been reached", "check_coverage"),
    CodeAdvice("22", "another payer may have to pay first", "other_payer"),
    CodeAdvice("109", "not this payer's claim; it belongs to another payer", "other_payer"),
    # The provider.
    CodeAdvice("B7", "the provider was not eligible to be paid for this on this date", "check_provider"),
    CodeAdvice("170", "not paid when this type of provider does or bills it", "check_provider"),
    CodeAdvice("185", "the rendering provider may not perform this service", "check_provider"),
    CodeAdvice("242", "not done by a provider of the plan's network", "check_provider"),
    # Only an appeal helps.
    CodeAdvice("29", "the time limit for filing has passed", "appeal"),
    CodeAdvice("50", "the payer does not find it medically necessary", "appeal"),
    CodeAdvice("A1", "denied; the remark code gives the reason", "review"),
)

RARC: dict[str, CodeAdvice] = _table(
    CodeAdvice("N29", "documentation is missing", "send_attachment"),
    CodeAdvice("M127", "the patient record is missing", "send_attachment"),
    CodeAdvice("N435", "over the frequency limit and not supported", "review_history"),
    CodeAdvice("N640", "the frequency limit was exceeded", "review_history"),
    CodeAdvice("M86", "a similar service was already paid in this period", "review_history"),
    CodeAdvice("M80", "not covered in the same session as another processed service", "review_history"),
    CodeAdvice("M15", "its components were paid as one bundled service", "review_history"),
    CodeAdvice("N19", "incidental to the main procedure", "review_history"),
    CodeAdvice("N20", "not paid together with a service of the same day", "review_history"),
    CodeAdvice("N130", "see the plan's terms", "check_coverage"),
    CodeAdvice("N381", "see the contract with the payer", "check_coverage"),
    CodeAdvice("N425", "excluded by law", "check_coverage"),
    CodeAdvice("N95", "this type of provider may not bill this service", "check_provider"),
    CodeAdvice("N37", "the tooth number is missing or not valid", "fix_field", "tooth number"),
    CodeAdvice("N39", "the tooth number does not fit the procedure code", "fix_field", "tooth number"),
    CodeAdvice("N290", "the rendering provider's id is missing or not valid", "fix_field", "rendering provider NPI"),
    CodeAdvice("MA130", "the claim cannot be processed as sent; a new claim is needed", "resubmit"),
)

# Reasons that only point at their remark codes: a remark with an action of its own says more.
_DEFERS_TO_REMARKS = frozenset({"16", "17", "125", "A1", "96", "B5"})


def carc(code: str) -> CodeAdvice:
    return CARC.get(code) or CodeAdvice(code, f"reason code {code} (look it up on the X12 list)", "review")


def rarc(code: str) -> CodeAdvice:
    return RARC.get(code) or CodeAdvice(code, f"remark code {code} (look it up on the X12 list)", "review")


@dataclass(frozen=True)
class Advice:
    """One adjustment explained: what it means, what to do, and the field to fix when information was missing."""

    group: str
    reason: str
    remarks: tuple[str, ...]
    explanation: str
    action: str
    next_step: str
    field: str | None = None

    @property
    def is_problem(self) -> bool:
        """Whether a clerk has something to do beyond writing off a contract term or billing the patient's share."""
        return self.action not in ("none", "bill_patient")


def advise(group: str, reason: str, remarks: Sequence[str] = ()) -> Advice:
    """What the adjustment ``group``/``reason`` (with the line's or claim's ``remarks``) means and what to do."""
    base = carc(reason)
    notes = [rarc(code) for code in remarks]
    chosen = base
    if base.code in _DEFERS_TO_REMARKS or base.action == "review":
        specific = [note for note in notes if note.action != "review"]
        if specific:
            chosen = specific[0]
    action, field = chosen.action, chosen.field
    if group == "PR" and action in ("none", "check_coverage"):
        # The payer put it on the patient: a fee above the allowance, or a service the plan does not cover.
        action, field = "bill_patient", None
    elif group in ("CO", "PI") and action == "bill_patient":
        action = "review"  # a patient's share the payer says the practice must carry: read before billing anyone
    who = GROUP_CODES.get(group, f"group {group}")
    parts = [f"{who}; {base.meaning}"]
    parts += [f"remark {note.code}: {note.meaning}" for note in notes]
    step = (
        CodeAdvice(chosen.code, chosen.meaning, action, field).next_step
        if action == chosen.action
        else ACTIONS[action]
    )
    return Advice(group, reason, tuple(remarks), "; ".join(parts), action, step, field)
