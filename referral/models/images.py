from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Mapped, mapped_column

from referral.db import Base, UTCDateTime, new_id, utcnow
from referral.models.enums import ImageKind, enum_column_type


class ImmutableImageError(RuntimeError):
    """Stored images are evidence for a claim: their rows and bytes never change."""


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


@event.listens_for(Image, "before_update")
def _refuse_image_updates(_mapper: Any, _connection: Any, target: Image) -> None:
    raise ImmutableImageError(f"image {target.id} is stored and cannot be changed")
