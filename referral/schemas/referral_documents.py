"""The hot reads' answers built by hand: the same dictionaries ``ReferralDetailSchema`` and ``ImageSchema`` dump,
written field by field.

marshmallow spends most of an audited case read's CPU walking ~30 fields per image through generic field objects
(and building a fresh ``ExposureSchema`` for every image); this module does the same conversions directly. The
schemas stay the documented contract (OpenAPI is generated from them); tests/api/test_read_contract.py dumps
cases with 0, 2 and 100 images through both and requires identical JSON, so a field added to a schema and not
here fails there. Conversions follow marshmallow's: UUIDs and strings as ``str``, date-times and dates as
``isoformat()``, enums by value, ``None`` kept as ``None``.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any

from referral.models import Image, Patient, Referral, ReferralEvent
from referral.models.images import PREVIEW_PENDING
from referral.schemas.images import _PUBLIC_DICOM_FIELDS
from referral.services.referrals import is_overdue


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _when(value: datetime | date | None) -> str | None:
    return None if value is None else value.isoformat()


def _enum(value: Enum | None) -> Any:
    return None if value is None else value.value


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


class _Loaded:
    """An ORM object's loaded column values read straight from its ``__dict__`` (what SQLAlchemy's attribute
    descriptors return for a loaded attribute, at a fraction of the cost; ~35 reads per image add up on a case of
    100), falling back to the attribute for anything not loaded."""

    __slots__ = ("_obj", "_values")

    def __init__(self, obj: Any) -> None:
        self._obj = obj
        self._values = obj.__dict__

    def __getattr__(self, name: str) -> Any:
        values = self._values
        return values[name] if name in values else getattr(self._obj, name)


def image_document(image: Image) -> dict[str, Any]:
    """``ImageSchema().dump(image)``."""
    # A stand-in row of the one-statement read (services/case_reads.py) holds plain attributes already.
    row = _Loaded(image) if isinstance(image, Image) else image
    deleted = row.deleted_at is not None
    image_id = str(row.id)
    dicom = row.dicom
    renditions = not deleted and (row.preview_key is not None or row.preview_state == PREVIEW_PENDING)
    return {
        "id": image_id,
        "referral_id": _str(row.referral_id),
        "kind": _enum(row.kind),
        "teeth": list(row.teeth or []),
        "area": _str(row.area),
        "reason": _str(row.reason),
        "captured_at": _when(row.captured_at),
        "captured_by_provider_id": _str(row.captured_by_provider_id),
        "captured_by_confirmed": _bool(row.captured_by_confirmed),
        "capture_notes": image.capture_notes,
        "quality_warnings": list(row.quality_warnings or []),
        "sent_at": _when(row.sent_at),
        "capture_only": _bool(row.capture_only),
        "retake_of": _str(row.retake_of_id),
        "retake_reason": _str(row.retake_reason),
        "exposure": {"kvp": _float(row.exposure_kvp), "ma": _float(row.exposure_ma),
                     "time_ms": _float(row.exposure_time_ms)},
        "file_format": _str(row.file_format),
        "content_type": _str(row.content_type),
        "size": _int(row.size),
        "sha256": _str(row.sha256),
        "original_filename": _str(row.original_filename),
        "width": _int(row.width),
        "height": _int(row.height),
        "dicom": {key: dicom[key] for key in _PUBLIC_DICOM_FIELDS if dicom.get(key) is not None} if dicom else None,
        "preview_status": image.preview_status,
        "content_url": None if deleted else f"/api/v1/images/{image_id}/content",
        "preview_url": f"/api/v1/images/{image_id}/preview" if renditions else None,
        "thumbnail_url": f"/api/v1/images/{image_id}/thumbnail" if renditions else None,
        "created_at": _when(row.created_at),
        "deleted_at": _when(row.deleted_at),
        "deleted_reason": _str(row.deleted_reason),
        "integrity_problem": _str(row.integrity_problem),
        "integrity_problem_since": _when(row.integrity_problem_since),
    }


def _patient_summary(patient: Patient) -> dict[str, Any]:
    """``PatientSummarySchema().dump(patient)``: no coverage; no identity once the record is deleted."""
    deleted = patient.deleted_at is not None
    address = patient.address
    return {
        "id": _str(patient.id),
        "first_name": None if deleted else _str(patient.first_name),
        "last_name": None if deleted else _str(patient.last_name),
        "birth_date": None if deleted else _when(patient.birth_date),
        "sex": _enum(patient.sex),
        "state": _str(patient.state),
        "address": None if address is None else dict(address),
        "deleted_at": _when(patient.deleted_at),
    }


def _event(event: ReferralEvent) -> dict[str, Any]:
    return {
        "id": _str(event.id),
        "at": _when(event.at),
        "action": _str(event.action),
        "from_status": _str(event.from_status),
        "to_status": _str(event.to_status),
        "actor_user_id": _str(event.actor_user_id),
        "provider_id": _str(event.provider_id),
        "reason": _str(event.reason),
    }


def _report_state(referral: Referral) -> dict[str, Any]:
    report = referral.interpretation
    if report is None:
        return {"status": "none"}
    return {"status": _str(report.status.value), "signed_at": _when(report.signed_at)}


def _consent(referral: Referral) -> dict[str, Any] | None:
    if referral.consent_given_by is None:
        return None
    return {
        "given_by": _str(referral.consent_given_by.value),
        "method": _str(_enum(referral.consent_method)),
        "given_at": _when(referral.consent_given_at),
        "form_on_file": referral.consent_form_key is not None,
    }


def referral_detail(referral: Referral, *, images: Any = None) -> dict[str, Any]:
    """``ReferralDetailSchema().dump(referral)``, with its patient, images, events and report loaded; ``images``,
    when given, stands in for the images' documents (``MarkupSafeJSONProvider.response_with_text``)."""
    return {
        "id": _str(referral.id),
        "status": _enum(referral.status),
        "organization_id": _str(referral.organization_id),
        "patient_id": _str(referral.patient_id),
        "accession_number": _str(referral.accession_number),
        "study_instance_uid": _str(referral.study_instance_uid),
        "referring_provider_id": _str(referral.referring_provider_id),
        "specialty": _enum(referral.specialty),
        "reason": _str(referral.reason),
        "reason_code": _str(referral.reason_code),
        "teeth": list(referral.teeth or []),
        "urgency": _enum(referral.urgency),
        "due_at": _when(referral.due_at),
        "mode": _enum(referral.mode),
        "scope": _enum(referral.scope),
        "question": {"asks": [str(ask) for ask in referral.questions or []],
                     "restorability_decided_by": _str(referral.restorability_decided_by),
                     "scope": _str(_enum(referral.scope))},
        "place_of_service": _str(referral.place_of_service),
        "target_provider_id": _str(referral.target_provider_id),
        "assigned_provider_id": _str(referral.assigned_provider_id),
        "consent": _consent(referral),
        "submitted_at": _when(referral.submitted_at),
        "accepted_at": _when(referral.accepted_at),
        "overdue": is_overdue(referral),
        "created_at": _when(referral.created_at),
        "updated_at": _when(referral.updated_at),
        "patient": _patient_summary(referral.patient),
        "images": [image_document(image) for image in referral.images] if images is None else images,
        "events": [_event(event) for event in referral.events],
        "report": _report_state(referral),
    }
