from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from referral.db import Base, UTCDateTime, new_id, utcnow


class IdempotencyRecord(Base):
    """The outcome of the first request with an ``Idempotency-Key``, replayed to retries of the same request.

    The row is inserted in the transaction of the work it guards; the unique constraint makes the claim
    atomic, so two concurrent requests with one key cannot both do the work.
    """

    __tablename__ = "idempotency_records"
    __table_args__ = (sa.UniqueConstraint("user_id", "key"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(sa.String(255))
    request_fingerprint: Mapped[str] = mapped_column(sa.String(64), comment="SHA-256 of method, path and body")
    response_status: Mapped[int | None] = mapped_column(sa.Integer)
    response_body: Mapped[dict[str, Any] | None] = mapped_column(
        sa.JSON, comment="the first response, for keys recorded before resource_id was kept")
    resource_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.Uuid, comment="what the first request created; a replay answers with its current state")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
