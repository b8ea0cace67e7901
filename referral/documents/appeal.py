"""The letter that opens an appeal packet: it names the claim, the payer's denial of each line and why the service
was billable, and lists the documentation that follows it in the same PDF (the claim's attachment package)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from referral.billing import model as bm
from referral.billing.catalogue import label
from referral.documents.render import postal_lines, render_template, utc_time
from referral.models import Claim

_ROLES = {
    "capture": "This practice took the images and did not read them; a remote dentist read them and signed the "
    "report that follows. The capture-only codes bill the taking of the images alone.",
    "interpretation": "This practice's dentist read images taken at another practice and signed the report that "
    "follows; the reading is billed once, by the dentist who read, and the taking of the images by the practice "
    "that took them.",
    "single": "This practice took the images and read them; the signed report follows.",
}


def render_appeal_letter(row: Claim, model: bm.Claim, denied: list[dict[str, Any]], *, control_number: str,
                         claim_number: str, image_count: int, organization_phone: str | None,
                         written_at: datetime) -> str:
    org = model.billing_organization
    coverage = model.coverage
    for item in denied:
        item["label"] = label(item["code"]) or "not in the code catalogue"
    return render_template(
        "appeal_letter.html",
        written_on=written_at.date().isoformat(),
        written_at=utc_time(written_at),
        practice={"name": org.name, "npi": org.npi, "phone": organization_phone,
                  "address": postal_lines(org.address.line1, org.address.line2, org.address.city,
                                          org.address.state, org.address.zip)},
        payer={"name": coverage.payer_name if coverage else row.payer_name or "the payer",
               "member_id": coverage.member_id if coverage else "not on file"},
        patient={"name": f"{model.patient.first_name} {model.patient.last_name}",
                 "birth_date": model.patient.birth_date.isoformat()},
        claim={"id": str(row.id), "number": claim_number, "date_of_service": row.date_of_service.isoformat(),
               "payer_claim_number": row.payer_claim_number or "not on file", "total": f"${row.total:,.2f}"},
        rendering=f"{model.rendering_provider.first_name} {model.rendering_provider.last_name}"
        + (f", {model.rendering_provider.credentials}" if model.rendering_provider.credentials else "")
        + f", NPI {model.rendering_provider.npi}",
        role=_ROLES.get(row.role, ""),
        narrative=model.narrative or row.narrative or "",
        denied=denied,
        control_number=control_number,
        image_count=image_count,
    )
