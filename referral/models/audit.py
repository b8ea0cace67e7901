from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from referral.db import Base, UTCDateTime, new_id, utcnow


class AuditEvent(Base):
    """Who did what to which record, when, and from where. Append-only; holds ids, never PHI."""

    __tablename__ = "audit_events"
    __table_args__ = (
        sa.Index("ix_audit_events_referral_id_id", "referral_id", "id"),
        sa.Index("ix_audit_events_organization_id_id", "organization_id", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, comment="null for the operator CLI")
    actor_organization_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, index=True)
    organization_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.Uuid, comment="organization that owns the record acted on"
    )
    action: Mapped[str] = mapped_column(sa.String(60), comment="e.g. referral.read, image.download")
    outcome: Mapped[str] = mapped_column(sa.String(10), default="success", comment="success or denied")
    object_type: Mapped[str] = mapped_column(sa.String(30))
    object_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    referral_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    ip_address: Mapped[str | None] = mapped_column(sa.String(45))
    user_agent: Mapped[str | None] = mapped_column(sa.String(200))
    details: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, comment="ids and codes only")
    emergency_access_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.Uuid, comment="set when the actor reached the case only through this emergency access grant")
