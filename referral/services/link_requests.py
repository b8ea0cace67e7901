"""Linking a new login to a provider who already has one, with that provider's own confirmation.

An org admin may not quietly give a provider a second reading login (it would read the cases routed to that
provider): that is a platform admin's act, or it waits for the provider. With ``request_link_confirmation`` the
org admin's new login is made **inactive and linked to no provider**, and a request is stored. A reading login
(dentist or specialist) already linked to the provider sees it and confirms it (the new login is linked and
activated) or refuses it (nothing changes: the login stays inactive and unlinked). Requests expire after
``LINK_REQUEST_DAYS``. Every step is audited and told to the practice's other org admins."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from referral.db import utcnow
from referral.errors import Conflict, NotFound
from referral.models import ProviderLinkRequest, User
from referral.models.enums import Role
from referral.services import access, audit, auth, notices
from referral.services.actor import Actor

LINK_REQUEST_DAYS = 7
PENDING, CONFIRMED, REFUSED = "pending", "confirmed", "refused"
ANSWERER_ROLES = (Role.DENTIST, Role.SPECIALIST)


def status_of(request: ProviderLinkRequest) -> str:
    """pending, confirmed, refused or expired (a pending request past its time)."""
    if request.status == PENDING and request.expires_at <= utcnow():
        return "expired"
    return request.status


def open_request(session: Session, actor: Actor, user: User, provider_id: uuid.UUID, role: Role,
                 other_logins: list[str], *, days: int = LINK_REQUEST_DAYS) -> ProviderLinkRequest:
    """Store the request for ``user`` (already added, inactive, unlinked) in the caller's transaction, audit it
    and tell the practice's other admins. The caller commits."""
    organization_id = cast(uuid.UUID, user.organization_id)
    _, requester_id = access.membership(actor)
    request = ProviderLinkRequest(organization_id=organization_id, provider_id=provider_id, user_id=user.id,
                                  role=role.value, requested_by_user_id=requester_id, status=PENDING,
                                  expires_at=utcnow() + timedelta(days=days))
    session.add(request)
    session.flush()
    details: dict[str, Any] = {"link_request_id": str(request.id), "provider_id": str(provider_id),
                               "role": role.value, "provider_other_logins": other_logins}
    audit.record(session, actor, "provider_link.request", object_type="provider_link_request",
                 object_id=request.id, organization_id=organization_id, details=details)
    notices.notify_admins(session, actor, [organization_id], notices.LINK_REQUESTED, subject_user_id=user.id,
                          details=details)
    return request


def may_answer(actor: Actor) -> bool:
    """Only a dentist or specialist login of a practice, linked to a provider, has requests to answer."""
    return (actor.organization_id is not None and actor.user_id is not None and actor.provider_id is not None
            and actor.role in ANSWERER_ROLES)


def _answerable(actor: Actor) -> sa.Select[Any]:
    """Requests the actor may see and answer: those for the provider the actor reads as, in the actor's own
    practice, for a login other than the actor's."""
    if not may_answer(actor):
        # Platform admins, other roles, logins linked to no provider: nothing to see (404 on an answer).
        return sa.select(ProviderLinkRequest).where(sa.false())
    return sa.select(ProviderLinkRequest).where(
        ProviderLinkRequest.provider_id == actor.provider_id,
        ProviderLinkRequest.organization_id == actor.organization_id,
        ProviderLinkRequest.user_id != actor.user_id)


def _pending(actor: Actor) -> sa.Select[Any]:
    return _answerable(actor).where(ProviderLinkRequest.status == PENDING, ProviderLinkRequest.expires_at > utcnow())


def list_pending(session: Session, actor: Actor) -> list[ProviderLinkRequest]:
    """The pending, unexpired requests for the provider the signed-in login reads as, oldest first. Anyone else
    (other roles, logins linked to no provider) gets an empty list."""
    query = _pending(actor).order_by(ProviderLinkRequest.created_at, ProviderLinkRequest.id)
    return list(session.scalars(query))


def count_pending(session: Session, actor: Actor) -> int:
    """How many requests ``list_pending`` would show, for the count in the pages' header (no query for those
    who have none to answer)."""
    if not may_answer(actor):
        return 0
    return int(session.scalar(sa.select(sa.func.count()).select_from(_pending(actor).subquery())) or 0)


def get_visible(session: Session, actor: Actor, request_id: uuid.UUID) -> ProviderLinkRequest | None:
    """One request the actor may see and answer, whatever its status (to show how it was answered); None for a
    request of another provider, practice or login, as for one that does not exist."""
    return session.scalar(_answerable(actor).where(ProviderLinkRequest.id == request_id))


def emails_of(session: Session, requests: list[ProviderLinkRequest]) -> dict[uuid.UUID, str]:
    """The emails of the new logins, of who asked and of who answered, for showing a request to the provider."""
    ids = ({r.user_id for r in requests} | {r.requested_by_user_id for r in requests}
           | {r.answered_by_user_id for r in requests if r.answered_by_user_id is not None})
    if not ids:
        return {}
    rows = session.execute(sa.select(User.id, User.email).where(User.id.in_(ids))).all()
    return {row.id: row.email for row in rows}


def _get_for_answer(session: Session, actor: Actor, request_id: uuid.UUID) -> ProviderLinkRequest:
    request = session.scalar(_answerable(actor).where(ProviderLinkRequest.id == request_id)
                             .with_for_update())
    if request is None:
        raise NotFound("Link request not found")
    status = status_of(request)
    if status == "expired":
        raise Conflict("This link request has expired; the practice's admin can ask again",
                       {"status": ["expired"]})
    if status != PENDING:
        raise Conflict(f"This link request was already {status}", {"status": [status]})
    return request


def _answer(session: Session, actor: Actor, request: ProviderLinkRequest, status: str) -> None:
    request.status = status
    request.answered_at = utcnow()
    request.answered_by_user_id = actor.user_id
    details = {"link_request_id": str(request.id), "provider_id": str(request.provider_id), "role": request.role,
               "requested_by": str(request.requested_by_user_id)}
    audit.record(session, actor, f"provider_link.{'confirm' if status == CONFIRMED else 'refuse'}",
                 object_type="provider_link_request", object_id=request.id,
                 organization_id=request.organization_id, details=details)
    notices.notify_admins(session, actor, [request.organization_id],
                          notices.LINK_CONFIRMED if status == CONFIRMED else notices.LINK_REFUSED,
                          subject_user_id=request.user_id, details=details)


def confirm(session: Session, actor: Actor, request_id: uuid.UUID) -> ProviderLinkRequest:
    """The provider agrees: the new login is linked to them and may sign in. A login deactivated or relinked
    by an admin since the request was made cannot be confirmed (409)."""
    request = _get_for_answer(session, actor, request_id)
    user = session.get(User, request.user_id)
    if user is None or user.provider_id is not None or user.role.value != request.role:
        raise Conflict("The login of this request has changed since it was made; the practice's admin can ask "
                       "again", {"status": ["changed"]})
    user.provider_id = request.provider_id
    user.active = True
    auth.forget_user(session, user.id)
    _answer(session, actor, request, CONFIRMED)
    audit.record(session, actor, "user.update", object_type="user", object_id=user.id,
                 organization_id=user.organization_id,
                 details={"changes": {"provider_id": {"from": None, "to": str(request.provider_id)},
                                      "active": {"from": False, "to": True}},
                          "link_request_id": str(request.id)})
    session.commit()
    return request


def refuse(session: Session, actor: Actor, request_id: uuid.UUID) -> ProviderLinkRequest:
    """The provider declines: the request is closed and the new login stays inactive and unlinked."""
    request = _get_for_answer(session, actor, request_id)
    _answer(session, actor, request, REFUSED)
    session.commit()
    return request
