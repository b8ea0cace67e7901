"""What is new to a person: the cases that need their attention on the pages, and which emails they want.

A case needs the referring office's attention when, since the person last opened it, its report was signed, a
retake was asked for, a reader declined it or no reader could be found, or the reader wrote to them. A reader's
cases need attention when the office wrote to them. "Last opened" is the person's read mark on the case
(``CaseRead``), set when the case page is opened or through ``POST /referrals/{id}/messages/read``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from referral.db import utcnow
from referral.errors import ValidationFailed
from referral.models import CaseMessage, CaseRead, NotificationPreference, Referral, ReferralEvent
from referral.models.enums import ReferralStatus, Role
from referral.services import access, audit
from referral.services.actor import Actor


@dataclass(frozen=True)
class EmailKind:
    name: str
    column: str
    default: bool
    description: str


# The emails a person can choose. A reader is emailed when a case is routed to them unless they turn it off (as
# before preferences existed); everything else is off until the person turns it on.
EMAIL_KINDS = (
    EmailKind("routed", "email_routed", True, "a case is routed to you to read"),
    EmailKind("report_signed", "email_report_signed", False, "the report on one of your practice's cases is signed"),
    EmailKind("retake_requested", "email_retake_requested", False, "a reader asks your practice for retakes"),
    EmailKind("declined", "email_declined", False, "a reader declines one of your practice's cases, or no reader "
                                                   "can be found for it"),
    EmailKind("message", "email_message", False, "the other side writes on a case you take part in"),
    EmailKind("access_alerts", "email_access_alerts", True, "(org admins) someone uses emergency access to a "
                                                            "case of or routed to your practice, or a login of "
                                                            "your practice is made or its role or provider "
                                                            "link changes"),
)
KINDS_BY_NAME = {kind.name: kind for kind in EMAIL_KINDS}

# Changes that the referring office should notice, by the action recorded on the case's timeline.
ATTENTION_ACTIONS = {"sign_report": "report", "request_retake": "retake", "decline": "declined",
                     "image_unreadable": "unreadable"}
ATTENTION_LABELS = {"report": "New report", "retake": "Retake requested", "declined": "Needs a reader",
                    "unreadable": "Image unreadable", "messages": "New message"}
# An old change the person never opened is not news: only the last 30 days count.
ATTENTION_WINDOW = timedelta(days=30)
OFFICE_ROLES = (Role.STAFF, Role.DENTIST, Role.ORG_ADMIN)


def preference_values(row: NotificationPreference | None) -> dict[str, bool]:
    values: dict[str, bool] = {}
    for kind in EMAIL_KINDS:
        stored = getattr(row, kind.column) if row is not None else None
        values[kind.name] = kind.default if stored is None else bool(stored)
    return values


def get_preferences(session: Session, actor: Actor, *, email_enabled: bool) -> dict[str, Any]:
    _, user_id = access.membership(actor)
    values = preference_values(session.get(NotificationPreference, user_id))
    return {"email": values, "email_enabled": email_enabled}


def update_preferences(session: Session, actor: Actor, wanted: dict[str, bool], *,
                       email_enabled: bool) -> dict[str, Any]:
    _, user_id = access.membership(actor)
    unknown = sorted(set(wanted) - set(KINDS_BY_NAME))
    if unknown:  # the schema refuses these first; kept so the service never stores a field it does not know
        raise ValidationFailed("Unknown email choices", {name: ["Unknown email choice."] for name in unknown})
    row = session.get(NotificationPreference, user_id)
    current = preference_values(row)
    current.update(wanted)
    if row is None:
        row = NotificationPreference(user_id=user_id)
        session.add(row)
    for kind in EMAIL_KINDS:
        setattr(row, kind.column, current[kind.name])
    row.updated_at = utcnow()
    audit.record(session, actor, "notifications.update", object_type="user", object_id=user_id,
                 organization_id=actor.organization_id, details={"email": current})
    session.commit()
    return {"email": current, "email_enabled": email_enabled}


def _office_events(session: Session, actor: Actor, referral_ids: set[uuid.UUID] | None) -> list[tuple[Any, ...]]:
    if actor.role not in OFFICE_ROLES or actor.organization_id is None or actor.user_id is None:
        return []
    query = (
        sa.select(ReferralEvent.referral_id, ReferralEvent.action, ReferralEvent.to_status)
        .join(Referral, Referral.id == ReferralEvent.referral_id)
        .outerjoin(CaseRead, sa.and_(CaseRead.referral_id == ReferralEvent.referral_id,
                                     CaseRead.user_id == actor.user_id))
        .where(Referral.organization_id == actor.organization_id,
               sa.or_(ReferralEvent.action.in_(list(ATTENTION_ACTIONS)),
                      ReferralEvent.to_status == ReferralStatus.UNASSIGNED.value),
               ReferralEvent.at > utcnow() - ATTENTION_WINDOW,
               sa.or_(CaseRead.read_at.is_(None), ReferralEvent.at > CaseRead.read_at))
    )
    if referral_ids is not None:
        query = query.where(ReferralEvent.referral_id.in_(referral_ids))
    return list(session.execute(query).all())


def _unread_messages(session: Session, actor: Actor, referral_ids: set[uuid.UUID] | None) -> dict[uuid.UUID, int]:
    if actor.role not in (*OFFICE_ROLES, *access.READER_ROLES) or actor.user_id is None:
        return {}
    query = (
        sa.select(CaseMessage.referral_id, sa.func.count())
        .join(Referral, Referral.id == CaseMessage.referral_id)
        .outerjoin(CaseRead, sa.and_(CaseRead.referral_id == CaseMessage.referral_id,
                                     CaseRead.user_id == actor.user_id))
        .where(access.referral_visibility(actor), CaseMessage.author_user_id != actor.user_id,
               sa.or_(CaseRead.read_at.is_(None), CaseMessage.created_at > CaseRead.read_at))
        .group_by(CaseMessage.referral_id)
    )
    if referral_ids is not None:
        query = query.where(CaseMessage.referral_id.in_(referral_ids))
    return {referral_id: int(count) for referral_id, count in session.execute(query).all()}


def attention(session: Session, actor: Actor, referral_ids: set[uuid.UUID] | None = None
              ) -> dict[uuid.UUID, list[str]]:
    """The cases new to this person and why, as short labels (``New report``, ``New message``...). With
    ``referral_ids``, only those cases are looked at (a listed page)."""
    if referral_ids is not None and not referral_ids:
        return {}
    reasons: dict[uuid.UUID, set[str]] = {}
    for referral_id, action, to_status in _office_events(session, actor, referral_ids):
        reason = ATTENTION_ACTIONS.get(action) or ("declined" if to_status == ReferralStatus.UNASSIGNED.value
                                                   else None)
        if reason:
            reasons.setdefault(referral_id, set()).add(reason)
    for referral_id in _unread_messages(session, actor, referral_ids):
        reasons.setdefault(referral_id, set()).add("messages")
    order = list(ATTENTION_LABELS)
    return {referral_id: [ATTENTION_LABELS[r] for r in sorted(found, key=order.index)]
            for referral_id, found in reasons.items()}
