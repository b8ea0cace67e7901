from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from referral.db import Base, UTCDateTime, new_id, utcnow
from referral.models.enums import StrEnum, enum_column_type


class PendingUploadStatus(StrEnum):
    PENDING = "pending"  # the form is out; nothing has been accepted yet
    COMPLETED = "completed"  # the file became an image
    FAILED = "failed"  # completion refused the file, which was deleted
    EXPIRED = "expired"  # never completed in time; whatever was sent was deleted


class PendingUpload(Base):
    """An upload form handed to a client so that a large file goes straight to the object store.

    The bytes land under ``storage_key``, which nothing else reads; only completion, after checking
    them, copies them to an image key and creates the image row.
    """

    __tablename__ = "pending_uploads"
    # The worker's sweep: forms past their expiry whose key has not been cleared yet.
    __table_args__ = (sa.Index("ix_pending_uploads_swept_at_expires_at", "swept_at", "expires_at"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    referral_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("referrals.id"), index=True)
    uploaded_by_user_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("users.id"), comment="the only user who may complete it"
    )
    storage_key: Mapped[str] = mapped_column(
        sa.String(512), unique=True, comment="where the form puts the bytes; made by the server"
    )
    max_bytes: Mapped[int] = mapped_column(sa.BigInteger, comment="the largest file the form accepts")
    status: Mapped[PendingUploadStatus] = mapped_column(
        enum_column_type(PendingUploadStatus, "pending_upload_status"), default=PendingUploadStatus.PENDING
    )
    image_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("images.id"), unique=True, comment="the image it became, once completed"
    )
    failure_reason: Mapped[str | None] = mapped_column(
        sa.String(200), comment="why completion refused it or it expired; never PHI"
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, comment="when the form stops being accepted")
    completed_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, comment="when completion settled it, as completed or failed"
    )
    swept_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, comment="when the worker cleared its key after the form expired"
    )
