"""Capture-only image intake.

The bytes arrive already spooled to a temporary file (hashed and counted while they streamed in).
``admit`` checks them and draws a JPEG preview and thumbnail; ``file_image`` writes the renditions beside
the stored original and adds the row. Every object is written for the current transaction
(``referral.unit_of_work``): if it does not commit, the objects are deleted, so there is never a row without
its objects nor an object without its row. ``intake_image`` is the upload through the API; direct-to-storage
uploads (``direct_uploads``) go through the same two steps.
"""

from __future__ import annotations

import io
import logging
import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, BinaryIO, cast

import sqlalchemy as sa
from PIL.Image import Image as PILImage
from sqlalchemy.orm import Session, joinedload

from referral import timezones, unit_of_work
from referral.db import new_id
from referral.errors import Conflict, NotFound, ServiceUnavailable, UnsupportedMediaType, ValidationFailed
from referral.imaging import quality
from referral.imaging.dicom import DicomInfo, name_groups, names_person
from referral.imaging.inspect import DamagedImage, Inspection, UnsupportedImageType, inspect_image
from referral.imaging.previews import render_previews, render_previews_if_free
from referral.models import IdempotencyRecord, Image, Patient, Provider, Referral
from referral.models.enums import ImageKind, ReferralStatus
from referral.models.images import PREVIEW_FAILED, PREVIEW_PENDING, IntegrityProblem
from referral.observability import metrics
from referral.services import access, audit, case_reads, clock, idempotency, renditions
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


def _name_group_differs(family_name: str | None, given_name: str | None, patient: Patient) -> bool:
    family = _name_key(family_name or "")
    given = _name_key((given_name or "").split(" ")[0])
    family_differs = bool(family) and family != _name_key(patient.last_name)
    given_differs = bool(given) and not _given_names_agree(given, _name_key(patient.first_name))
    return family_differs or given_differs


def check_patient_matches(dicom: DicomInfo, patient: Patient) -> None:
    """A DICOM header that names another patient means the wrong image is being attached. A name may be
    written in several forms (alphabetic, ideographic, phonetic): it names another patient only when no
    form agrees with the referral's patient."""
    mismatched: dict[str, list[str]] = {}
    groups = name_groups(dicom.patient_name) or [(dicom.patient_family_name, dicom.patient_given_name)]
    if all(_name_group_differs(family, given, patient) for family, given in groups):
        mismatched["file"] = ["The DICOM patient name does not match the referral's patient."]
    birth: date | None = dicom.patient_birth_date
    if birth is not None and birth != patient.birth_date:
        mismatched.setdefault("file", []).append("The DICOM birth date does not match the referral's patient.")
    if mismatched:
        raise ValidationFailed(
            "This DICOM file belongs to a different patient than the referral; check the image was taken of "
            "this patient", mismatched,
        )


def inspect_upload(upload: Upload) -> Inspection:
    upload.stream.seek(0)
    try:
        return inspect_image(upload.stream, upload.size)
    except UnsupportedImageType as exc:
        raise UnsupportedMediaType(str(exc), {"file": [str(exc)]}) from None
    except DamagedImage as exc:
        raise ValidationFailed(str(exc), {"file": [str(exc)]}) from None
    finally:
        upload.stream.seek(0)


def _render_previews(session: Session, upload: Upload, inspection: Inspection, kind: ImageKind, *,
                     later: bool = False) -> tuple[bytes | None, bytes | None, list[dict[str, str]] | None]:
    """The preview, the thumbnail and the capture quality warnings (measured on the reduced preview picture);
    three Nones when they are drawn after the answer (``renditions``; always with ``later``)."""
    if later:
        return None, None, None
    warnings: list[dict[str, str]] = []

    def measure(picture: PILImage) -> None:
        warnings.extend(quality.check(picture, radiograph=not kind.is_photo, width=inspection.width,
                                      height=inspection.height))

    policy = renditions.policy_of(session)
    upload.stream.seek(0)
    try:
        if policy.timing == "never":
            drawn: tuple[bytes, bytes] | None = render_previews(upload.stream, inspection, measure=measure)
        else:
            drawn = policy.defer(lambda: render_previews_if_free(upload.stream, inspection, measure=measure))
    except DamagedImage as exc:
        raise ValidationFailed(str(exc), {"file": [str(exc)]}) from None
    finally:
        upload.stream.seek(0)
    if drawn is None:
        return None, None, None
    return drawn[0], drawn[1], warnings


def require_uploadable(actor: Actor, referral: Referral) -> None:
    """Images are added by someone capturing at the referring office, while the case is a draft or
    awaiting a retake."""
    access.require_referring_side(actor, referral)
    if referral.status not in UPLOADABLE_STATUSES:
        raise Conflict(f"Images can be added while the referral is a draft or awaiting a retake; it is "
                       f"{referral.status.value}")


def uploadable_referral(session: Session, actor: Actor, referral_id: uuid.UUID) -> Referral:
    """The referral, when this actor may add images to it now."""
    # Whose referral it is comes first: to anyone outside the case it does not exist, whatever their role.
    referral = access.get_referral(session, actor, referral_id)
    require_uploadable(actor, referral)
    return referral


def check_fields_against_referral(session: Session, actor: Actor, referral: Referral,
                                  fields: dict[str, Any]) -> None:
    """The form's references (capturing provider, image retaken) must point into this case."""
    if fields.get("captured_by_provider_id") is not None:
        access.get_own_provider(session, access.membership(actor)[0], fields["captured_by_provider_id"],
                                "captured_by_provider_id")
    retake_of = fields.get("retake_of")
    if retake_of is not None:
        original = session.get(Image, retake_of)
        if original is None or original.referral_id != referral.id:
            raise ValidationFailed("retake_of must be an image of this referral",
                                   {"retake_of": ["Not an image of this referral."]})


def _file_time(dicom: DicomInfo | None, zone_name: str | None) -> datetime | None:
    """When the file says the image was taken: its own offset when it states one, else its wall time read in
    the practice's zone. A date without a time of day is not a capture time."""
    if dicom is None or dicom.acquisition_datetime is None or not dicom.acquisition_time_stated:
        return None
    if dicom.acquisition_offset_stated:
        return dicom.acquisition_datetime.astimezone(UTC)
    return timezones.from_local(timezones.wall_time(dicom.acquisition_datetime), zone_name)


def resolve_capture_time(session: Session, referral: Referral, fields: dict[str, Any],
                         dicom: DicomInfo | None) -> datetime:
    """The form's time when it gives one (a wall time read in the practice's zone), else the file's; 422
    when neither says when the image was taken, or the time is later than now."""
    zone_name = clock.practice_zone(session, referral.organization_id)
    typed = fields.get("captured_at")
    if typed is not None:
        return clock.practice_moment(typed, zone_name, "captured_at", "The time the image was taken")
    from_file = _file_time(dicom, zone_name)
    if from_file is None:
        raise ValidationFailed(
            "Say when the image was taken: the file does not record a date and time",
            {"captured_at": ["Give the date and time the image was taken; this file does not carry one."]})
    return clock.practice_moment(from_file, zone_name, "captured_at", "The date and time in the file")


def _provider_named_by(session: Session, organization_id: uuid.UUID, operator: str | None) -> uuid.UUID | None:
    if not operator:
        return None
    named = [p.id for p in session.scalars(sa.select(Provider).where(Provider.organization_id == organization_id))
             if names_person(operator, p.first_name, p.last_name)]
    return named[0] if len(named) == 1 else None


def resolve_capturing_provider(session: Session, actor: Actor, fields: dict[str, Any],
                               dicom: DicomInfo | None) -> uuid.UUID:
    """The form's provider; else the one provider of the practice the DICOM operator name names; else the
    uploader's own provider; 422 when none of them says who took the image."""
    if fields.get("captured_by_provider_id") is not None:
        return cast(uuid.UUID, fields["captured_by_provider_id"])
    organization_id = access.membership(actor)[0]
    chosen = _provider_named_by(session, organization_id, dicom.operators_name if dicom else None) \
        or actor.provider_id
    if chosen is None:
        raise ValidationFailed("Say who took the image: choose a provider of the practice",
                               {"captured_by_provider_id": ["Choose the provider who took the image."]})
    return chosen


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
        check_patient_matches(dicom, patient)
    if kind in _NEEDS_TOOTH_OR_AREA and not fields["teeth"] and not fields.get("area"):
        raise ValidationFailed(
            "A periapical must name the tooth or area it shows",
            {"teeth": ["Give teeth or area for a periapical."]},
        )


@dataclass(frozen=True)
class Admission:
    """An upload that passed every check, with its renditions drawn: ready to be filed, nothing written yet."""

    referral: Referral
    upload: Upload
    fields: dict[str, Any]
    kind: ImageKind
    inspection: Inspection
    # None, None, None: drawn after the answer.
    preview: bytes | None
    thumbnail: bytes | None
    quality_warnings: list[dict[str, str]] | None
    # Left to the worker rather than to the answering process's drawing threads (direct-to-storage uploads).
    drawn_by_worker: bool = False


def admit(session: Session, actor: Actor, referral: Referral, fields: dict[str, Any], upload: Upload, *,
          drawn_by_worker: bool = False) -> Admission:
    """The checks every image passes, whichever way its bytes arrived: the form's references, the sniffed
    type, the DICOM header against the patient and the form, and previews drawn (or left for after the answer:
    ``renditions``; for the worker with ``drawn_by_worker``). Nothing is written, so a refused file costs no
    store traffic."""
    check_fields_against_referral(session, actor, referral, fields)
    if fields.get("captured_at") is not None:
        # A typed time is checked before the file costs a decode.
        resolve_capture_time(session, referral, fields, None)
    inspection = inspect_upload(upload)
    kind = ImageKind(fields["kind"])
    dicom = inspection.dicom
    fields = dict(fields)
    if not fields.get("teeth") and dicom is not None and dicom.teeth:
        fields["teeth"] = list(dicom.teeth)
    fields.setdefault("teeth", [])
    _validate_against_file(kind, fields, inspection, referral.patient)
    fields["captured_at"] = resolve_capture_time(session, referral, fields, dicom)
    fields["captured_by_provider_id"] = resolve_capturing_provider(session, actor, fields, dicom)
    preview, thumbnail, warnings = _render_previews(session, upload, inspection, kind, later=drawn_by_worker)
    return Admission(referral=referral, upload=upload, fields=fields, kind=kind, inspection=inspection,
                     preview=preview, thumbnail=thumbnail, quality_warnings=warnings, drawn_by_worker=drawn_by_worker)


def _dicom_record(session: Session, referral: Referral, dicom: DicomInfo) -> dict[str, Any]:
    """The header as kept: an acquisition time written without an offset is the practice's wall time."""
    record = dicom.to_record_dict()
    if dicom.acquisition_datetime is not None and not dicom.acquisition_offset_stated:
        zone_name = clock.practice_zone(session, referral.organization_id)
        record["acquisition_datetime"] = timezones.from_local(
            timezones.wall_time(dicom.acquisition_datetime), zone_name).isoformat()
    return record


def image_key(referral: Referral, image_id: uuid.UUID) -> str:
    """Where an image's original lives; its preview and thumbnail are siblings with suffixes."""
    return f"images/{referral.organization_id}/{referral.id}/{image_id}"


def put_object(session: Session, store: Storage, key: str, stream: BinaryIO, *, content_type: str,
               size: int, sha256: str | None = None) -> StoredObject:
    """Write an object for the current transaction: it is deleted again unless the transaction commits.
    ``sha256``: the digest already computed of these very bytes, so the store does not hash them again."""
    stream.seek(0)
    stored = store.put(key, stream, content_type=content_type, size=size, sha256=sha256)
    keep_if_committed(session, store, key)
    return stored


def keep_if_committed(session: Session, store: Storage, key: str) -> None:
    """The object under ``key`` belongs to rows of the current transaction: delete it if they never commit."""
    unit_of_work.on_rollback(session, lambda: _delete_quietly(store, key),
                             describe="remove an object whose rows were not committed")


def file_image(session: Session, store: Storage, actor: Actor, admission: Admission, *, image_id: uuid.UUID,
               original: StoredObject, sop_instance_uid: str | None = None, captured_by_confirmed: bool = True,
               audit_details: dict[str, Any] | None = None) -> Image:
    """Add an admitted image to the current transaction: its renditions written beside the original (already
    stored under ``original.key`` for this transaction), its row and its audit row. An image received over the
    DICOM network records its SOP Instance UID (one image per referral) and whether its capturer is known."""
    upload, fields, referral = admission.upload, admission.fields, admission.referral
    if original.sha256 != upload.sha256 or original.size != upload.size:
        log.error("stored object differs from the received upload; objects removed")
        raise ServiceUnavailable("The image store did not keep the bytes intact; nothing was stored. Try again.")
    preview_key: str | None = None
    thumbnail_key: str | None = None
    if admission.preview is not None and admission.thumbnail is not None:
        preview_key, thumbnail_key = original.key + PREVIEW_SUFFIX, original.key + THUMBNAIL_SUFFIX
        for rendition_key, rendition in ((preview_key, admission.preview), (thumbnail_key, admission.thumbnail)):
            put_object(session, store, rendition_key, io.BytesIO(rendition), content_type=PREVIEW_CONTENT_TYPE,
                       size=len(rendition))
    else:
        policy = renditions.policy_of(session)
        drawer = None if admission.drawn_by_worker or policy.timing == "worker" else policy.drawer
        if drawer is not None:
            unit_of_work.after_commit(session, lambda: drawer.submit(image_id),
                                      describe="draw an image's preview after the answer")
    dicom = admission.inspection.dicom
    image = Image(
        id=image_id,
        referral_id=referral.id,
        organization_id=referral.organization_id,
        kind=admission.kind,
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
        file_format=admission.inspection.format.value,
        content_type=admission.inspection.content_type,
        size=original.size,
        sha256=original.sha256,
        storage_backend=store.backend,
        storage_key=original.key,
        preview_key=preview_key,
        thumbnail_key=thumbnail_key,
        preview_state=None if preview_key else PREVIEW_PENDING,
        original_filename=safe_filename(upload.filename),
        width=admission.inspection.width,
        height=admission.inspection.height,
        dicom=_dicom_record(session, referral, dicom) if dicom else None,
        uploaded_by_user_id=access.membership(actor)[1],
        sop_instance_uid=sop_instance_uid,
        captured_by_confirmed=captured_by_confirmed,
        quality_warnings=admission.quality_warnings,
    )
    session.add(image)
    session.flush()
    audit.record(session, actor, "image.create", object_type="image", object_id=image.id,
                 organization_id=image.organization_id, referral_id=referral.id,
                 details={"kind": admission.kind.value, "size": original.size, "sha256": original.sha256,
                          **(audit_details or {})})
    size = original.size
    unit_of_work.after_commit(session, lambda: metrics.record_image_upload(size), describe="count the upload")
    return image


def intake_image(
    session: Session,
    store: Storage,
    actor: Actor,
    referral_id: uuid.UUID,
    fields: dict[str, Any],
    upload: Upload,
    *,
    idempotent: idempotency.IdempotentRequest | None = None,
) -> Image | idempotency.Replay:
    """Check and store one image of a referral, in one transaction: the original, its renditions and its
    row are all kept, or none is. With ``idempotent``, a retry of the same request replays the first
    outcome instead of storing anything again."""
    # Whose referral it is comes first, so that a key can never reveal another office's data.
    referral = access.get_referral(session, actor, referral_id)
    access.require_referring_side(actor, referral)
    claimed: IdempotencyRecord | None = None
    if idempotent is not None:
        outcome = idempotency.claim(session, idempotent)
        if isinstance(outcome, idempotency.Replay):
            return outcome
        claimed = outcome
    require_uploadable(actor, referral)
    admission = admit(session, actor, referral, fields, upload)
    image_id = new_id()
    # Hashed once, as it was spooled: the store counts the bytes without hashing them again.
    original = put_object(session, store, image_key(referral, image_id), upload.stream,
                          content_type=admission.inspection.content_type, size=upload.size, sha256=upload.sha256)
    image = file_image(session, store, actor, admission, image_id=image_id, original=original)
    if claimed is not None:
        idempotency.complete(claimed, 201, image.id)
    session.commit()
    return image


def _delete_quietly(store: Storage, key: str) -> None:
    try:
        store.delete(key)
    except (StorageError, StorageUnavailable):
        # The integrity check finds and removes objects without rows.
        log.error("could not remove object after a failed intake; it is left for the orphan sweep")


def read_image(session: Session, actor: Actor, image_id: uuid.UUID) -> Image:
    """One image's metadata (no pixels). Audited like every other read of a case.

    One SELECT finds the image, checks that its case is visible to the actor and loads who captured it (on
    PostgreSQL the same statement inserts the audit row: ``case_reads.read_visible_image``); anything else (no such
    image, a case the actor may not see, a role that reads no cases) goes the ordinary way through
    ``access.get_image``, which refuses it as every other route does."""
    if session.get_bind().dialect.name == "postgresql":
        image = case_reads.read_visible_image(session, actor, image_id)
        if image is not None:
            session.commit()
            return image
    elif actor.role in access.CLINICAL_READ_ROLES:
        image = session.execute(
            sa.select(Image).join(Referral, Referral.id == Image.referral_id)
            .where(Image.id == image_id, access.referral_visibility(actor))
            .options(joinedload(Image.captured_by))
        ).scalar_one_or_none()
    else:
        image = None
    if image is None:
        image = access.get_image(session, actor, image_id)
    audit.record(session, actor, "image.read", object_type="image", object_id=image.id,
                 organization_id=image.organization_id, referral_id=image.referral_id)
    session.commit()
    return image


def confirm_capturer(session: Session, actor: Actor, image_id: uuid.UUID, provider_id: uuid.UUID) -> Image:
    """Name who captured an image that arrived over the DICOM network without a known provider: once, by the
    capturing office, with one of its own providers."""
    image = access.get_image(session, actor, image_id)
    referral = access.get_referral(session, actor, image.referral_id)
    access.require_referring_side(actor, referral)
    access.require_role(actor, *access.CAPTURING_ROLES)
    if image.is_deleted:
        raise Conflict("This image was deleted")
    if image.captured_by_confirmed:
        raise Conflict("Who captured this image is already recorded; it cannot be changed")
    provider = access.get_own_provider(session, access.membership(actor)[0], provider_id, "captured_by_provider_id")
    before = image.captured_by_provider_id
    image.captured_by_provider_id = provider.id
    image.captured_by_confirmed = True
    session.flush()
    audit.record(session, actor, "image.capturer_confirmed", object_type="image", object_id=image.id,
                 organization_id=image.organization_id, referral_id=image.referral_id,
                 details={"from_provider_id": str(before), "to_provider_id": str(provider.id)})
    session.commit()
    return image


def list_images(session: Session, actor: Actor, referral_id: uuid.UUID) -> list[Image]:
    referral = access.get_referral(session, actor, referral_id)
    audit.record(session, actor, "image.list", object_type="referral", object_id=referral.id,
                 organization_id=referral.organization_id, referral_id=referral.id,
                 details={"count": len(referral.images)})
    session.commit()
    return list(referral.images)


def require_intact(image: Image) -> None:
    """An original the storage check found missing or altered is not served: 503, with the reason."""
    if image.integrity_problem == IntegrityProblem.MISSING:
        raise ServiceUnavailable(
            "This image's stored file is missing from the image store; its record is intact, and the file can "
            "be served again once an operator restores it", {"integrity": [image.integrity_problem]})
    if image.integrity_problem is not None:
        raise ServiceUnavailable(
            "This image's stored file no longer matches the SHA-256 recorded when it was uploaded, so it is not "
            "served; an operator must restore it", {"integrity": [image.integrity_problem]})


def open_stored(store: Storage, image: Image, key: str) -> BinaryIO:
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
    require_intact(image)
    stream = open_stored(store, image, image.storage_key)
    audit.record(session, actor, "image.download", object_type="image", object_id=image.id,
                 organization_id=image.organization_id, referral_id=image.referral_id)
    session.commit()
    return image, stream


def open_preview(session: Session, store: Storage, actor: Actor, image_id: uuid.UUID) -> tuple[Image, BinaryIO]:
    """The JPEG preview of one image, for someone allowed to see pictures. Audited."""
    return open_rendition(session, store, actor, image_id, "preview")


def open_thumbnail(session: Session, store: Storage, actor: Actor, image_id: uuid.UUID) -> tuple[Image, BinaryIO]:
    """The JPEG thumbnail of one image, for someone allowed to see pictures. Audited."""
    return open_rendition(session, store, actor, image_id, "thumbnail")


def open_rendition(session: Session, store: Storage, actor: Actor, image_id: uuid.UUID,
                   rendition: str) -> tuple[Image, BinaryIO]:
    """The ``preview`` or ``thumbnail`` JPEG of one image, for someone allowed to see pictures. Audited."""
    image = access.get_image(session, actor, image_id)
    access.require_role(actor, *access.IMAGE_VIEWER_ROLES)
    access.require_stored(image)
    if image.preview_state == PREVIEW_PENDING and image.preview_key is None:
        # Not drawn yet: drawn now, so that a viewer never waits on the background drawing.
        if renditions.draw_in(session, store, image.id) == "retry":
            raise ServiceUnavailable("This image's preview cannot be drawn right now; try again in a moment")
        session.refresh(image)
    key = image.preview_key if rendition == "preview" else image.thumbnail_key
    if key is None:
        if image.preview_state == PREVIEW_FAILED:
            raise Conflict(f"This image could not be drawn, so it has no {rendition}; the office has been told. "
                           f"Download the original, or ask the office to replace the image",
                           {"preview_status": [PREVIEW_FAILED]})
        # Only images stored before previews were introduced lack them.
        raise NotFound(f"This image has no {rendition}")
    stream = open_stored(store, image, key)
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
    require_intact(image)
    url = store.url(image.storage_key, expires_in=300, filename=download_name(image),
                    content_type=image.content_type)
    if url is not None:
        audit.record(session, actor, "image.download", object_type="image", object_id=image.id,
                     organization_id=image.organization_id, referral_id=image.referral_id,
                     details={"via": "presigned_url", "expires_in": 300})
        session.commit()
    return image, url


_EXTENSIONS = {"dicom": "dcm", "jpeg": "jpg", "png": "png", "tiff": "tif", "webp": "webp", "heic": "heic"}


def download_name(image: Image) -> str:
    """A server-made name: never the uploaded filename, which could carry anything."""
    return f"image-{image.id}.{_EXTENSIONS.get(image.file_format, 'bin')}"
