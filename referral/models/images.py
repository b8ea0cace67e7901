from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from referral.db import Base, UTCDateTime, new_id, utcnow
from referral.imaging.dicom import IDENTIFYING_FIELDS, names_person, reading_order
from referral.models.enums import ImageKind, StrEnum, enum_column_type

if TYPE_CHECKING:
    from referral.models.organizations import Provider


# A typed capture time this close to the file's is the same moment read off another clock.
FILE_TIME_TOLERANCE = timedelta(minutes=10)


PREVIEW_PENDING = "pending"
PREVIEW_FAILED = "failed"


class ImmutableImageError(RuntimeError):
    """Sent images are evidence for a claim: their rows and bytes never change, except for deletion. Before its
    case is sent, an image's labels (kind, teeth, area, reason, when and by whom it was taken) may be fixed."""


class ImageDeletionReason(StrEnum):
    RETENTION = "retention"  # the organization's retention period ran out after the case closed
    PATIENT_DELETED = "patient_deleted"  # the patient's record was deleted on request


class IntegrityProblem(StrEnum):
    """What ``storage check`` found wrong with an image's original in the store."""

    MISSING = "missing"  # the store has no object under the image's key
    CHECKSUM_MISMATCH = "checksum_mismatch"  # the object's SHA-256 differs from the one recorded at intake


class Image(Base):
    """One radiograph or photo. The row records where its bytes are and their SHA-256."""

    __tablename__ = "images"
    __table_args__ = (
        sa.Index("ix_images_referral_id_id", "referral_id", "id"),
        sa.Index("ux_images_referral_sop_instance", "referral_id", "sop_instance_uid", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    referral_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("referrals.id"))
    organization_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("organizations.id"), index=True, comment="the organization that captured it"
    )
    kind: Mapped[ImageKind] = mapped_column(enum_column_type(ImageKind, "image_kind"))
    teeth: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    area: Mapped[str | None] = mapped_column(sa.String(2), comment="ADA oral cavity area code")
    reason: Mapped[str] = mapped_column(sa.Text, comment="clinical reason for the exposure")
    captured_at: Mapped[datetime] = mapped_column(UTCDateTime)
    captured_by_provider_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("providers.id"))
    capture_only: Mapped[bool] = mapped_column(
        sa.Boolean, default=True, comment="this office captured the image and did not interpret it"
    )
    retake_of_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("images.id"))
    retake_reason: Mapped[str | None] = mapped_column(sa.String(200))
    exposure_kvp: Mapped[float | None] = mapped_column(sa.Float)
    exposure_ma: Mapped[float | None] = mapped_column(sa.Float)
    exposure_time_ms: Mapped[float | None] = mapped_column(sa.Float)
    file_format: Mapped[str] = mapped_column(sa.String(10), comment="decided from the bytes")
    content_type: Mapped[str] = mapped_column(sa.String(40))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    storage_backend: Mapped[str] = mapped_column(sa.String(10))
    storage_key: Mapped[str] = mapped_column(sa.String(512), unique=True)
    preview_key: Mapped[str | None] = mapped_column(
        sa.String(512), comment="JPEG preview (longer side at most 1600 px, no metadata), made at intake"
    )
    thumbnail_key: Mapped[str | None] = mapped_column(
        sa.String(512), comment="JPEG thumbnail (longer side at most 256 px, no metadata), made at intake"
    )
    preview_state: Mapped[str | None] = mapped_column(
        sa.String(10),
        comment="pending: renditions are drawn after the upload's answer; failed: they could not be drawn")
    original_filename: Mapped[str | None] = mapped_column(sa.String(255), comment="as sent; never a path")
    width: Mapped[int | None] = mapped_column(sa.Integer)
    height: Mapped[int | None] = mapped_column(sa.Integer)
    dicom: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, comment="DICOM header fields read at intake")
    sop_instance_uid: Mapped[str | None] = mapped_column(
        sa.String(64), comment="SOP Instance UID of an image received over the DICOM network; one image per referral")
    captured_by_confirmed: Mapped[bool] = mapped_column(
        sa.Boolean, default=True, server_default=sa.true(),
        comment="false while the office has yet to confirm who captured an image its device sent")
    quality_warnings: Mapped[list[dict[str, str]] | None] = mapped_column(
        sa.JSON, comment="capture quality warnings measured at intake ({code, message}); null before the checks")
    uploaded_by_user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, comment="when the case was first sent with this image; null while it can still be fixed")
    # A deleted image stays as a tombstone: reports, claim lines and the audit trail name it, and its
    # size and SHA-256 still say what was there. Its bytes (original, preview, thumbnail) leave the store.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_reason: Mapped[str | None] = mapped_column(sa.String(20), comment="retention or patient_deleted")
    objects_removed_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, comment="when the stored objects were removed; null on a tombstone while removal is pending"
    )

    # Set by `storage check --repair` (and the worker's sweep) when the original is missing or altered, and
    # cleared once it is found intact again (restored from a backup, say). Flags, not content: they may
    # change on any image, stored or deleted.
    integrity_problem: Mapped[str | None] = mapped_column(
        sa.String(20), comment="missing or checksum_mismatch, as last found by the storage check; null when intact")
    integrity_problem_since: Mapped[datetime | None] = mapped_column(
        UTCDateTime, comment="when the storage check first found the current problem")

    captured_by: Mapped[Provider] = relationship(foreign_keys=[captured_by_provider_id], viewonly=True)

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def capture_notes(self) -> list[dict[str, str]]:
        """What the file says that disagrees with the form, kept for a person to check rather than overwritten:
        a DICOM operator who is not the provider recorded as having taken the image."""
        notes: list[dict[str, str]] = []
        operator = (self.dicom or {}).get("operators_name")
        provider = self.captured_by
        if operator and provider is not None and not names_person(operator, provider.first_name, provider.last_name):
            notes.append({"code": "operator_differs",
                          "message": f"The DICOM file names {reading_order(operator) or operator} as the operator, "
                                     f"but {provider.display_name} is recorded as having taken this image. "
                                     f"Check who took it."})
        recorded = (self.dicom or {}).get("acquisition_datetime") if (self.dicom or {}).get(
            "acquisition_time_stated") else None
        if recorded and self.captured_at is not None:
            file_time = datetime.fromisoformat(recorded)
            if abs(file_time - self.captured_at) > FILE_TIME_TOLERANCE:
                notes.append({"code": "time_differs",
                              "message": "The time entered for this image differs from the date and time in its "
                                         "DICOM file by more than 10 minutes. Check when it was taken."})
        return notes

    @property
    def has_renditions(self) -> bool:
        """Whether preview and thumbnail can be asked for: drawn, or to be drawn on the spot when asked."""
        return not self.is_deleted and (self.preview_key is not None or self.preview_state == PREVIEW_PENDING)

    @property
    def preview_status(self) -> str:
        """ready: previews drawn; pending: they are drawn after the upload's answer (services/renditions.py);
        failed: the pixel data could not be drawn after all; unavailable: stored before previews existed."""
        if self.preview_key:
            return "ready"
        return self.preview_state if self.preview_state in (PREVIEW_PENDING, PREVIEW_FAILED) else "unavailable"

    def erase(self, reason: ImageDeletionReason, at: datetime) -> None:
        """Make this row a tombstone. The objects are removed by the caller once this is committed, so a
        failure between the two leaves objects to remove again, never a stored row without its bytes."""
        self.deleted_at = at
        self.deleted_reason = reason.value
        self.original_filename = None  # as sent, it may carry the patient's name
        if self.dicom:
            self.dicom = {key: value for key, value in self.dicom.items() if key not in IDENTIFYING_FIELDS}


# The one change a stored image may undergo: becoming a tombstone, then recording that its objects are gone.
_TOMBSTONE_COLUMNS = frozenset({"deleted_at", "deleted_reason", "objects_removed_at", "original_filename", "dicom"})


_INTEGRITY_COLUMNS = frozenset({"integrity_problem", "integrity_problem_since"})
# Renditions drawn after the answer: set once, on an image still waiting for them.
_RENDITION_COLUMNS = frozenset({"preview_key", "thumbnail_key", "preview_state", "quality_warnings"})
_CAPTURER_COLUMNS = frozenset({"captured_by_provider_id", "captured_by_confirmed"})

# What may be fixed on an image that has not been sent yet; its bytes and where they are never change.
DRAFT_COLUMNS = frozenset({"kind", "teeth", "area", "reason", "captured_at", "captured_by_provider_id", "sent_at"})


def _draft_change_problem(target: Image, changed: dict[str, Any]) -> str | None:
    """None when ``changed`` only fixes the labels of an image not sent before this change."""
    if "sent_at" in changed and any(old is not None for old in changed["sent_at"].deleted):
        return "already has sent_at set"
    was_sent = target.sent_at is not None and "sent_at" not in changed
    if was_sent or not changed.keys() <= DRAFT_COLUMNS or target.deleted_at is not None:
        return "is stored and cannot be changed"
    return None


def _tombstone_change_problem(target: Image) -> str | None:
    state = sa.inspect(target)
    changed = {attr.key: attr.history for attr in state.attrs
               if attr.history.has_changes() and attr.key not in _INTEGRITY_COLUMNS}
    if not changed:
        return None
    if changed.keys() <= _RENDITION_COLUMNS and "preview_state" in changed:
        was = next(iter(changed["preview_state"].deleted), None)
        return None if was == PREVIEW_PENDING and target.deleted_at is None else "has its renditions already"
    if changed.keys() <= _CAPTURER_COLUMNS and "captured_by_confirmed" in changed:
        # The office names who captured an image its device sent: once, from unconfirmed to confirmed.
        was = next(iter(changed["captured_by_confirmed"].deleted), None)
        return None if was is False and target.captured_by_confirmed is True else "has its capturer recorded already"
    if changed.keys() <= DRAFT_COLUMNS:
        return _draft_change_problem(target, changed)
    if not changed.keys() <= _TOMBSTONE_COLUMNS:
        return "is stored and cannot be changed"
    if target.deleted_at is None:
        return "can only be changed by deleting it"
    for key in ("deleted_at", "objects_removed_at"):
        if key in changed and any(old is not None for old in changed[key].deleted):
            return f"already has {key} set"
    if target.objects_removed_at is not None and "deleted_at" in changed:
        return "cannot be deleted and have its objects removed in one step"
    if "original_filename" in changed and target.original_filename is not None:
        return "may only lose its original filename"
    if "dicom" in changed:
        before = next(iter(changed["dicom"].deleted), None) or {}
        after = target.dicom or {}
        if any(key not in before or before[key] != value for key, value in after.items()):
            return "may only lose DICOM header fields"
    return None


@event.listens_for(Image, "before_update")
def _refuse_image_updates(_mapper: Any, _connection: Any, target: Image) -> None:
    problem = _tombstone_change_problem(target)
    if problem is not None:
        raise ImmutableImageError(f"image {target.id} {problem}")
