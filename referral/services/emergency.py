"""Emergency ("break-glass") access: a dentist or specialist opens, for a limited time, a case within their
practice's reach that they are not assigned to, stating why.

Who may open which case (docs/security.md, "Emergency access"):

- a **dentist or specialist** (a login linked to a provider), never staff, billing or an org admin;
- on a case **routed to their own practice**: the provider the case is assigned to now belongs to the same
  practice as the person (a colleague covering for the assigned reader). The referring practice's own dentists
  already see all of its cases, so they need no grant (409);
- a case of any other practice, or one no longer routed to theirs, is not found (404), whatever the person's role,
  exactly as an id that does not exist, and the attempt is audited as denied.

A grant lasts ``minutes`` (EMERGENCY_ACCESS_MINUTES, 60 by default). While it lasts, the case reads through the
ordinary routes (referral, images, previews, report, messages, documents) and every audit row of those reads
carries the grant's id (``emergency_access_id``); acting on the case (messages, report, retakes) still needs the
ordinary right. Opening the case notifies the org admins of both the person's practice and the referring practice.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from referral.errors import Conflict, Forbidden, ValidationFailed
from referral.models import EmergencyAccess, Provider, Referral
from referral.models.enums import Role
from referral.services import access, audit, notices
from referral.services.actor import Actor
from referral.services.pagination import page

DEFAULT_MINUTES = 60
REASON_MIN_LENGTH = 15
REASON_MAX_LENGTH = 1000
GRANT_ROLES = (Role.DENTIST, Role.SPECIALIST)


def _within_reach(session: Session, actor: Actor, referral: Referral) -> bool:
    """The case belongs to the actor's practice or is routed, right now, to a provider of it."""
    if referral.organization_id == actor.organization_id:
        return True
    if referral.assigned_provider_id is None:
        return False
    provider = session.get(Provider, referral.assigned_provider_id)
    return provider is not None and provider.organization_id == actor.organization_id


def check_reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if len(text) < REASON_MIN_LENGTH:
        raise ValidationFailed("Say why you need this case now",
                               {"reason": [f"At least {REASON_MIN_LENGTH} characters."]})
    if len(text) > REASON_MAX_LENGTH:
        raise ValidationFailed("The reason is too long", {"reason": [f"At most {REASON_MAX_LENGTH} characters."]})
    return text


def open_case(session: Session, actor: Actor, referral_id: uuid.UUID, reason: str | None, *,
              minutes: int = DEFAULT_MINUTES) -> EmergencyAccess:
    """Grant the actor emergency access to the case (201), or refuse: 404 outside the practice's reach, 403 for a
    role that cannot hold a grant on a case it can see, 409 when the actor sees the case already."""
    organization_id, user_id = access.membership(actor)
    text = check_reason(reason)
    referral = session.get(Referral, referral_id)
    if referral is None or not _within_reach(session, actor, referral):
        raise access.deny(session, actor, "referral", referral_id)
    sees = access.sees_without_grant(session, actor, referral.id)
    if actor.role not in GRANT_ROLES or actor.provider_id is None:
        if not sees:
            raise access.deny(session, actor, "referral", referral_id)
        raise Forbidden("Only a dentist or specialist can open a case in an emergency")
    if sees:
        raise Conflict("You can already see this case; emergency access is not needed",
                       {"referral_id": ["Already visible to you."]})
    start = access.now()
    grant = EmergencyAccess(referral_id=referral.id, user_id=user_id, organization_id=organization_id,
                            case_organization_id=referral.organization_id, reason=text, starts_at=start,
                            expires_at=start + timedelta(minutes=minutes))
    session.add(grant)
    session.flush()
    event = audit.record(session, actor, "emergency_access.grant", object_type="referral", object_id=referral.id,
                         organization_id=referral.organization_id, referral_id=referral.id,
                         details={"grant_id": str(grant.id), "minutes": minutes,
                                  "expires_at": grant.expires_at.isoformat()})
    event.emergency_access_id = grant.id
    notices.notify_admins(session, actor, [organization_id, referral.organization_id], notices.EMERGENCY_ACCESS,
                          subject_user_id=user_id, referral_id=referral.id, grant_id=grant.id,
                          details={"expires_at": grant.expires_at.isoformat(), "minutes": minutes})
    session.commit()
    return grant


def list_grants(session: Session, actor: Actor, *, active_only: bool = True, referral_id: uuid.UUID | None = None,
                cursor: str | None = None, limit: int | None = None) -> tuple[list[EmergencyAccess], str | None]:
    """A page of the grants an org admin's practice is party to (its members' grants, and grants on its cases),
    or a platform admin's view of all; a dentist or specialist sees their own. Others: 403. The reasons are the
    people's own words, so the listing is audited."""
    items, next_cursor = page(session, _grants(actor, active_only, referral_id), [EmergencyAccess.id], cursor,
                              limit, descending=True)
    audit.record(session, actor, "emergency_access.list", object_type="emergency_access", object_id=None,
                 organization_id=actor.organization_id,
                 details={"count": len(items), "active_only": active_only,
                          "referral_id": str(referral_id) if referral_id else None})
    session.commit()
    return items, next_cursor


def _grants(actor: Actor, active_only: bool, referral_id: uuid.UUID | None) -> sa.Select[Any]:
    query = sa.select(EmergencyAccess)
    if actor.is_platform_admin:
        pass
    elif actor.role == Role.ORG_ADMIN and actor.organization_id is not None:
        query = query.where(sa.or_(EmergencyAccess.organization_id == actor.organization_id,
                                   EmergencyAccess.case_organization_id == actor.organization_id))
    elif actor.role in GRANT_ROLES and actor.user_id is not None:
        query = query.where(EmergencyAccess.user_id == actor.user_id)
    else:
        raise Forbidden("Emergency access grants are listed for org admins, and for the person holding them")
    if active_only:
        moment = access.now()
        query = query.where(EmergencyAccess.starts_at <= moment, EmergencyAccess.expires_at > moment)
    if referral_id is not None:
        query = query.where(EmergencyAccess.referral_id == referral_id)
    return query


def is_active(grant: EmergencyAccess) -> bool:
    moment = access.now()
    return grant.starts_at <= moment < grant.expires_at
