"""Audit trail: one row for every create, every read of a referral and every image download."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from referral.models import AuditEvent
from referral.services.actor import Actor


def record(
    session: Session,
    actor: Actor,
    action: str,
    *,
    object_type: str,
    object_id: uuid.UUID | None,
    organization_id: uuid.UUID | None,
    referral_id: uuid.UUID | None = None,
    outcome: str = "success",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit row to the caller's transaction. ``details`` carries ids and codes, never PHI."""
    event = AuditEvent(
        actor_user_id=actor.user_id,
        actor_organization_id=actor.organization_id,
        organization_id=organization_id,
        action=action,
        outcome=outcome,
        object_type=object_type,
        object_id=object_id,
        referral_id=referral_id,
        ip_address=actor.ip_address,
        user_agent=(actor.user_agent or "")[:200] or None,
        details=details,
    )
    session.add(event)
    return event


def visible_events(actor: Actor, referral_id: uuid.UUID | None = None, user_id: uuid.UUID | None = None,
                   since: datetime | None = None, until: datetime | None = None) -> sa.Select[Any]:
    """An organization admin sees what happened to its records and what its own people did."""
    query = sa.select(AuditEvent)
    if not actor.is_platform_admin:
        query = query.where(
            sa.or_(
                AuditEvent.organization_id == actor.organization_id,
                AuditEvent.actor_organization_id == actor.organization_id,
            )
        )
    if referral_id is not None:
        query = query.where(AuditEvent.referral_id == referral_id)
    if user_id is not None:
        query = query.where(AuditEvent.actor_user_id == user_id)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if until is not None:
        query = query.where(AuditEvent.at < until)
    return query
