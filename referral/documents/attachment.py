"""A claim's attachment package: a cover page naming the control number the 837D's PWK carries, the capturing
office's capture note, the reader's signed report, and one page block per billed image, each labelled with the
patient, the day it was taken and its teeth, so that a payer's reviewer can match every picture to a claim line.

The parts are separate HTML documents laid out one after another into a single PDF (pdf.to_pdf_pages), so the
note and the report look exactly as they do when printed on their own.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from referral.billing import model as bm
from referral.billing.catalogue import label
from referral.billing.profiles import ATTACHMENT_REPORT_TYPES, ATTACHMENT_TRANSMISSIONS
from referral.documents.render import (
    KIND_LABELS,
    preview_data_uri,
    render_capture_note,
    render_report,
    render_template,
    site_label,
    utc_time,
)
from referral.models import Claim, Image, Referral
from referral.models.reports import ReportStatus
from storage import Storage

__all__ = ["billed_images", "render_attachment_package"]


def billed_images(referral: Referral, claim: Claim) -> list[tuple[Image, list[str]]]:
    """The claim's billed images in the order taken, each with the claim lines ("line 2, D0391") it supports."""
    supports: dict[str, list[str]] = {}
    for line in claim.lines:
        for image_id in line.image_ids or ():
            supports.setdefault(str(image_id), []).append(f"line {line.number}, {line.code}")
    images = [image for image in referral.images if str(image.id) in supports]
    images.sort(key=lambda image: (image.captured_at, image.id))
    return [(image, supports[str(image.id)]) for image in images]


def _cover(row: Claim, model: bm.Claim, control_number: str, parts: Sequence[str], image_count: int,
           generated_at: datetime) -> str:
    patient = model.patient
    coverage = model.coverage
    documentation = [
        {"type": attachment.report_type,
         "meaning": ATTACHMENT_REPORT_TYPES.get(attachment.report_type, attachment.report_type),
         "how": ATTACHMENT_TRANSMISSIONS.get(attachment.transmission, attachment.transmission),
         "lines": ", ".join(map(str, attachment.line_numbers)) or "whole claim"}
        for attachment in model.attachments
    ]
    return render_template(
        "attachment_cover.html",
        control_number=control_number,
        claim={"id": str(row.id), "referral_id": str(row.referral_id), "frequency": row.frequency,
               "date_of_service": row.date_of_service.isoformat(), "generation": row.generation},
        patient={"name": f"{patient.first_name} {patient.last_name}", "birth_date": patient.birth_date.isoformat()},
        coverage=None if coverage is None else {"payer_name": coverage.payer_name, "member_id": coverage.member_id},
        billing={"name": model.billing_organization.name, "npi": model.billing_organization.npi},
        lines=[{"number": line.number, "code": line.code, "label": label(line.code) or "not in the code catalogue",
                "date": line.date_of_service.isoformat(),
                "teeth": ", ".join(f"#{tooth}" for tooth in dict.fromkeys(t for t in (line.tooth, *line.teeth) if t))
                or "-"}
               for line in model.lines],
        documentation=documentation,
        parts=parts,
        image_count=image_count,
        generated_at=utc_time(generated_at, seconds=True),
    )


def _image_pages(store: Storage, model: bm.Claim, control_number: str,
                 images: list[tuple[Image, list[str]]]) -> str:
    patient = model.patient
    rows = []
    for number, (image, supports) in enumerate(images, start=1):
        rows.append({
            "number": number,
            "id": str(image.id),
            "kind": KIND_LABELS.get(image.kind, image.kind.value),
            "site": site_label(image.teeth, image.area),
            "taken_on": image.captured_at.date().isoformat(),
            "supports": "; ".join(supports),
            # A deleted image's preview went with its other objects.
            "preview": None if image.is_deleted else preview_data_uri(store, image),
        })
    return render_template("attachment_images.html", control_number=control_number, images=rows,
                           patient={"name": f"{patient.first_name} {patient.last_name}",
                                    "birth_date": patient.birth_date.isoformat()})


def render_attachment_package(session: Session, store: Storage, row: Claim, model: bm.Claim, referral: Referral,
                              control_number: str, *, generated_at: datetime) -> list[str]:
    """The package as HTML documents in print order: cover, capture note, signed report (when there is one) and
    the billed images."""
    report = referral.interpretation
    signed = report is not None and report.status == ReportStatus.SIGNED
    images = billed_images(referral, row)
    parts = ["Capture note from the office that took the images"]
    if signed:
        parts.append("Signed interpretation report")
    parts.append(f"Billed images ({len(images)}), each labelled with patient, date and tooth")
    documents = [_cover(row, model, control_number, parts, len(images), generated_at),
                 render_capture_note(session, store, referral)]
    if signed:
        # The pictures are on the image pages, labelled for the payer; the report keeps its text.
        documents.append(render_report(session, store, referral, include_previews=False,
                                       withheld_note="The image is on the labelled image pages of this package."))
    documents.append(_image_pages(store, model, control_number, images))
    return documents


def package_file_name(claim_id: uuid.UUID, control_number: str) -> str:
    return f"attachment-{control_number}-{claim_id}.pdf"
