"""Capture-only image intake.

The bytes arrive already spooled to a temporary file (hashed and counted while they streamed in).
Here they are checked, a JPEG preview and thumbnail are made from them, all three are written to
the object store, and only then is the row committed. If any step fails the objects already
written are deleted, so there is never a row without its objects nor an object without its row.
"""

from __future__ import annotations

import io
import logging
import re
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, BinaryIO

from sqlalchemy.orm import Session

from referral.db import new_id
from referral.errors import Conflict, NotFound, ServiceUnavailable, UnsupportedMediaType, ValidationFailed
from referral.imaging.dicom import DicomInfo
from referral.imaging.inspect import DamagedImage, Inspection, UnsupportedImageType, inspect_image
from referral.imaging.previews import render_previews
from referral.models import Image, Patient, Referral
from referral.models.enums import ImageKind, ReferralStatus
from referral.models.images import IntegrityProblem
from referral.observability import metrics
from referral.services import access, audit
from referral.services.actor import Actor
from storage import ObjectNotFound, Storage, StorageError, StorageUnavailable, StoredObject

log = logging.getLogger(__name__)

UPLOADABLE_STATUSES = (ReferralStatus.DRAFT, ReferralStatus.RETAKE_REQUESTED)
# Kinds that show teeth one by one and so must say which tooth or area they show.
_NEEDS_TOOTH_OR_AREA = (ImageKind.PERIAPICAL,)
# Siblings of the original's key, not children: the local store refuses a key that would make
# another key a directory.
PREVIEW_SUFFIX = ".preview.jpg"
THUMBNAIL_SUFFIX = ".thumb.jpg"
PREVIEW_CONTENT_TYPE = "image/jpeg"


@dataclass(frozen=True)
class Upload:
    """A complete, seekable upload with the digest computed while it streamed in."""

    stream: BinaryIO
    size: int
    sha256: str
    filename: str | None


def safe_filename(name: str | None) -> str | None:
    """The original name for display only: no directories, no control characters, bounded length."""
    if not name:
        return None
    base = re.split(r"[\\/]", name)[-1]
    cleaned = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    return cleaned[:255] or None


def _name_key(value: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", value).casefold() if ch.isalnum())


def _given_names_agree(a: str, b: str) -> bool:
    # "Jane" and "Janet" may both be written for one person; "Jane" and "Mary" may not.
    return a.startswith(b) or b.startswith(a)


def _check_patient_matches(dicom: DicomInfo, patient: Patient) -> None:
    """A DICOM header that names another patient means the wrong image is being attached."""
    mismatched: dict[str, list[str]] = {}
    family = _name_key(dicom.patient_family_name or "")
    given = _name_key((dicom.patient_given_name or "").split(" ")[0])
    family_differs = bool(family) and family != _name_key(patient.last_name)
    given_differs = bool(given) and not _given_names_agree(given, _name_key(patient.first_name))
    if family_differs or given_differs:
        mismatched["file"] = ["The DICOM patient name does not match the referral's patient."]
    birth: date | None = dicom.patient_birth_date
    if birth is not None and birth != patient.birth_date:
        mismatched.setdefault("file", []).append("The DICOM birth date does not match the referral's patient.")
    if mismatched:
        raise ValidationFailed(
            "This DICOM file belongs to a different patient than the referral; check the image was taken of "
            "this patient", mismatched,
        )


def _inspect(upload: Upload) -> Inspection:
    upload.stream.seek(0)
    try:
        return inspect_image(upload.stream, upload.size)
    except UnsupportedImageType as exc:
        raise UnsupportedMediaType(str(exc), {"file": [str(exc)]}) from None
    except DamagedImage as exc:
        raise ValidationFailed(str(exc), {"file": [str(exc)]}) from None
    finally:
        upload.stream.seek(0)


def _render_previews(upload: Upload, inspection: Inspection) -> tuple[bytes, bytes]:
    upload.stream.seek(0)
    try:
        return render_previews(upload.stream, inspection)
    except DamagedImage as exc:
        raise ValidationFailed(str(exc), {"file": [str(exc)]}) from None
    finally:
        upload.stream.seek(0)


def uploadable_referral(session: Session, actor: Actor, referral_id: uuid.UUID) -> Referral:
    """The referral, when this actor may add images to it now: someone capturing at the referring
    office, while the case is a draft or awaiting a retake."""
    # Whose referral it is comes first: to anyone outside the case it does not exist, whatever their role.
    referral = access.get_referral(session, actor, referral_id)
    access.require_referring_side(actor, referral)
    if referral.status not in UPLOADABLE_STATUSES:
        raise Conflict(f"Images can be added while the referral is a draft or awaiting a retake; it is "
                       f"{referral.status.value}")
    return referral


def check_fields_against_referral(session: Session, actor: Actor, referral: Referral,
                                  fields: dict[str, Any]) -> None:
    """The form's references (capturing provider, image retaken) must point into this case."""
    access.get_own_provider(session, access.membership(actor)[0], fields["captured_by_provider_id"],
                            "captured_by_provider_id")
    retake_of = fields.get("retake_of")
    if retake_of is not None:
        original = session.get(Image, retake_of)
        if original is None or original.referral_id != referral.id:
            raise ValidationFailed("retake_of must be an image of this referral",
                                   {"retake_of": ["Not an image of this referral."]})


def _validate_against_file(kind: ImageKind, fields: dict[str, Any], inspection: Inspection,
                           patient: Patient) -> None:
    dicom = inspection.dicom
    if dicom is not None:
        if kind.is_photo and dicom.is_radiograph:
            raise ValidationFailed(
                f"This file is a DICOM radiograph (modality {dicom.modality or 'unknown'}); file it as a "
                f"radiograph kind, not {kind.value}",
                {"kind": ["A radiograph cannot be filed as a photo."]},
            )
        _check_patient_matches(dicom, patient)
    if kind in _NEEDS_TOOTH_OR_AREA and not fields["teeth"] and not fields.get("area"):
        raise ValidationFailed(
            "A periapical must name the tooth or area it shows",
            {"teeth": ["Give teeth or area for a periapical."]},
        )


def intake_image(
    session: Session,
    store: Storage,
    actor: Actor,
    referral_id: uuid.UUID,
    fields: dict[str, Any],
    upload: Upload,
    *,
    before_commit: Callable[[Image], None] | None = None,
) -> Image:
    """Check and store one image of a referral. ``before_commit`` lets the caller add rows (an
    idempotency response) to the same transaction."""
    referral = uploadable_referral(session, actor, referral_id)
    check_fields_against_referral(session, actor, referral, fields)
    image_id = new_id()
    key = image_key(referral, image_id)

    def put_original(content_type: str) -> StoredObject:
        upload.stream.seek(0)
        return store.put(key, upload.stream, content_type=content_type, size=upload.size)

    return admit_image(session, store, actor, referral, fields, upload, image_id=image_id, key=key,
                       store_original=put_original, before_commit=before_commit)


def image_key(referral: Referral, image_id: uuid.UUID) -> str:
    """Where an image's original lives; its preview and thumbnail are siblings with suffixes."""
    return f"images/{referral.organization_id}/{referral.id}/{image_id}"


def admit_image(
    session: Session,
    store: Storage,
    actor: Actor,
    referral: Referral,
    fields: dict[str, Any],
    upload: Upload,
    *,
    image_id: uuid.UUID,
    key: str,
    store_original: Callable[[str], StoredObject],
    before_commit: Callable[[Image], None] | None = None,
) -> Image:
    """The checks every image passes, whichever way its bytes arrived: sniffed type, DICOM header
    against the patient and the form, previews drawn; then the original is stored under ``key`` by
    ``store_original`` (given the sniffed content type), the renditions beside it, and the row is
    committed. Objects written here are deleted on any failure; an original that ``store_original``
    did not write itself remains the caller's to delete."""
    inspection = _inspect(upload)
    kind = ImageKind(fields["kind"])
    dicom = inspection.dicom
    fields = dict(fields)
    if not fields.get("teeth") and dicom is not None and dicom.teeth:
        fields["teeth"] = list(dicom.teeth)
    fields.setdefault("teeth", [])
    _validate_against_file(kind, fields, inspection, referral.patient)
    # Made before anything is written: a file that cannot be drawn is refused without store traffic.
    preview, thumbnail = _render_previews(upload, inspection)

    preview_key, thumbnail_key = key + PREVIEW_SUFFIX, key + THUMBNAIL_SUFFIX
    written: list[str] = []
    try:
        stored = store_original(inspection.content_type)
        written.append(key)
        if stored.sha256 != upload.sha256 or stored.size != upload.size:
            log.error("stored object differs from the received upload; objects removed")
            raise ServiceUnavailable(
                "The image store did not keep the bytes intact; nothing was stored. Try again.")
        for rendition_key, rendition in ((preview_key, preview), (thumbnail_key, thumbnail)):
            store.put(rendition_key, io.BytesIO(rendition), content_type=PREVIEW_CONTENT_TYPE, size=len(rendition))
            written.append(rendition_key)

        image = Image(
            id=image_id,
            referral_id=referral.id,
            organization_id=referral.organization_id,
            kind=kind,
            teeth=fields["teeth"],
            area=fields.get("area"),
            reason=fields["reason"],
            captured_at=fields["captured_at"],
            captured_by_provider_id=fields["captured_by_provider_id"],
            capture_only=True,
            retake_of_id=fields.get("retake_of"),
            retake_reason=fields.get("retake_reason"),
            exposure_kvp=fields.get("exposure_kvp") if fields.get("exposure_kvp") is not None
            else (dicom.kvp if dicom else None),
            exposure_ma=fields.get("exposure_ma") if fields.get("exposure_ma") is not None
            else (dicom.tube_current_ma if dicom else None),
            exposure_time_ms=fields.get("exposure_time_ms") if fields.get("exposure_time_ms") is not None
            else (dicom.exposure_time_ms if dicom else None),
            file_format=inspection.format.value,
            content_type=inspection.content_type,
            size=stored.size,
            sha256=stored.sha256,
            storage_backend=store.backend,
            storage_key=key,
            preview_key=preview_key,
            thumbnail_key=thumbnail_key,
            original_filename=safe_filename(upload.filename),
            width=inspection.width,
            height=inspection.height,
            dicom=dicom.to_record_dict() if dicom else None,
            uploaded_by_user_id=access.membership(actor)[1],
        )
        session.add(image)
        session.flush()
        audit.record(session, actor, "image.create", object_type="image", object_id=image.id,
                     organization_id=image.organization_id, referral_id=referral.id,
                     details={"kind": kind.value, "size": stored.size, "sha256": stored.sha256})
        if before_commit is not None:
            before_commit(image)
        session.commit()
    except BaseException:
        session.rollback()
        for written_key in reversed(written):
            _delete_quietly(store, written_key)
        raise
    metrics.record_image_upload(image.size)
    return image


def _delete_quietly(store: Storage, key: str) -> None:
    try:
        store.delete(key)
    except (StorageError, StorageUnavailable):
        # The integrity check finds and removes objects without rows.
        log.error("could not remove object after a failed intake; it is left for the orphan sweep")


def read_image(session: Session, actor: Actor, image_id: uuid.UUID) -> Image:
    """One image's metadata (no pixels). Audited like every other read of a case."""
    image = access.get_image(session, actor, image_id)
    audit.record(session, actor, "image.read", object_type="image", object_id=image.id,
                 organization_id=image.organization_id, referral_id=image.referral_id)
    session.commit()
    return image


def list_images(session: Session, actor: Actor, referral_id: uuid.UUID) -> list[Image]:
    referral = access.get_referral(session, actor, referral_id)
    audit.record(session, actor, "image.list", object_type="referral", object_id=referral.id,
                 organization_id=referral.organization_id, referral_id=referral.id,
                 details={"count": len(referral.images)})
    session.commit()
    return list(referral.images)


def _require_intact(image: Image) -> None:
    """An original the storage check found missing or altered is not served: 503, with the reason."""
    if image.integrity_problem == IntegrityProblem.MISSING:
        raise ServiceUnavailable(
            "This image's stored file is missing from the image store; its record is intact, and the file can "
            "be served again once an operator restores it", {"integrity": [image.integrity_problem]})
    if image.integrity_problem is not None:
        raise ServiceUnavailable(
            "This image's stored file no longer matches the SHA-256 recorded when it was uploaded, so it is not "
            "served; an operator must restore it", {"integrity": [image.integrity_problem]})


def _open_stored(store: Storage, image: Image, key: str) -> BinaryIO:
    try:
        return store.open(key)
    except ObjectNotFound:
        # Lost since the last storage check: the same answer as for a flagged image, not a 500.
        log.error("image %s has a row but the store has no object under one of its keys", image.id)
        raise ServiceUnavailable(
            "This image's stored file is missing from the image store; its record is intact, and the file can "
            "be served again once an operator restores it",
            {"integrity": [IntegrityProblem.MISSING.value]}) from None


def open_image(session: Session, store: Storage, actor: Actor, image_id: uuid.UUID) -> tuple[Image, BinaryIO]:
    """The stored bytes of one image, for someone allowed to see pictures. Audited."""
    image = access.get_image(session, actor, image_id)
    access.require_role(actor, *access.IMAGE_VIEWER_ROLES)
    access.require_stored(image)
    _require_intact(image)
    stream = _open_stored(store, image, image.storage_key)
    audit.record(session, actor, "image.download", object_type="image", object_id=image.id,
                 organization_id=image.organization_id, referral_id=image.referral_id)
    session.commit()
    return image, stream


def open_preview(session: Session, store: Storage, actor: Actor, image_id: uuid.UUID) -> tuple[Image, BinaryIO]:
    """The JPEG preview of one image, for someone allowed to see pictures. Audited."""
    return _open_rendition(session, store, actor, image_id, "preview")


def open_thumbnail(session: Session, store: Storage, actor: Actor, image_id: uuid.UUID) -> tuple[Image, BinaryIO]:
    """The JPEG thumbnail of one image, for someone allowed to see pictures. Audited."""
    return _open_rendition(session, store, actor, image_id, "thumbnail")


def _open_rendition(session: Session, store: Storage, actor: Actor, image_id: uuid.UUID,
                    rendition: str) -> tuple[Image, BinaryIO]:
    image = access.get_image(session, actor, image_id)
    access.require_role(actor, *access.IMAGE_VIEWER_ROLES)
    access.require_stored(image)
    key = image.preview_key if rendition == "preview" else image.thumbnail_key
    if key is None:
        # Only images stored before previews were introduced lack them.
        raise NotFound(f"This image has no {rendition}")
    stream = _open_stored(store, image, key)
    audit.record(session, actor, f"image.{rendition}", object_type="image", object_id=image.id,
                 organization_id=image.organization_id, referral_id=image.referral_id)
    session.commit()
    return image, stream


def image_url(session: Session, store: Storage, actor: Actor, image_id: uuid.UUID) -> tuple[Image, str | None]:
    """A short-lived URL for the bytes, where the store can issue one. Audited at issuance, because
    the download itself will not pass through this server."""
    image = access.get_image(session, actor, image_id)
    access.require_role(actor, *access.IMAGE_VIEWER_ROLES)
    access.require_stored(image)
    _require_intact(image)
    url = store.url(image.storage_key, expires_in=300, filename=download_name(image),
                    content_type=image.content_type)
    if url is not None:
        audit.record(session, actor, "image.download", object_type="image", object_id=image.id,
                     organization_id=image.organization_id, referral_id=image.referral_id,
                     details={"via": "presigned_url", "expires_in": 300})
        session.commit()
    return image, url


_EXTENSIONS = {"dicom": "dcm", "jpeg": "jpg", "png": "png", "tiff": "tif"}


def download_name(image: Image) -> str:
    """A server-made name: never the uploaded filename, which could carry anything."""
    return f"image-{image.id}.{_EXTENSIONS.get(image.file_format, 'bin')}"
