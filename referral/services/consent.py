"""The scanned teledentistry consent form kept with a referral (PDF, JPEG, PNG or TIFF)."""

from __future__ import annotations

import logging
import uuid
from typing import BinaryIO

from sqlalchemy.orm import Session

from referral.db import new_id
from referral.errors import Conflict, NotFound, UnsupportedMediaType, ValidationFailed
from referral.imaging import DamagedImage, UnsupportedImageType
from referral.imaging.inspect import inspect_image
from referral.imaging.sniff import ImageFormat
from referral.models import Referral
from referral.models.enums import ReferralStatus
from referral.services import access, audit
from referral.services.actor import Actor
from referral.services.intake import Upload
from storage import Storage, StorageError

log = logging.getLogger(__name__)

_PDF_MAGIC = b"%PDF-"
_PDF_END = b"%%EOF"
_FINAL = (ReferralStatus.REPORTED, ReferralStatus.CLOSED, ReferralStatus.CANCELLED)


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
    upload.stream.seek(0)
    store.put(key, upload.stream, content_type=content_type, size=upload.size)
    replaced = referral.consent_form_key
    try:
        referral.consent_form_key = key
        referral.consent_form_content_type = content_type
        audit.record(session, actor, "referral.consent_form", object_type="referral", object_id=referral.id,
                     organization_id=referral.organization_id, referral_id=referral.id,
                     details={"content_type": content_type, "size": upload.size})
        session.commit()
    except BaseException:
        session.rollback()
        store.delete(key)
        raise
    if replaced:
        try:
            store.delete(replaced)
        except StorageError:
            log.warning("a replaced consent form could not be removed; the orphan sweep will find it")
    return referral


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
