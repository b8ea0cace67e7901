"""Where a held claim's missing fact is fixed: each export hold names a kind of fact (billing.edits.EXPORT_RULES),
and the claim page links it to the page that changes that fact."""

from __future__ import annotations

from typing import Any

from flask import current_app, request, url_for
from werkzeug.routing import BuildError

from referral.billing.edits import EXPORT_RULES

# The pages that change a practice's own facts, by the endpoint they are registered under. A practice without
# such a page (or a person whose role cannot open it) is told who changes the fact instead.
_PRACTICE_PAGES = {
    "fee_schedule": ("web.practice_admin", "fees", "Open the fee schedule",
                     "A practice administrator or the billing office sets fees in the practice's fee schedule."),
    "practice": ("web.practice_admin", "practice", "Open the practice's details",
                 "A practice administrator changes the practice's details."),
    "provider": ("web.practice_admin", "providers", "Open the providers",
                 "A practice administrator changes the provider's details."),
}


def _page_url(endpoint: str, section: str, organization_id: Any) -> str | None:
    if endpoint not in current_app.view_functions:
        return None
    for arguments in ({}, {"organization_id": organization_id}):
        try:
            return url_for(endpoint, _anchor=section, **arguments)
        except BuildError:
            continue
    return None


def fix_links(claim: Any, referral: Any, *, can_set_up: bool = False) -> dict[str, dict[str, str | None]]:
    """For each export hold of ``claim``: the link (or None) and the words shown beside the message."""
    links: dict[str, dict[str, str | None]] = {}
    for edit in claim.edits:
        kind = EXPORT_RULES.get(edit.rule)
        if kind is None:
            continue
        if kind == "patient":
            if referral is None or referral.organization_id != claim.billing_organization_id:
                # The reader's practice bills from the referring practice's record: it asks them to fix it.
                links[edit.rule] = {"url": None, "text": "The referring practice corrects the patient's details."}
            else:
                links[edit.rule] = {"url": url_for("web.patient_edit", patient_id=referral.patient_id,
                                                   next=request.path),
                                    "text": "Correct the patient's details"}
            continue
        endpoint, section, text, fallback = _PRACTICE_PAGES[kind]
        # The set-up page is for the practice's admins (and platform admins); others are told who fixes it.
        url = _page_url(endpoint, section, claim.billing_organization_id) if can_set_up else None
        links[edit.rule] = {"url": url, "text": text if url else fallback}
    return links
