"""Printable documents: the capturing office's capture note and the reader's interpretation report, built from
a case, and the claim summary for billing staff, as HTML and as PDF.

Nothing here looks at the HTTP request: callers check access and audit, then ask for a document.
"""

from referral.documents.claim import render_claim
from referral.documents.pdf import to_pdf
from referral.documents.render import render_capture_note, render_report

__all__ = ["render_capture_note", "render_claim", "render_report", "to_pdf"]
