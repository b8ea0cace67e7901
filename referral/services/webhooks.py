"""Webhook registrations of an organization, managed by its org admin.

Scoping follows ``access``: another organization's webhook, or a deleted one, is not found (404), and
an attempt on another organization's webhook is written to the audit trail as denied.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, joinedload

from referral.db import utcnow
from referral.errors import Conflict, NotFound, ValidationFailed
from referral.models import DeliveryStatus, Webhook, WebhookDelivery
from referral.models.enums import Role
from referral.services import access, audit, outbox, urlguard
from referral.services.actor import Actor
from referral.services.pagination import page

# Every event fans out to each subscribed webhook; a bound keeps that fan-out, and the worker's
# load per event, small.
MAX_WEBHOOKS_PER_ORGANIZATION = 20


def _canonical_events(events: list[str]) -> list[str]:
    wanted = set(events)
    return [event_type for event_type in outbox.EVENT_TYPES if event_type in wanted]


def create_webhook(session: Session, actor: Actor, data: dict[str, Any], *, allow_private: bool) -> Webhook:
    access.require_role(actor, Role.ORG_ADMIN)
    organization_id, user_id = access.membership(actor)
    try:
        # With private addresses allowed there is nothing to learn from DNS at registration.
        urlguard.check_url(data["url"], allow_private=allow_private, resolve=not allow_private)
    except urlguard.UnsafeUrl as exc:
        raise ValidationFailed(f"url is not allowed: {exc}", {"url": [str(exc)]}) from None
    existing = session.scalar(
        sa.select(sa.func.count()).select_from(Webhook)
        .where(Webhook.organization_id == organization_id, Webhook.deleted_at.is_(None))
    ) or 0
    if existing >= MAX_WEBHOOKS_PER_ORGANIZATION:
        raise Conflict(f"An organization can have at most {MAX_WEBHOOKS_PER_ORGANIZATION} webhooks; "
                       "delete one first")
    webhook = Webhook(
        organization_id=organization_id,
        url=data["url"],
        event_types=_canonical_events(data["events"]),
        secret=data["secret"],
        active=True,
        created_by_user_id=user_id,
    )
    session.add(webhook)
    session.flush()
    # The URL can carry a receiver's own token in its query, so only the subscription is recorded.
    audit.record(session, actor, "webhook.create", object_type="webhook", object_id=webhook.id,
                 organization_id=organization_id, details={"events": webhook.event_types})
    session.commit()
    return webhook


def list_webhooks(session: Session, actor: Actor) -> list[Webhook]:
    access.require_role(actor, Role.ORG_ADMIN)
    organization_id, _ = access.membership(actor)
    return list(session.scalars(
        sa.select(Webhook)
        .where(Webhook.organization_id == organization_id, Webhook.deleted_at.is_(None))
        .order_by(Webhook.id)
    ))


def get_webhook(session: Session, actor: Actor, webhook_id: uuid.UUID) -> Webhook:
    # Another practice's webhook does not exist for anyone of this one, whatever their role; inside the
    # practice, only its admins manage webhooks.
    organization_id, _ = access.membership(actor)
    webhook = session.get(Webhook, webhook_id)
    if webhook is None or webhook.deleted_at is not None or webhook.organization_id != organization_id:
        audit.record_denied(session, actor, "webhook.access", object_type="webhook", object_id=webhook_id)
        raise NotFound("Webhook not found")
    access.require_role(actor, Role.ORG_ADMIN)
    return webhook


def delete_webhook(session: Session, actor: Actor, webhook_id: uuid.UUID) -> None:
    webhook = get_webhook(session, actor, webhook_id)
    now = utcnow()
    webhook.deleted_at = now
    webhook.active = False
    # A claim already in flight may still finish its send; nothing new is started.
    session.execute(
        sa.update(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook.id, WebhookDelivery.status == DeliveryStatus.PENDING)
        .values(status=DeliveryStatus.DEAD, next_attempt_at=None, last_error="webhook deleted")
    )
    audit.record(session, actor, "webhook.delete", object_type="webhook", object_id=webhook.id,
                 organization_id=webhook.organization_id)
    session.commit()


def list_deliveries(session: Session, actor: Actor, webhook_id: uuid.UUID, status: str | None,
                    cursor: str | None, limit: int | None) -> tuple[list[WebhookDelivery], str | None]:
    webhook = get_webhook(session, actor, webhook_id)
    query = (
        sa.select(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook.id)
        .options(joinedload(WebhookDelivery.event))
    )
    if status is not None:
        query = query.where(WebhookDelivery.status == DeliveryStatus(status))
    return page(session, query, [WebhookDelivery.id], cursor, limit, descending=True)
