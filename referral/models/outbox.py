"""The transactional outbox: events written in the same transaction as the change they announce, and
their deliveries to each organization's webhooks, sent later by the worker."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from referral.db import Base, UTCDateTime, new_id, utcnow
from referral.models.enums import StrEnum, enum_column_type


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


class Webhook(Base):
    """An organization's HTTPS endpoint and the event types it wants."""

    __tablename__ = "webhooks"
    __table_args__ = (sa.Index("ix_webhooks_organization_id_id", "organization_id", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organizations.id"))
    url: Mapped[str] = mapped_column(sa.String(2000))
    event_types: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    # HMAC needs the key itself, so it cannot be hashed like an API token; it stays in this column and
    # is never returned by the API after creation or written to a log.
    secret: Mapped[str] = mapped_column(sa.String(256), comment="HMAC-SHA256 signing key; never returned")
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_by_user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OutboxEvent(Base):
    """Something that happened, as one receiving organization hears it. ``data`` holds ids and codes only."""

    __tablename__ = "outbox_events"
    __table_args__ = (sa.Index("ix_outbox_events_type_created_at", "type", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("organizations.id"), index=True, comment="the organization the event is for"
    )
    type: Mapped[str] = mapped_column(sa.String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    data: Mapped[dict[str, Any]] = mapped_column(sa.JSON, comment="ids and codes only, never PHI")


class WebhookDelivery(Base):
    """One event to one webhook: its attempts so far and when the next one is due."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.UniqueConstraint("event_id", "webhook_id"),
        # The worker's query: pending rows whose next attempt is due, oldest first.
        sa.Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        sa.Index("ix_webhook_deliveries_webhook_id_id", "webhook_id", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    event_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("outbox_events.id"))
    webhook_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("webhooks.id"))
    status: Mapped[DeliveryStatus] = mapped_column(
        enum_column_type(DeliveryStatus, "delivery_status"), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0, comment="attempts started, counted at claim")
    next_attempt_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, comment="due time while pending (a claim pushes it out as a lease); null once settled"
    )
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(sa.Integer)
    last_error: Mapped[str | None] = mapped_column(sa.String(300))
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    event: Mapped[OutboxEvent] = relationship()

    @property
    def event_type(self) -> str:
        return self.event.type


class EmailNotification(Base):
    """The one email decision for an event: a row is inserted before sending, so the unique event id
    makes concurrent workers agree and no event is emailed twice."""

    __tablename__ = "email_notifications"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    event_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("outbox_events.id"), unique=True)
    status: Mapped[str] = mapped_column(sa.String(10), comment="sending, sent, failed or skipped")
    recipients: Mapped[int] = mapped_column(sa.Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(sa.String(300))
