"""Audit trail: one row for every create, every read of a referral and every image download."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from referral import unit_of_work
from referral.models import AuditEvent
from referral.services.actor import Actor

# The session.info key access.case_of notes emergency grants under (kept here too: access imports this module).
EMERGENCY_MARKS = "emergency_access"


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
    event = AuditEvent(**_values(actor, action, object_type, object_id, organization_id, referral_id, outcome,
                                 details))
    # A case the actor reached only through emergency access (noted by ``access.case_of``): the row says so.
    marks = session.info.get(EMERGENCY_MARKS) or {}
    if referral_id is not None and (actor.user_id, referral_id) in marks:
        event.emergency_access_id = marks[(actor.user_id, referral_id)]
    session.add(event)
    return event


def record_denied(
    session: Session,
    actor: Actor,
    action: str,
    *,
    object_type: str,
    object_id: uuid.UUID | None,
) -> None:
    """Record a refused attempt so that it is kept however the caller's transaction ends: in that
    transaction if it commits, otherwise in a transaction of its own once it has rolled back (the
    refusal itself usually ends the request with an error).

    The row holds only what the actor sent and the actor's own practice: never the target's practice or
    the records it belongs to, which would tell the actor's admins that the id exists and whose it is. A
    refused id that exists and one that does not are recorded alike."""
    # A referral's id is what the actor sent, so it is kept as the row's referral; never another record's parent.
    referral_id = object_id if object_type == "referral" else None
    values = _values(actor, action, object_type, object_id, actor.organization_id, referral_id, "denied", None)
    session.add(AuditEvent(**values))

    def write_alone() -> None:
        unit_of_work.run_alone(session, lambda own: own.add(AuditEvent(**values)))

    unit_of_work.on_rollback(session, write_alone, describe=f"record the denied {action}")


def _values(actor: Actor, action: str, object_type: str, object_id: uuid.UUID | None,
            organization_id: uuid.UUID | None, referral_id: uuid.UUID | None, outcome: str,
            details: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "actor_user_id": actor.user_id,
        "actor_organization_id": actor.organization_id,
        "organization_id": organization_id,
        "action": action,
        "outcome": outcome,
        "object_type": object_type,
        "object_id": object_id,
        "referral_id": referral_id,
        "ip_address": actor.ip_address,
        "user_agent": (actor.user_agent or "")[:200] or None,
        "details": details,
    }


def visible_events(actor: Actor, referral_id: uuid.UUID | None = None, user_id: uuid.UUID | None = None,
                   since: datetime | None = None, until: datetime | None = None,
                   emergency: bool | None = None) -> sa.Select[Any]:
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
    if emergency is not None:
        flagged = AuditEvent.emergency_access_id.is_not(None)
        query = query.where(flagged if emergency else ~flagged)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if until is not None:
        query = query.where(AuditEvent.at < until)
    return query
