"""Fixing a case's images before it is sent: relabel one (kind, teeth, area, reason, when and by whom it was
taken) or remove it with its stored bytes. Once the case is sent with an image, the reader relies on it and
it no longer changes (409).

The referral's row is held (a conditional update of its status) before the image is touched, in the same
order as sending takes its locks, so a fix and a send of one case never interleave.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from referral import unit_of_work
from referral.db import utcnow
from referral.errors import Conflict, ValidationFailed
from referral.imaging.dicom import DicomInfo
from referral.models import Image, Referral
from referral.models.enums import ImageKind
from referral.models.uploads import PendingUpload
from referral.services import access, audit, intake, lifecycle
from referral.services.actor import Actor
from storage import Storage, StorageError, StorageUnavailable

log = logging.getLogger(__name__)

_SENT = ("This image was sent to the reader with the case and can no longer be changed or removed; "
         "ask the reader for a retake instead")


def _fixable_image(session: Session, actor: Actor, image_id: uuid.UUID) -> tuple[Image, Referral]:
    """The image, when this actor may fix it now: outsiders get 404, the reading side 403, a sent image 409."""
    image = access.get_image(session, actor, image_id)
    referral = access.get_referral(session, actor, image.referral_id)
    access.require_referring_side(actor, referral)
    held = session.execute(
        sa.update(Referral)
        .where(Referral.id == referral.id, Referral.status.in_(list(intake.UPLOADABLE_STATUSES)))
        .values(updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if held.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(referral)
        raise Conflict(f"Images can be fixed or removed only before the case is sent; it is "
                       f"{referral.status.value.replace('_', ' ')}")
    session.refresh(referral)
    session.refresh(image)
    if image.sent_at is not None or image.is_deleted:
        raise Conflict(_SENT)
    return image, referral


def _check_labels(image: Image, kind: ImageKind, teeth: list[str], area: str | None) -> None:
    """The checks an upload's labels pass, against what the stored file says."""
    dicom = DicomInfo.from_record_dict(image.dicom) if image.dicom else None
    if dicom is not None and kind.is_photo and dicom.is_radiograph:
        raise ValidationFailed(
            f"This file is a DICOM radiograph (modality {dicom.modality or 'unknown'}); file it as a radiograph "
            f"kind, not {kind.value}", {"kind": ["A radiograph cannot be filed as a photo."]})
    if kind == ImageKind.PERIAPICAL and not teeth and not area:
        raise ValidationFailed("A periapical must name the tooth or area it shows",
                               {"teeth": ["Give teeth or area for a periapical."]})


def fix_image(session: Session, actor: Actor, image_id: uuid.UUID, changes: dict[str, Any]) -> Image:
    """Change an unsent image's labels, with the checks of an upload; audited with what changed."""
    image, referral = _fixable_image(session, actor, image_id)
    new: dict[str, Any] = {}
    if "kind" in changes:
        new["kind"] = ImageKind(changes["kind"])
    if "teeth" in changes:
        new["teeth"] = list(changes["teeth"] or [])
    if "area" in changes:
        new["area"] = changes["area"]
    if "reason" in changes:
        new["reason"] = changes["reason"]
    if "captured_by_provider_id" in changes:
        provider_id = changes["captured_by_provider_id"]
        access.get_own_provider(session, referral.organization_id, provider_id, "captured_by_provider_id")
        new["captured_by_provider_id"] = provider_id
    if "captured_at" in changes:
        new["captured_at"] = intake.resolve_capture_time(session, referral, {"captured_at": changes["captured_at"]},
                                                         None)
    _check_labels(image, new.get("kind", image.kind), new.get("teeth", image.teeth),
                  new.get("area", image.area))
    changed: dict[str, Any] = {}
    for name, value in new.items():
        before = getattr(image, name)
        if before == value:
            continue
        setattr(image, name, value)
        # The reason is free text: the audit trail says it changed, not what it says.
        if name != "reason":
            changed[name] = {"from": _plain(before), "to": _plain(value)}
        else:
            changed[name] = {}
    session.flush()
    audit.record(session, actor, "image.update", object_type="image", object_id=image.id,
                 organization_id=image.organization_id, referral_id=referral.id, details={"changes": changed})
    session.commit()
    session.refresh(image)
    return image


def _plain(value: Any) -> Any:
    if isinstance(value, ImageKind):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return list(value) if isinstance(value, list) else value


def remove_image(session: Session, store: Storage, actor: Actor, image_id: uuid.UUID) -> None:
    """Remove an unsent image: its row now, its stored objects once that is committed (an object left behind by
    an unreachable store is found by the storage check's orphan sweep). Audited with its kind, size and hash."""
    image, referral = _fixable_image(session, actor, image_id)
    retake = session.scalar(sa.select(Image.id).where(Image.retake_of_id == image.id).limit(1))
    if retake is not None:
        raise Conflict("Another image is recorded as a retake of this one; remove that retake first")
    for pending in session.scalars(sa.select(PendingUpload).where(PendingUpload.image_id == image.id)):
        pending.image_id = None
    keys = lifecycle.image_keys(image)
    details = {"kind": image.kind.value, "teeth": list(image.teeth or []), "size": image.size,
               "sha256": image.sha256}
    session.delete(image)
    session.flush()
    audit.record(session, actor, "image.delete", object_type="image", object_id=image_id,
                 organization_id=referral.organization_id, referral_id=referral.id, details=details)
    unit_of_work.after_commit(session, lambda: _delete_objects(store, keys),
                              describe="remove the stored objects of a removed image")
    session.commit()


def _delete_objects(store: Storage, keys: list[str]) -> None:
    for key in keys:
        try:
            store.delete(key)
        except (StorageError, StorageUnavailable):
            log.error("could not remove an object of a removed image; it is left for the orphan sweep")
