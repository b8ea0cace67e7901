"""A claim as a page a billing clerk can file, or send to a payer with an attachment.

Names, addresses and payer details were typed by people and reach the page through the same autoescaping
templates as the clinical documents. Codes are labelled in the catalogue's own words, never the ADA's descriptors.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from referral.billing import model as bm
from referral.billing.catalogue import label
from referral.dental import AREAS
from referral.documents.render import postal_lines, render_template, utc_time
from referral.models import Claim
from referral.validation import CAPTURE_PLACES_OF_SERVICE

_ROLES = {
    "capture": "image capture only (this practice took the images; another practice read them)",
    "interpretation": "reading (this practice read images taken at another practice)",
    "single": "images taken and read by this practice",
}
_STATUS_MEANINGS = {
    "ready": "ready to submit",
    "hold": "held: resolve the hold edits below before submitting",
}
_PLACES = {"02": "telehealth, patient not at home", "10": "telehealth, patient at home", **CAPTURE_PLACES_OF_SERVICE}
_FREQUENCIES = {"1": "original claim", "7": "replaces an earlier claim", "8": "voids an earlier claim"}


def masked_tax_id(tax_id: str) -> str:
    """The employer identification number with all but its last four digits hidden."""
    digits = "".join(ch for ch in tax_id if ch.isdigit())
    return f"**-***{digits[-4:]}" if len(digits) >= 4 else "not recorded"


def _money(amount: Decimal) -> str:
    return f"${amount:,.2f}"


def _coded(code: str, meanings: dict[str, str]) -> str:
    meaning = meanings.get(code)
    return f"{code} ({meaning})" if meaning else code


def _site(line: bm.ClaimLine) -> str:
    parts = []
    teeth = list(dict.fromkeys(tooth for tooth in (line.tooth, *line.teeth) if tooth))
    if teeth:
        parts.append(("Tooth " if len(teeth) == 1 else "Teeth ") + ", ".join(f"#{tooth}" for tooth in teeth))
    if line.surfaces:
        parts.append(f"surfaces {line.surfaces}")
    if line.area:
        parts.append(f"area {line.area} ({AREAS.get(line.area, 'unknown area')})")
    return "; ".join(parts) or "-"


def _provider_name(provider: bm.ProviderFacts) -> str:
    name = f"{provider.first_name} {provider.last_name}"
    return f"{name}, {provider.credentials}" if provider.credentials else name


def _line(line: bm.ClaimLine, claim_date: date) -> dict[str, object]:
    return {
        "number": line.number,
        "code": line.code,
        "label": label(line.code) or "not in the code catalogue",
        "site": _site(line),
        "quantity": line.quantity,
        "fee": _money(line.fee),
        "charge": _money(line.charge),
        "explanation": line.explanation,
        "rule": line.rule,
        # Printed only when it differs from the claim's, which is the usual case for every line.
        "date_of_service": line.date_of_service.isoformat() if line.date_of_service != claim_date else None,
    }


def render_claim(row: Claim, claim: bm.Claim, *, generated_at: datetime) -> str:
    """The stored claim ``row`` (status, generation, total) with its facts ``claim`` as one HTML page."""
    org = claim.billing_organization
    address = org.address
    coverage = claim.coverage
    context = {
        "claim": {
            "id": str(row.id),
            "referral_id": str(row.referral_id),
            "role": _ROLES.get(row.role, row.role),
            "status": row.status,
            "status_meaning": _STATUS_MEANINGS.get(row.status, "see the edits below"),
            "generation": row.generation,
            "frequency": _coded(row.frequency, _FREQUENCIES),
            "place_of_service": _coded(row.place_of_service, _PLACES),
            "date_of_service": row.date_of_service.isoformat(),
            "payer_profile": row.payer_profile,
            "total": _money(Decimal(row.total)),
        },
        "billing": {
            "name": org.name,
            "npi": org.npi,
            "tax_id": masked_tax_id(org.tax_id),
            "address": postal_lines(address.line1, address.line2, address.city, address.state, address.zip),
            "phone": row.billing_organization.phone,
        },
        "rendering": {"name": _provider_name(claim.rendering_provider), "npi": claim.rendering_provider.npi,
                      "taxonomy": claim.rendering_provider.taxonomy},
        "referring": None if claim.referring_provider is None else {
            "name": _provider_name(claim.referring_provider), "npi": claim.referring_provider.npi},
        "patient": {"name": f"{claim.patient.first_name} {claim.patient.last_name}",
                    "birth_date": claim.patient.birth_date.isoformat()},
        "coverage": None if coverage is None else {
            "payer_name": coverage.payer_name, "payer_id": coverage.payer_id, "member_id": coverage.member_id,
            "group_number": coverage.group_number},
        "lines": [_line(line, row.date_of_service) for line in claim.lines],
        "edits": [{"severity": edit.severity, "rule": edit.rule, "message": edit.message,
                   "lines": ", ".join(map(str, edit.line_numbers)) or "whole claim"} for edit in claim.edits],
        "generated_at": utc_time(generated_at, seconds=True),
    }
    return render_template("claim.html", **context)
