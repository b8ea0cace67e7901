"""Data lifecycle: images deleted when an organization's retention period has run out, and patients
deleted on request.

Nothing is deleted as a row. Referrals, reports, claim lines and the audit trail name images and patients
by id, so an image becomes a tombstone (its metadata and SHA-256 stay, its bytes leave the store) and a
patient keeps its id while its identity is erased. An image deletion commits first and removes objects
second: a failure in between leaves objects still to remove (``objects_removed_at`` is null), which the next
``retention apply`` finishes, and never a live row whose bytes the store no longer has. A scanned consent form
has no tombstone to remember it by, so it is removed before the commit that forgets its key.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from referral.db import utcnow
from referral.errors import Conflict, Gone
from referral.models import Image, Organization, Patient, Referral, ReferralEvent
from referral.models.enums import ReferralStatus, Role, Sex
from referral.models.images import ImageDeletionReason
from referral.models.patients import ERASED_BIRTH_DATE, ERASED_NAME
from referral.services import access, audit
from referral.services.actor import Actor
from storage import Storage, StorageError

log = logging.getLogger(__name__)

# A case is closed once its report is signed (reported, then closed) or it was cancelled; none of these
# states leads back to one where images are added or read for a decision.
CLOSED_STATUSES = (ReferralStatus.REPORTED, ReferralStatus.CLOSED, ReferralStatus.CANCELLED)
# Many states run a minor's retention period from the age of majority, which is 18 to 21 depending on the
# state; the highest is used so no state's minimum is cut short.
RETENTION_START_AGE = 21
BATCH_SIZE = 100


def _closing_times() -> sa.Subquery:
    """When each closed referral closed: its latest move into a closed status."""
    return (
        sa.select(ReferralEvent.referral_id, sa.func.max(ReferralEvent.at).label("closed_at"))
        .where(ReferralEvent.to_status.in_([status.value for status in CLOSED_STATUSES]))
        .group_by(ReferralEvent.referral_id)
        .subquery()
    )


def _birthday(born: date, years: int) -> datetime:
    try:
        day = born.replace(year=born.year + years)
    except ValueError:  # born on 29 February
        day = date(born.year + years, 3, 1)
    return datetime.combine(day, time.min, tzinfo=UTC)


def retention_starts(closed_at: datetime, birth_date: date) -> datetime:
    """The retention period runs from the case's closing, or for a minor from their 21st birthday."""
    return max(closed_at, _birthday(birth_date, RETENTION_START_AGE))


def _expired(session: Session, organization_id: uuid.UUID, days: int, now: datetime) -> list[uuid.UUID]:
    """Ids of the organization's live images whose case closed more than ``days`` ago."""
    period = timedelta(days=days)
    closed = _closing_times()
    rows = session.execute(
        sa.select(Image.id, closed.c.closed_at, Patient.birth_date)
        .join(Referral, Referral.id == Image.referral_id)
        .join(closed, closed.c.referral_id == Referral.id)
        .join(Patient, Patient.id == Referral.patient_id)
        .where(Referral.organization_id == organization_id, Referral.status.in_(CLOSED_STATUSES),
               Image.deleted_at.is_(None), closed.c.closed_at <= now - period)
        .order_by(Image.id)
    )
    return [image_id for image_id, closed_at, born in rows if retention_starts(closed_at, born) + period <= now]


def _batches(ids: Sequence[uuid.UUID]) -> Iterable[Sequence[uuid.UUID]]:
    for start in range(0, len(ids), BATCH_SIZE):
        yield ids[start:start + BATCH_SIZE]


def _lock_live(session: Session, ids: Sequence[uuid.UUID], *, skip_locked: bool) -> list[Image]:
    """The images among ``ids`` still live once locked, so two deleters never tombstone one image twice
    (PostgreSQL re-reads a locked row before handing it out; SQLite writers take turns anyway)."""
    return list(session.scalars(
        sa.select(Image).where(Image.id.in_(ids), Image.deleted_at.is_(None)).order_by(Image.id)
        .with_for_update(skip_locked=skip_locked)
    ))


def image_keys(image: Image) -> list[str]:
    return [key for key in (image.storage_key, image.preview_key, image.thumbnail_key) if key]


@dataclass
class Removal:
    objects_removed: int = 0
    failed: int = 0
    done: list[uuid.UUID] = field(default_factory=list)


def remove_objects(store: Storage, images: Iterable[Image]) -> Removal:
    """Delete the stored objects of tombstoned images (nothing in the database is held meanwhile). A missing
    object is already what we want; an unreachable store leaves the image pending for the next run."""
    result = Removal()
    for image_id, keys in [(image.id, image_keys(image)) for image in images]:
        try:
            for key in keys:
                store.delete(key)
        except StorageError as exc:
            log.warning("objects of deleted image %s could not be removed (%s); the next `retention apply` "
                        "tries again", image_id, type(exc).__name__)
            result.failed += 1
            continue
        result.objects_removed += len(keys)
        result.done.append(image_id)
    return result


def mark_removed(session: Session, image_ids: list[uuid.UUID], now: datetime) -> None:
    """Record, in the caller's transaction, that the objects of these images are gone."""
    for batch in _batches(image_ids):
        for image in session.scalars(sa.select(Image).where(Image.id.in_(batch), Image.objects_removed_at.is_(None))
                                     .with_for_update()):
            image.objects_removed_at = now


def _pending_removal(session: Session) -> list[Image]:
    return list(session.scalars(
        sa.select(Image).where(Image.deleted_at.is_not(None), Image.objects_removed_at.is_(None)).order_by(Image.id)
    ))


def apply_retention(session: Session, store: Storage, *, now: datetime | None = None,
                    dry_run: bool = False) -> dict[str, Any]:
    """Delete the images of every organization whose retention period has run out since their case closed,
    and finish removing the objects of any image deleted earlier. The counts, for the operator."""
    now = now or utcnow()
    operator = Actor.operator()
    periods = {org.id: org.image_retention_days for org in session.scalars(
        sa.select(Organization).where(Organization.image_retention_days.is_not(None)).order_by(Organization.id))
        if org.image_retention_days is not None}
    due = {organization_id: _expired(session, organization_id, days, now) for organization_id, days in periods.items()}
    counts: dict[str, Any] = {
        "dry_run": dry_run,
        "organizations": len(periods),
        "images_expired": sum(len(ids) for ids in due.values()),
        "images_deleted": 0,
        "objects_removed": 0,
        "removals_failed": 0,
    }
    if dry_run:
        counts["removals_pending"] = len(_pending_removal(session))
        session.rollback()
        return counts
    for organization_id, days in periods.items():
        for batch in _batches(due[organization_id]):
            for image in _lock_live(session, batch, skip_locked=True):
                image.erase(ImageDeletionReason.RETENTION, now)
                audit.record(session, operator, "image.retention_delete", object_type="image", object_id=image.id,
                             organization_id=image.organization_id, referral_id=image.referral_id,
                             details={"reason": ImageDeletionReason.RETENTION.value,
                                      "retention_days": days})
                counts["images_deleted"] += 1
            session.commit()
    pending = _pending_removal(session)
    session.commit()  # the database is not held while the store is called
    removal = remove_objects(store, pending)
    mark_removed(session, removal.done, now)
    session.commit()
    counts["objects_removed"] = removal.objects_removed
    counts["removals_failed"] = removal.failed
    return counts


# -- a patient's deletion --------------------------------------------------------------------------------


def delete_patient(session: Session, store: Storage, actor: Actor, patient_id: uuid.UUID) -> None:
    """Erase a patient's identity and delete every image and scanned consent form of their cases.

    For the patient's own organization's admin or a platform admin. Refused while a case is still under
    way: the reader would be left with a case whose images and patient vanished, so it must be finished
    (report signed) or cancelled first. The rows stay, so cases, reports, claim lines and the audit trail
    keep their meaning; they no longer say who the patient was."""
    patient = access.get_patient(session, actor, patient_id, roles=(Role.ADMIN, Role.ORG_ADMIN))
    # Locked until the commit: a referral cannot be created for the patient meanwhile (it reads the
    # patient FOR SHARE), nor can two deletions interleave.
    session.refresh(patient, with_for_update=True)
    if patient.is_deleted:
        raise Gone("This patient's record was deleted")
    referrals = list(session.scalars(sa.select(Referral).where(Referral.patient_id == patient.id)
                                     .order_by(Referral.id)))
    open_ids = [str(referral.id) for referral in referrals if referral.status not in CLOSED_STATUSES]
    if open_ids:
        raise Conflict("The patient has referrals still under way; cancel them or finish their reports first",
                       {"referral_ids": open_ids})
    now = utcnow()
    images = _lock_live(session, [image.id for referral in referrals for image in referral.images],
                        skip_locked=False)
    for image in images:
        image.erase(ImageDeletionReason.PATIENT_DELETED, now)
        audit.record(session, actor, "image.patient_delete", object_type="image", object_id=image.id,
                     organization_id=image.organization_id, referral_id=image.referral_id,
                     details={"reason": ImageDeletionReason.PATIENT_DELETED.value, "patient_id": str(patient.id)})
    consent_forms = 0
    for referral in referrals:
        if referral.consent_form_key is not None:
            # Removed before the commit, unlike images: once the referral no longer names it, nothing would.
            # An unreachable store fails the request (503) with nothing changed; a retry finishes the job.
            store.delete(referral.consent_form_key)
            consent_forms += 1
            referral.consent_form_key = None
            referral.consent_form_content_type = None
            audit.record(session, actor, "referral.consent_form_delete", object_type="referral",
                         object_id=referral.id, organization_id=referral.organization_id, referral_id=referral.id,
                         details={"reason": ImageDeletionReason.PATIENT_DELETED.value})
    _erase_identity(patient, now)
    audit.record(session, actor, "patient.delete", object_type="patient", object_id=patient.id,
                 organization_id=patient.organization_id,
                 details={"referrals": len(referrals), "images": len(images), "consent_forms": consent_forms})
    session.commit()
    removal = remove_objects(store, images)
    mark_removed(session, removal.done, now)
    session.commit()


def _erase_identity(patient: Patient, now: datetime) -> None:
    patient.first_name = ERASED_NAME
    patient.last_name = ERASED_NAME
    patient.birth_date = ERASED_BIRTH_DATE
    patient.sex = Sex.UNKNOWN
    patient.address_line1 = patient.address_line2 = patient.city = patient.zip = None
    patient.coverage_payer_id = patient.coverage_payer_name = None
    patient.coverage_member_id = patient.coverage_group_number = None
    patient.coverage_relationship = None
    patient.clear_subscriber()
    patient.deleted_at = now
