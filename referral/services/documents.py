"""The capture note and the interpretation report, served to the people who may read the case."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from referral.documents import render_capture_note, render_report, to_pdf
from referral.errors import NotFound
from referral.services import access, audit
from referral.services.actor import Actor
from storage import Storage

HTML_CONTENT_TYPE = "text/html; charset=utf-8"
PDF_CONTENT_TYPE = "application/pdf"
NAMES = ("capture-note.html", "capture-note.pdf", "report.html", "report.pdf")


def read_document(session: Session, store: Storage, actor: Actor, referral_id: uuid.UUID,
                  name: str) -> tuple[bytes, str, str]:
    """(bytes, content type, file name) of one document of a case. Both sides of the case may read both
    documents, billing included (they are its claim documentation); anyone else gets 404."""
    if name not in NAMES:
        raise NotFound(f"No such document; documents are {', '.join(NAMES)}")
    stem, _, extension = name.rpartition(".")
    referral = access.get_referral(session, actor, referral_id)
    if stem == "report":
        # Billing and practice administrators see codes and text, never pictures (minimum necessary).
        html = render_report(session, store, referral,
                             include_previews=actor.role in access.IMAGE_VIEWER_ROLES)
    else:
        html = render_capture_note(session, store, referral)
    if extension == "pdf":
        # Laying out a PDF takes a while: the database connection goes back to the pool meanwhile.
        session.commit()
        body, content_type = to_pdf(html), PDF_CONTENT_TYPE
    else:
        body, content_type = html.encode("utf-8"), HTML_CONTENT_TYPE
    # Recorded once the document exists, so a refused or failed render is not logged as a disclosure.
    audit.record(session, actor, "document.read", object_type="referral", object_id=referral.id,
                 organization_id=referral.organization_id, referral_id=referral.id, details={"name": name})
    session.commit()
    return body, content_type, f"{stem}-{referral.id}.{extension}"
