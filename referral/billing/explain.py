"""Claims as plain text for billing staff: each line with the rule behind it, then what a payer will object to.

Patients appear by id only: the text is meant for terminals and tickets, where names and birth dates do not belong.
For the same reason the claim's narrative is reported by its length only: staff may have typed anything into it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from referral.billing.catalogue import label
from referral.billing.model import Attachment, Claim, ClaimLine, ProviderFacts
from referral.billing.narrative import NARRATIVE_LIMIT
from referral.billing.profiles import ATTACHMENT_REPORT_TYPES, ATTACHMENT_TRANSMISSIONS

__all__ = ["explain"]

_WIDTH = 110
_FREQUENCIES = {"7": "replacement", "8": "void"}
_ROLES = {
    "capture": "capture claim (this practice took the images)",
    "interpretation": "reading claim (this practice read images taken elsewhere)",
    "single": "single claim (this practice took and read the images)",
}


def _header(what: int) -> str:
    return f"  {'#':>3}  {'code':<6} {'what':<{what}} {'tooth/area':<16} {'qty':>3} {'fee':>9} {'charge':>9}  date"


def _provider(provider: ProviderFacts) -> str:
    credentials = f", {provider.credentials}" if provider.credentials else ""
    return f"{provider.first_name} {provider.last_name}{credentials} (NPI {provider.npi})"


def _where(line: ClaimLine) -> str:
    teeth = list(dict.fromkeys(t for t in (line.tooth, *line.teeth) if t))
    if teeth:
        return ("tooth " if len(teeth) == 1 else "teeth ") + ",".join(teeth)
    return f"area {line.area}" if line.area else "-"


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _label(line: ClaimLine) -> str:
    return label(line.code) or "(not catalogued)"


def _line(line: ClaimLine, what: int) -> list[str]:
    row = (
        f"  {line.number:>3}  {line.code:<6} {_label(line):<{what}} "
        f"{_shorten(_where(line), 16):<16} {line.quantity:>3} {line.fee:>9.2f} {line.charge:>9.2f}  "
        f"{line.date_of_service}"
        + (f"  place {line.place_of_service}" if line.place_of_service else "")
    )
    why = textwrap.wrap(
        f"why: {line.explanation} [{line.rule}]",
        width=_WIDTH,
        initial_indent=" " * 7,
        subsequent_indent=" " * 12,
        break_on_hyphens=False,
    )
    images = [f"       images: {', '.join(line.image_ids)}"] if line.image_ids else []
    return [row, *why, *images]


def _attachment(attachment: Attachment) -> str:
    numbers = attachment.line_numbers
    lines = f"line{'s' if len(numbers) > 1 else ''} {', '.join(map(str, numbers))}" if numbers else "the whole claim"
    if not attachment.needs_control_number:
        number = "no number needed"
    elif attachment.control_number:
        number = f"package {attachment.control_number}"
    else:
        number = "package not made yet"
    what = ATTACHMENT_REPORT_TYPES.get(attachment.report_type, attachment.report_type)
    how = ATTACHMENT_TRANSMISSIONS.get(attachment.transmission, attachment.transmission)
    return f"attachment: {what} (PWK {attachment.report_type}) for {lines}; sent {how}; {number}"


def _claim(claim: Claim, index: int, count: int) -> list[str]:
    org = claim.billing_organization
    out = [
        f"Claim {index} of {count}: {_ROLES.get(claim.role, claim.role)}",
        f"  billing: {org.name} (NPI {org.npi})",
        f"  rendering: {_provider(claim.rendering_provider)}",
    ]
    if claim.referring_provider is not None:
        out.append(f"  referring: {_provider(claim.referring_provider)}")
    payer = f"{claim.coverage.payer_name} ({claim.coverage.payer_id})" if claim.coverage else "no coverage on file"
    out += [
        f"  referral {claim.referral_id}, patient {claim.patient.id}, payer {payer}, profile {claim.payer_profile}",
        f"  place of service {claim.place_of_service}, date of service {claim.date_of_service}, "
        f"status {claim.status.upper()}",
    ]
    if claim.frequency in _FREQUENCIES:
        out.append(
            f"  {_FREQUENCIES[claim.frequency]} of the payer's claim {claim.payer_claim_number or '(number missing)'}"
        )
    narrative = f"{len(claim.narrative)} of {NARRATIVE_LIMIT} characters" if claim.narrative else "none"
    out.append(f"  narrative: {narrative}")
    for attachment in claim.attachments:
        out += textwrap.wrap(
            _attachment(attachment),
            width=_WIDTH,
            initial_indent="  ",
            subsequent_indent=" " * 6,
            break_on_hyphens=False,
        )
    what = max((len(_label(line)) for line in claim.lines), default=4)
    header = _header(what)
    out += ["", header]
    for line in claim.lines:
        out += _line(line, what)
    # The total sits under the charge column, whose right edge is where the header's "charge" ends.
    out += [f"{'total':>{header.index('charge') - 4}} {claim.total:>9.2f}", ""]
    if not claim.edits:
        out.append("  edits: none")
    else:
        out.append("  edits:")
        for edit in claim.edits:
            where = f" (lines {', '.join(map(str, edit.line_numbers))})" if edit.line_numbers else ""
            out += textwrap.wrap(
                f"{edit.severity.upper()} {edit.rule}{where}: {edit.message}",
                width=_WIDTH,
                initial_indent="    ",
                subsequent_indent=" " * 8,
                break_on_hyphens=False,
            )
    return out


def explain(claims: Sequence[Claim]) -> str:
    """The claims of one referral as plain text, claim by claim and line by line."""
    if not claims:
        return (
            "No claims: nothing is billable yet (no reader assigned, the report is not signed, or no billable "
            "images).\n"
        )
    blocks = ["\n".join(_claim(claim, index, len(claims))) for index, claim in enumerate(claims, start=1)]
    return "\n\n".join(blocks) + "\n"
