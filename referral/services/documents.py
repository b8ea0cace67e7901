"""The capture note and the interpretation report, served to the people who may read the case, and the claim
summary, served to the billing staff who may export the claim."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from referral.db import utcnow
from referral.documents import render_capture_note, render_claim, render_report, to_pdf
from referral.documents.attachment import package_file_name, render_attachment_package
from referral.documents.pdf import to_pdf_pages
from referral.errors import NotFound
from referral.models import Referral
from referral.services import access, audit, claim_attachments, claims
from referral.services.actor import Actor
from storage import Storage

HTML_CONTENT_TYPE = "text/html; charset=utf-8"
PDF_CONTENT_TYPE = "application/pdf"
NAMES = ("capture-note.html", "capture-note.pdf", "report.html", "report.pdf")
CLAIM_FORMATS = ("pdf", "html")


def _encode(html: str, extension: str) -> tuple[bytes, str]:
    if extension == "pdf":
        return to_pdf(html), PDF_CONTENT_TYPE
    return html.encode("utf-8"), HTML_CONTENT_TYPE


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
    # Laying out a PDF takes a while: the read ends here, so no database connection is held meanwhile.
    session.commit()
    body, content_type = _encode(html, extension)
    # Recorded once the document exists, so a refused or failed render is not logged as a disclosure.
    audit.record(session, actor, "document.read", object_type="referral", object_id=referral.id,
                 organization_id=referral.organization_id, referral_id=referral.id, details={"name": name})
    session.commit()
    return body, content_type, f"{stem}-{referral.id}.{extension}"


def read_claim_document(session: Session, actor: Actor, claim_id: uuid.UUID,
                        extension: str) -> tuple[bytes, str, str]:
    """(bytes, content type, file name) of a claim's printable summary.

    The page carries the patient, the coverage and the charges and is made to leave the practice, so it is
    an export like the 837D: billing staff only, with a claim_exports row and a ``claim.export_<format>``
    audit row, both written once the document exists.
    """
    if extension not in CLAIM_FORMATS:
        raise NotFound(f"No such claim document; formats are {', '.join(CLAIM_FORMATS)}")
    claim = claims.exportable(session, actor, claim_id)
    html = render_claim(claim, claims.claim_model(session, claim), generated_at=utcnow())
    session.commit()  # no connection is held while the document is laid out
    body, content_type = _encode(html, extension)
    claims.record_export(session, actor, claim, extension)
    session.commit()
    return body, content_type, f"claim-{claim.id}.{extension}"


@dataclass(frozen=True)
class AttachmentPackage:
    body: bytes
    control_number: str
    filename: str


def read_attachment_package(session: Session, store: Storage, actor: Actor,
                            claim_id: uuid.UUID) -> AttachmentPackage:
    """A claim's attachment package as one PDF, under the control number its 837D's PWK names.

    It shows the patient, the case's documents and the billed images and is made to go to the payer, so it is a
    PHI export like the 837D: billing staff of the claim's practice only (anyone else: 404, or 403 for the
    practice's other members), with a claim_exports row and a ``claim.export_attachment`` audit row written
    once the document exists. The control number is kept (numbered on first use) so a later 837D names it.
    """
    claim = claims.exportable(session, actor, claim_id)
    model = claims.claim_model(session, claim)  # 409 when the patient's record was deleted
    referral = session.get(Referral, claim.referral_id)
    if referral is None:
        raise NotFound("Referral not found")
    model = claim_attachments.with_package(session, actor, claim, model)
    package = claim_attachments.ensure_package(session, actor, claim)
    control_number = package.control_number
    documents = render_attachment_package(session, store, claim, model, referral, control_number,
                                          generated_at=utcnow())
    session.commit()  # the number is kept; no connection is held while the PDF is laid out
    body = to_pdf_pages(documents)
    claims.record_export(session, actor, claim, "attachment")
    session.commit()
    return AttachmentPackage(body=body, control_number=control_number,
                             filename=package_file_name(claim.id, control_number))
