from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from referral.db import Base, UTCDateTime, new_id, utcnow
from referral.models.enums import StrEnum, enum_column_type


class TusUploadStatus(StrEnum):
    ACTIVE = "active"  # bytes are arriving; more may follow
    COMPLETED = "completed"  # the last byte arrived and the file became an image
    FAILED = "failed"  # the assembled file was refused (or could not be filed); what was sent is deleted
    TERMINATED = "terminated"  # the client gave it up (DELETE)
    EXPIRED = "expired"  # not finished in time; whatever was sent is deleted


class TusUpload(Base):
    """A resumable (tus 1.0) upload of one image: its declared length, the image fields it will be filed with,
    and how far its bytes have arrived.

    The bytes never sit under an image key. Full parts go to a multipart upload of the store under
    ``storage_key`` (a ``tus/`` key); what is left over after the last full part waits in a tail object
    (``tail_key``) until the next chunk fills a part. When the last byte arrives the parts are assembled under
    ``storage_key`` and the file goes through the ordinary intake.
    """

    __tablename__ = "tus_uploads"
    # The worker's sweep: uploads past their expiry, or settled, whose objects have not been cleared yet.
    __table_args__ = (sa.Index("ix_tus_uploads_swept_at_expires_at", "swept_at", "expires_at"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    referral_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("referrals.id"), index=True)
    created_by_user_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("users.id"), comment="the only user who may continue it"
    )
    upload_length: Mapped[int] = mapped_column(sa.BigInteger, comment="the file's size, declared at creation")
    upload_offset: Mapped[int] = mapped_column(sa.BigInteger, default=0, comment="bytes received so far")
    fields: Mapped[dict[str, Any]] = mapped_column(
        sa.JSON, comment="the image's form fields from Upload-Metadata, as sent (checked at creation)"
    )
    filename: Mapped[str | None] = mapped_column(sa.String(255), comment="the file's name, for display only")
    storage_key: Mapped[str] = mapped_column(
        sa.String(512), unique=True, comment="the tus/ key the parts are assembled under; never an image key"
    )
    part_size: Mapped[int] = mapped_column(sa.Integer, comment="the size of every part but the last")
    multipart_id: Mapped[str | None] = mapped_column(
        sa.String(1024), comment="the store's multipart upload, once the first full part was sent"
    )
    parts: Mapped[list[Any]] = mapped_column(sa.JSON, default=list, comment="[number, etag] of each part sent")
    tail_key: Mapped[str | None] = mapped_column(
        sa.String(512), comment="the bytes after the last full part, waiting for the next chunk"
    )
    status: Mapped[TusUploadStatus] = mapped_column(
        enum_column_type(TusUploadStatus, "tus_upload_status"), default=TusUploadStatus.ACTIVE
    )
    image_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("images.id"), unique=True, comment="the image it became, once completed"
    )
    failure_reason: Mapped[str | None] = mapped_column(
        sa.String(200), comment="why it was refused, terminated or expired; a code, never PHI"
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(
        UTCDateTime, comment="when an unfinished upload is given up; moved on by every chunk received"
    )
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, comment="when it was settled")
    swept_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, comment="when the worker cleared its parts and objects"
    )
