"""Audit trail: one row for every create, every read of a referral and every image download."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from referral import unit_of_work
from referral.db import new_id, utcnow
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
    grant = _emergency_mark(session, actor, referral_id)
    if grant is not None:
        event.emergency_access_id = grant
    session.add(event)
    return event


# What ``insert_for_each`` may bind: every column ``record`` sets but the organization, which the statement gives.
_BOUND = ("id", "at", "actor_user_id", "actor_organization_id", "action", "outcome", "object_type", "object_id",
          "referral_id", "ip_address", "user_agent", "details", "emergency_access_id")


def insert_for_each(source: sa.FromClause, **taken: sa.ColumnElement[Any]) -> sa.Insert:
    """An INSERT of the row ``record`` adds for each row of ``source`` (none when it has none), to run inside a
    statement that reads ``source`` too (a data-modifying CTE on PostgreSQL), built once and executed with
    ``insert_parameters``. ``taken`` gives the columns whose values come from ``source`` (the organization, say,
    as expressions over it); every other value is a bound parameter of the column's own type, so it is stored
    exactly as ``record`` stores it."""
    columns = AuditEvent.__table__.c
    bound = [name for name in _BOUND if name not in taken]
    return sa.insert(AuditEvent).from_select(
        [*bound, *taken],
        sa.select(*[sa.bindparam(f"audit_{name}", type_=columns[name].type) for name in bound], *taken.values())
        .select_from(source))


def insert_parameters(session: Session, actor: Actor, action: str, *, object_type: str,
                      object_id: uuid.UUID | None, referral_id: uuid.UUID | None = None) -> dict[str, Any]:
    """The values ``record`` would give the row, for ``insert_for_each``'s statement (which leaves out those it
    takes from its source); the id and time are taken now, as ``record``'s are at the flush."""
    values = _values(actor, action, object_type, object_id, None, referral_id, "success", None)
    values.update(id=new_id(), at=utcnow(), emergency_access_id=_emergency_mark(session, actor, referral_id))
    return {f"audit_{name}": values[name] for name in _BOUND}


def _emergency_mark(session: Session, actor: Actor, referral_id: uuid.UUID | None) -> uuid.UUID | None:
    """The grant a case's audit rows are flagged with when the actor reached it only through emergency access
    (noted by ``access.case_of``)."""
    marks = session.info.get(EMERGENCY_MARKS) or {}
    return marks.get((actor.user_id, referral_id)) if referral_id is not None else None


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
