"""The capture note and the interpretation report as HTML.

Every value reaches the page through Jinja's autoescaping: names, reasons, findings and DICOM header text
are written by people or by capture software and may hold markup. Nothing here marks such text safe.
"""

from __future__ import annotations

import base64
import logging
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy.orm import Session

from referral.dental import AREAS
from referral.errors import NotFound
from referral.models import Image, Organization, Provider, Referral, Report
from referral.models.enums import ImageKind, ReferralStatus
from referral.models.reports import ReportStatus
from storage import Storage, StorageError

log = logging.getLogger(__name__)

_environment = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    # A misspelt field must fail the render, not print an empty line on a signed clinical document.
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

KIND_LABELS = {
    ImageKind.PERIAPICAL: "Periapical radiograph",
    ImageKind.BITEWING: "Bitewing radiograph",
    ImageKind.OCCLUSAL: "Occlusal radiograph",
    ImageKind.PANORAMIC: "Panoramic radiograph",
    ImageKind.CEPHALOMETRIC: "Cephalometric radiograph",
    ImageKind.EXTRAORAL_POSTERIOR: "Extraoral posterior radiograph",
    ImageKind.COMPLETE_SERIES: "Complete series of radiographs",
    ImageKind.PHOTO_INTRAORAL: "Intraoral photograph",
    ImageKind.PHOTO_EXTRAORAL: "Extraoral photograph",
}

FINDING_LABELS = (
    ("crown", "Crown"),
    ("roots", "Root(s)"),
    ("pdl_space", "PDL space"),
    ("lamina_dura", "Lamina dura"),
    ("periapical_area", "Periapical area"),
    ("bone_levels", "Bone levels"),
    ("other", "Other"),
)
_QUALITY_LABELS = {"adequate": "Diagnostic quality", "limited": "Limited diagnostic quality",
                   "nondiagnostic": "Not of diagnostic quality"}

# Previews are small server-made JPEGs; anything bigger than this is not one and would bloat the document.
MAX_PREVIEW_BYTES = 2 * 1024 * 1024
_JPEG_MAGIC = b"\xff\xd8\xff"
# States in which the case has gone to a reader at least once, so the note can say to whom.
_SENT = (ReferralStatus.ROUTED, ReferralStatus.ACCEPTED, ReferralStatus.RETAKE_REQUESTED,
         ReferralStatus.REPORTED, ReferralStatus.CLOSED, ReferralStatus.CANCELLED)


def render_template(name: str, **context: Any) -> str:
    """One of the document templates, every value autoescaped."""
    return _environment.get_template(name).render(**context)


def utc_time(value: datetime | None, *, seconds: bool = False) -> str:
    if value is None:
        return "not recorded"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


def _date(value: date) -> str:
    return value.isoformat()


def site_label(teeth: list[str], area: str | None) -> str:
    parts = []
    if teeth:
        label = "Tooth" if len(teeth) == 1 else "Teeth"
        parts.append(f"{label} " + ", ".join(f"#{tooth}" for tooth in teeth))
    if area:
        parts.append(f"Area {area} ({AREAS.get(area, 'unknown area')})")
    return "; ".join(parts) or "not recorded"


def _exposure(image: Image) -> str:
    parts = []
    if image.exposure_kvp is not None:
        parts.append(f"{image.exposure_kvp:g} kVp")
    if image.exposure_ma is not None:
        parts.append(f"{image.exposure_ma:g} mA")
    if image.exposure_time_ms is not None:
        parts.append(f"{image.exposure_time_ms:g} ms")
    return ", ".join(parts) or "not recorded"


def _person_name(value: str | None) -> str | None:
    """A DICOM person name (family^given^middle^prefix^suffix, then optional ideographic forms after "=")
    in reading order."""
    if not value:
        return None
    family, given, middle, prefix, suffix = (value.split("=")[0].split("^") + [""] * 5)[:5]
    return " ".join(part for part in (prefix, given, middle, family, suffix) if part.strip()) or value


def postal_lines(line1: str, line2: str | None, city: str, state: str, zip_code: str) -> list[str]:
    """A US postal address as printed lines, a nine-digit ZIP as ZIP+4."""
    postcode = f"{zip_code[:5]}-{zip_code[5:]}" if len(zip_code) == 9 else zip_code
    lines = [line1]
    if line2:
        lines.append(line2)
    lines.append(f"{city}, {state} {postcode}")
    return lines


def _address(org: Organization) -> list[str]:
    return postal_lines(org.address_line1, org.address_line2, org.city, org.state, org.zip)


def _practice(org: Organization | None) -> dict[str, Any]:
    if org is None:
        return {"name": "unknown practice", "address": [], "npi": "not recorded", "phone": None}
    return {"name": org.name, "address": _address(org), "npi": org.npi, "phone": org.phone}


def _provider(session: Session, provider_id: uuid.UUID | None) -> dict[str, Any] | None:
    provider = session.get(Provider, provider_id) if provider_id is not None else None
    if provider is None:
        return None
    org = session.get(Organization, provider.organization_id)
    return {"name": provider.display_name, "npi": provider.npi, "practice": _practice(org)}


def _patient(referral: Referral) -> dict[str, str]:
    patient = referral.patient
    if patient.is_deleted:
        return {"name": "not on file (patient record deleted)", "birth_date": "not on file (patient record deleted)"}
    return {"name": f"{patient.first_name} {patient.last_name}", "birth_date": _date(patient.birth_date)}


def _images(referral: Referral) -> list[Image]:
    return sorted(referral.images, key=lambda image: (image.captured_at, image.id))


def _sent_to_reader_at(referral: Referral) -> datetime | None:
    """When the case reached the reader it is assigned to: a submit routed to them, or a decline by
    someone else that passed it on to them."""
    reader = referral.assigned_provider_id
    if reader is None:
        return None
    for event in referral.events:
        routed_here = event.action == "submit" and event.to_status == ReferralStatus.ROUTED.value \
            and event.provider_id == reader
        passed_on = event.action == "decline" and (event.details or {}).get("routed_to") == str(reader)
        if routed_here or passed_on:
            return event.at
    return referral.submitted_at


def render_capture_note(session: Session, store: Storage, referral: Referral) -> str:
    """The capturing office's chart note for its capture-only claim lines (D0707, D0708, D0703...)."""
    del store  # the note shows no pictures; the parameter keeps both renderers interchangeable
    images = _images(referral)
    numbers = {image.id: index for index, image in enumerate(images, start=1)}
    rows = []
    for image in images:
        captured_by = session.get(Provider, image.captured_by_provider_id)
        retake = None
        if image.retake_of_id is not None:
            retake = {"number": numbers.get(image.retake_of_id), "id": str(image.retake_of_id),
                      "reason": image.retake_reason or "not recorded"}
        rows.append({
            "number": numbers[image.id],
            "id": str(image.id),
            "captured_at": utc_time(image.captured_at),
            "captured_by": captured_by.display_name if captured_by else "not recorded",
            "operator": _person_name((image.dicom or {}).get("operators_name")),
            "kind": KIND_LABELS.get(image.kind, image.kind.value),
            "site": site_label(image.teeth, image.area),
            "reason": image.reason,
            "exposure": _exposure(image),
            "retake": retake,
            "sha256": image.sha256,
        })
    reader = None
    if referral.status in _SENT and referral.assigned_provider_id is not None:
        reader = _provider(session, referral.assigned_provider_id)
        if reader is not None:
            reader["sent_at"] = utc_time(_sent_to_reader_at(referral))
    consent = referral.consent
    context = {
        "practice": _practice(session.get(Organization, referral.organization_id)),
        "patient": _patient(referral),
        "referral": {"id": str(referral.id), "reason": referral.reason,
                     "teeth": site_label(referral.teeth, None), "status": referral.status.value},
        "referring": _provider(session, referral.referring_provider_id),
        "images": rows,
        "reader": reader,
        "consent": None if consent is None else {
            "given_by": referral.consent_given_by.value if referral.consent_given_by else "not recorded",
            "method": referral.consent_method.value if referral.consent_method else "not recorded",
            "given_at": utc_time(referral.consent_given_at),
            "form_on_file": "yes" if referral.consent_form_key else "no",
        },
    }
    return render_template("capture_note.html", **context)


def preview_data_uri(store: Storage, image: Any) -> str | None:
    """The image's JPEG preview inline, or None when it has none or it cannot be read.

    Previews are made by another part of the server and may not exist for older images, so their absence
    is ordinary and the report is printed without the picture.
    """
    key = getattr(image, "preview_key", None)
    if not key:
        return None
    try:
        body = store.open(key)
        try:
            data = body.read(MAX_PREVIEW_BYTES + 1)
        finally:
            body.close()
    except StorageError:
        log.warning("an image preview could not be read; the report is printed without it")
        return None
    if len(data) > MAX_PREVIEW_BYTES or not data.startswith(_JPEG_MAGIC):
        log.warning("an image preview is not a small JPEG; the report is printed without it")
        return None
    return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")


_QUESTION_WORDS = {"diagnosis": "a diagnosis", "treatment_plan": "a treatment plan", "restorability": "restorability"}
_DECIDER_WORDS = {"referring_dentist": "the referring dentist decides restorability, with the reader's advice",
                  "reader": "the reader decides restorability"}


def _question(referral: Referral) -> str | None:
    """What the referring dentist asked, in words (None when the referral asked nothing in particular)."""
    asks = [_QUESTION_WORDS.get(ask, ask.replace("_", " ")) for ask in (referral.questions or [])]
    if not asks:
        return None
    text = "Asked for " + (", ".join(asks[:-1]) + " and " + asks[-1] if len(asks) > 1 else asks[0])
    decider = _DECIDER_WORDS.get(referral.restorability_decided_by or "")
    return f"{text}; {decider}." if decider else f"{text}."


def signed_report(referral: Referral) -> Report:
    report = referral.interpretation
    if report is None or report.status != ReportStatus.SIGNED:
        raise NotFound("No signed report")
    return report


def render_report(session: Session, store: Storage, referral: Referral, *, include_previews: bool = True,
                  withheld_note: str = "Preview not included for your role.") -> str:
    """The reader's signed interpretation. ``include_previews`` is off for people who may not see pictures, and
    ``withheld_note`` then says why each picture is missing."""
    report = signed_report(referral)
    findings = {finding["image_id"]: finding for finding in report.findings}
    rows = []
    for number, image in enumerate(_images(referral), start=1):
        finding = findings.get(str(image.id))
        rows.append({
            "number": number,
            "id": str(image.id),
            "kind": KIND_LABELS.get(image.kind, image.kind.value),
            "site": site_label(image.teeth, image.area),
            "captured_at": utc_time(image.captured_at),
            # A deleted image's preview is gone with its other objects.
            "preview": preview_data_uri(store, image) if include_previews and not image.is_deleted else None,
            "previews_withheld": not include_previews,
            "withheld_note": withheld_note,
            # Only what the reader wrote: a field left empty is left out, not printed as missing.
            "findings": None if finding is None else [
                (label, finding[key]) for key, label in FINDING_LABELS if finding.get(key)
            ],
            "quality": None if finding is None or not finding.get("diagnostic_quality") else _QUALITY_LABELS.get(
                finding["diagnostic_quality"], finding["diagnostic_quality"]),
        })
    reader = _provider(session, report.reader_provider_id)
    addenda = []
    for addendum in report.addenda:
        by = _provider(session, addendum.provider_id)
        addenda.append({"text": addendum.text, "signed_at": utc_time(addendum.signed_at, seconds=True),
                        "by": by["name"] if by else "not recorded", "npi": by["npi"] if by else "not recorded",
                        "sha256": addendum.content_sha256})
    context = {
        "patient": _patient(referral),
        "referral": {"id": str(referral.id), "reason": referral.reason, "teeth": site_label(referral.teeth, None)},
        "referring_practice": _practice(session.get(Organization, referral.organization_id)),
        "referring": _provider(session, referral.referring_provider_id),
        "reader": reader,
        "images": rows,
        "impression": report.impression or None,
        "recommendation": report.recommendation or None,
        "question": _question(referral),
        "answer": report.answer or None,
        "evaluation_performed": "Yes" if report.evaluation_performed else "No",
        "signature": {"at": utc_time(report.signed_at, seconds=True), "sha256": report.content_sha256 or ""},
        "addenda": addenda,
    }
    return render_template("report.html", **context)
