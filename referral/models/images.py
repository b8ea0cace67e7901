from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Mapped, mapped_column

from referral.db import Base, UTCDateTime, new_id, utcnow
from referral.imaging.dicom import IDENTIFYING_FIELDS
from referral.models.enums import ImageKind, StrEnum, enum_column_type


class ImmutableImageError(RuntimeError):
    """Stored images are evidence for a claim: their rows and bytes never change, except for deletion."""


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
    __table_args__ = (sa.Index("ix_images_referral_id_id", "referral_id", "id"),)

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
    original_filename: Mapped[str | None] = mapped_column(sa.String(255), comment="as sent; never a path")
    width: Mapped[int | None] = mapped_column(sa.Integer)
    height: Mapped[int | None] = mapped_column(sa.Integer)
    dicom: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, comment="DICOM header fields read at intake")
    uploaded_by_user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
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

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

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


def _tombstone_change_problem(target: Image) -> str | None:
    state = sa.inspect(target)
    changed = {attr.key: attr.history for attr in state.attrs
               if attr.history.has_changes() and attr.key not in _INTEGRITY_COLUMNS}
    if not changed:
        return None
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
