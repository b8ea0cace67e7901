"""The scanned teledentistry consent form kept with a referral (PDF, JPEG, PNG or TIFF)."""

from __future__ import annotations

import logging
import uuid
from datetime import date, datetime
from typing import BinaryIO

from sqlalchemy.orm import Session

from referral import unit_of_work
from referral.db import new_id
from referral.errors import Conflict, NotFound, UnsupportedMediaType, ValidationFailed
from referral.imaging import DamagedImage, UnsupportedImageType
from referral.imaging.inspect import inspect_image
from referral.imaging.sniff import ImageFormat
from referral.models import Patient, Referral
from referral.models.enums import ConsentGivenBy, ReferralStatus
from referral.services import access, audit
from referral.services.actor import Actor
from referral.services.intake import Upload, put_object
from storage import Storage, StorageError

log = logging.getLogger(__name__)

_PDF_MAGIC = b"%PDF-"
_PDF_END = b"%%EOF"
_FINAL = (ReferralStatus.REPORTED, ReferralStatus.CLOSED, ReferralStatus.CANCELLED)
# Below this age a parent or legal guardian consents for the patient (docs/api.md, "Consent of a minor").
AGE_OF_CONSENT = 18


def age_on(birth_date: date, day: date) -> int:
    """Whole years of age on ``day``."""
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def check_giver(patient: Patient, given_by: str, given_at: datetime) -> None:
    """A patient under 18 on the day consent was given cannot give it themselves: a guardian does.

    No exception is made for a state's minor-consent statutes or for emancipation: the product does not know
    them per practice, and a guardian's consent is valid in every state, so the stricter rule is kept."""
    if ConsentGivenBy(given_by) != ConsentGivenBy.PATIENT:
        return
    age = age_on(patient.birth_date, given_at.date())
    if age < AGE_OF_CONSENT:
        years = "year" if age == 1 else "years"
        raise ValidationFailed(
            f"The patient was {age} {years} old when consent was given; a patient under {AGE_OF_CONSENT} cannot "
            "consent alone, so record the consent as given by the parent or legal guardian",
            {"consent": {"given_by": [f"A patient under {AGE_OF_CONSENT} needs a parent or guardian to consent."]}},
        )


def _content_type(upload: Upload) -> str:
    stream = upload.stream
    stream.seek(0)
    head = stream.read(len(_PDF_MAGIC))
    stream.seek(0)
    if upload.size == 0:
        raise ValidationFailed("the file is empty", {"file": ["The file is empty."]})
    if head == _PDF_MAGIC:
        # A PDF ends with %%EOF (allowing trailing whitespace); without it the scan was cut off.
        stream.seek(max(0, upload.size - 1024))
        tail = stream.read()
        stream.seek(0)
        if _PDF_END not in tail:
            raise ValidationFailed("the PDF is truncated", {"file": ["The PDF is truncated."]})
        return "application/pdf"
    try:
        inspection = inspect_image(stream, upload.size)
    except UnsupportedImageType:
        raise UnsupportedMediaType("A consent form must be a PDF, JPEG, PNG or TIFF scan",
                                   {"file": ["Unsupported file type."]}) from None
    except DamagedImage as exc:
        raise ValidationFailed(str(exc), {"file": [str(exc)]}) from None
    if inspection.format in (ImageFormat.WEBP, ImageFormat.HEIC):
        raise UnsupportedMediaType("A consent form must be a PDF, JPEG, PNG or TIFF scan",
                                   {"file": ["Unsupported file type."]})
    if inspection.format == ImageFormat.DICOM:
        raise UnsupportedMediaType("A consent form must be a PDF, JPEG, PNG or TIFF scan, not a DICOM image",
                                   {"file": ["Unsupported file type."]})
    return inspection.content_type


def store_form(session: Session, store: Storage, actor: Actor, referral_id: uuid.UUID,
               upload: Upload) -> Referral:
    referral = access.get_referral(session, actor, referral_id)
    access.require_referring_side(actor, referral)
    if referral.status in _FINAL:
        raise Conflict(f"Consent cannot be changed on a referral that is {referral.status.value}")
    content_type = _content_type(upload)
    key = f"consent/{referral.organization_id}/{referral.id}/{new_id()}"
    put_object(session, store, key, upload.stream, content_type=content_type, size=upload.size,
               sha256=upload.sha256)
    replaced = referral.consent_form_key
    referral.consent_form_key = key
    referral.consent_form_content_type = content_type
    audit.record(session, actor, "referral.consent_form", object_type="referral", object_id=referral.id,
                 organization_id=referral.organization_id, referral_id=referral.id,
                 details={"content_type": content_type, "size": upload.size})
    if replaced:
        unit_of_work.after_commit(session, lambda: _delete_replaced(store, replaced),
                                  describe="remove a replaced consent form")
    session.commit()
    return referral


def _delete_replaced(store: Storage, key: str) -> None:
    try:
        store.delete(key)
    except StorageError:
        log.warning("a replaced consent form could not be removed; the orphan sweep will find it")


def open_form(session: Session, store: Storage, actor: Actor, referral_id: uuid.UUID
              ) -> tuple[Referral, BinaryIO]:
    referral = access.get_referral(session, actor, referral_id)
    if referral.consent_form_key is None:
        raise NotFound("No consent form is on file for this referral")
    stream = store.open(referral.consent_form_key)
    audit.record(session, actor, "referral.consent_form_download", object_type="referral", object_id=referral.id,
                 organization_id=referral.organization_id, referral_id=referral.id)
    session.commit()
    return referral, stream
