"""Notices to a practice's org admins about access to its records: a member's (or an outsider's) emergency access
to a case, a login made, a role changed, a provider link changed, a provider link asked for, confirmed or
refused. Each admin gets their own row, shown on the
notices page and at ``GET /api/v1/me/notices``, and emailed by the worker when email is on and the admin keeps
the "access alerts" choice (on by default). Rows hold ids and codes, never PHI or the reason text."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from referral.db import utcnow
from referral.models import AdminNotice, User
from referral.models.enums import Role
from referral.services import access, audit
from referral.services.actor import Actor

EMERGENCY_ACCESS = "emergency_access"
USER_CREATED = "user_created"
ACCESS_CHANGE = "access_change"
LINK_REQUESTED = "link_requested"
LINK_CONFIRMED = "link_confirmed"
LINK_REFUSED = "link_refused"
KINDS = (EMERGENCY_ACCESS, USER_CREATED, ACCESS_CHANGE, LINK_REQUESTED, LINK_CONFIRMED, LINK_REFUSED)
LABELS = {
    EMERGENCY_ACCESS: "Emergency access to a case",
    USER_CREATED: "New login",
    ACCESS_CHANGE: "Role or provider link changed",
    LINK_REQUESTED: "New login waiting for a provider's confirmation",
    LINK_CONFIRMED: "Provider confirmed a new login",
    LINK_REFUSED: "Provider refused a new login",
}


def notify_admins(session: Session, actor: Actor, organization_ids: Iterable[uuid.UUID], kind: str, *,
                  subject_user_id: uuid.UUID | None = None, referral_id: uuid.UUID | None = None,
                  grant_id: uuid.UUID | None = None, details: dict[str, Any] | None = None) -> int:
    """One notice per active org admin of each practice, the actor and the subject excepted (an admin is not told
    of their own change: the others are). Added to the caller's transaction; returns how many were added."""
    organizations = list(dict.fromkeys(organization_ids))
    if not organizations:
        return 0
    query = sa.select(User.id, User.organization_id).where(
        User.organization_id.in_(organizations), User.role == Role.ORG_ADMIN, User.active.is_(True))
    # Neither the actor nor the login the notice is about is told (a new admin is not told of their own making).
    for excluded in (actor.user_id, subject_user_id):
        if excluded is not None:
            query = query.where(User.id != excluded)
    added = 0
    for admin_id, organization_id in session.execute(query.order_by(User.id)).all():
        session.add(AdminNotice(user_id=admin_id, organization_id=organization_id, kind=kind,
                                actor_user_id=actor.user_id, subject_user_id=subject_user_id,
                                referral_id=referral_id, grant_id=grant_id, details=details))
        added += 1
    return added


def _own(actor: Actor) -> uuid.UUID:
    _, user_id = access.membership(actor)
    access.require_role(actor, Role.ORG_ADMIN)
    return user_id


def list_notices(session: Session, actor: Actor, *, unread_only: bool = False) -> sa.Select[Any]:
    """The signed-in org admin's notices, newest first (for paging)."""
    user_id = _own(actor)
    query = sa.select(AdminNotice).where(AdminNotice.user_id == user_id)
    if unread_only:
        query = query.where(AdminNotice.read_at.is_(None))
    return query


def unread_count(session: Session, user_id: uuid.UUID) -> int:
    return int(session.scalar(sa.select(sa.func.count()).select_from(AdminNotice)
                              .where(AdminNotice.user_id == user_id, AdminNotice.read_at.is_(None))) or 0)


def mark_read(session: Session, actor: Actor) -> int:
    """Mark all of the admin's notices read; returns how many were unread."""
    user_id = _own(actor)
    result = session.execute(sa.update(AdminNotice)
                             .where(AdminNotice.user_id == user_id, AdminNotice.read_at.is_(None))
                             .values(read_at=utcnow()))
    count = int(getattr(result, "rowcount", 0) or 0)
    audit.record(session, actor, "notices.read", object_type="user", object_id=user_id,
                 organization_id=actor.organization_id, details={"count": count})
    session.commit()
    return count
