"""The conversation on a case: the referring office and the case's reader write to each other.

Who takes part is decided by ``access``: whoever may see the case, less billing (a billing office never reads
clinical conversation). A reader who declined or was replaced no longer sees the case, so no longer sees its
messages (404, as for anyone outside). Every read and every write is audited; messages never change.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from referral.db import utcnow
from referral.errors import ValidationFailed
from referral.models import CaseMessage, CaseRead, Image, Organization, Provider, Referral, User
from referral.models.enums import Role
from referral.services import access, audit, outbox
from referral.services.actor import Actor

MAX_BODY = 4000
# Billing sees codes and claims of a case, never the conversation about the patient.
CONVERSATION_ROLES = (Role.STAFF, Role.DENTIST, Role.SPECIALIST, Role.ORG_ADMIN)
MESSAGE_CREATED = "message.created"


@dataclass(frozen=True)
class MessageView:
    id: uuid.UUID
    author: dict[str, object]
    created_at: datetime
    body: str
    image_id: uuid.UUID | None


def _conversation_case(session: Session, actor: Actor, referral_id: uuid.UUID) -> Referral:
    referral = access.get_referral(session, actor, referral_id)
    access.require_role(actor, *CONVERSATION_ROLES)
    return referral


def _authors(session: Session, messages: list[CaseMessage]) -> dict[uuid.UUID, dict[str, object]]:
    user_ids = {m.author_user_id for m in messages}
    if not user_ids:
        return {}
    rows = session.execute(
        sa.select(User.id, User.role, User.organization_id, Provider.first_name, Provider.last_name,
                  Provider.credentials, Organization.name)
        .outerjoin(Provider, Provider.id == User.provider_id)
        .outerjoin(Organization, Organization.id == User.organization_id)
        .where(User.id.in_(user_ids))
    ).all()
    authors: dict[uuid.UUID, dict[str, object]] = {}
    for user_id, role, organization_id, first, last, credentials, practice in rows:
        if last:
            name = f"{first} {last}" + (f", {credentials}" if credentials else "")
        else:
            name = Role(role).value.replace("_", " ").capitalize()
        authors[user_id] = {"user_id": user_id, "name": name, "role": Role(role).value,
                            "organization_id": organization_id, "practice": practice}
    return authors


def _views(session: Session, messages: list[CaseMessage]) -> list[MessageView]:
    authors = _authors(session, messages)
    return [MessageView(id=m.id, author=authors.get(m.author_user_id, {"user_id": m.author_user_id}),
                        created_at=m.created_at, body=m.body, image_id=m.image_id) for m in messages]


def _read_at(session: Session, user_id: uuid.UUID | None, referral_id: uuid.UUID) -> datetime | None:
    if user_id is None:
        return None
    row = session.get(CaseRead, (user_id, referral_id))
    return row.read_at if row is not None else None


def unread_count(session: Session, user_id: uuid.UUID, referral_id: uuid.UUID) -> int:
    """Messages by others on the case that ``user_id`` has not yet marked as read."""
    query = sa.select(sa.func.count()).select_from(CaseMessage).where(
        CaseMessage.referral_id == referral_id, CaseMessage.author_user_id != user_id)
    read_at = _read_at(session, user_id, referral_id)
    if read_at is not None:
        query = query.where(CaseMessage.created_at > read_at)
    return session.scalar(query) or 0


def unread_by_referral(session: Session, user_id: uuid.UUID, referral_ids: set[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Unread messages per case for one person, for a listed page of cases (one query)."""
    if not referral_ids:
        return {}
    rows = session.execute(
        sa.select(CaseMessage.referral_id, sa.func.count())
        .outerjoin(CaseRead, sa.and_(CaseRead.referral_id == CaseMessage.referral_id, CaseRead.user_id == user_id))
        .where(CaseMessage.referral_id.in_(referral_ids), CaseMessage.author_user_id != user_id,
               sa.or_(CaseRead.read_at.is_(None), CaseMessage.created_at > CaseRead.read_at))
        .group_by(CaseMessage.referral_id)
    ).all()
    return {referral_id: int(count) for referral_id, count in rows}


def list_messages(session: Session, actor: Actor, referral_id: uuid.UUID) -> dict[str, object]:
    """The whole conversation, oldest first, with how many of its messages are new to the reader of it.
    Reading does not mark anything read; ``mark_read`` does."""
    referral = _conversation_case(session, actor, referral_id)
    messages = list(session.scalars(
        sa.select(CaseMessage).where(CaseMessage.referral_id == referral.id).order_by(CaseMessage.id)))
    audit.record(session, actor, "message.read", object_type="referral", object_id=referral.id,
                 organization_id=referral.organization_id, referral_id=referral.id,
                 details={"count": len(messages)})
    unread = unread_count(session, actor.user_id, referral.id) if actor.user_id else 0
    read_at = _read_at(session, actor.user_id, referral.id)
    views = _views(session, messages)
    session.commit()
    return {"items": views, "unread": unread, "read_at": read_at}


def post_message(session: Session, actor: Actor, referral_id: uuid.UUID, body: str,
                 image_id: uuid.UUID | None) -> MessageView:
    referral = _conversation_case(session, actor, referral_id)
    _, user_id = access.membership(actor)
    access.require_regular_access(session, actor, referral)
    text = body.strip()
    if not text:
        raise ValidationFailed("The message is empty", {"body": ["Write a message before sending it."]})
    if len(text) > MAX_BODY:
        raise ValidationFailed("The message is too long",
                               {"body": [f"A message can be at most {MAX_BODY} characters."]})
    if image_id is not None:
        image = session.get(Image, image_id)
        if image is None or image.referral_id != referral.id or image.is_deleted:
            raise ValidationFailed("The image is not one of this case's images",
                                   {"image_id": ["Choose an image of this case."]})
    now = utcnow()
    message = CaseMessage(referral_id=referral.id, author_user_id=user_id,
                          author_organization_id=actor.organization_id, image_id=image_id, body=text, created_at=now)
    session.add(message)
    session.flush()
    # The author has read everything up to their own message.
    _mark(session, user_id, referral.id, now)
    audit.record(session, actor, "message.create", object_type="message", object_id=message.id,
                 organization_id=referral.organization_id, referral_id=referral.id,
                 details={"image_id": str(image_id) if image_id else None})
    reader_org = None
    if referral.assigned_provider_id is not None:
        provider = session.get(Provider, referral.assigned_provider_id)
        reader_org = provider.organization_id if provider is not None else None
    outbox.enqueue(session, organization_ids=[o for o in (referral.organization_id, reader_org) if o is not None],
                   event_type=MESSAGE_CREATED,
                   data={"referral_id": str(referral.id), "message_id": str(message.id),
                         "author_user_id": str(user_id), "author_organization_id": str(actor.organization_id),
                         "image_id": str(image_id) if image_id else None,
                         "assigned_provider_id": str(referral.assigned_provider_id)
                         if referral.assigned_provider_id else None})
    view = _views(session, [message])[0]
    session.commit()
    return view


def _mark(session: Session, user_id: uuid.UUID, referral_id: uuid.UUID, at: datetime) -> None:
    row = session.get(CaseRead, (user_id, referral_id))
    if row is None:
        session.add(CaseRead(user_id=user_id, referral_id=referral_id, read_at=at))
    elif row.read_at < at:
        row.read_at = at


def mark_read(session: Session, actor: Actor, referral_id: uuid.UUID) -> dict[str, object]:
    """Everything on the case up to now is no longer new to this person: its messages and its changes."""
    referral = _conversation_case(session, actor, referral_id)
    _, user_id = access.membership(actor)
    now = utcnow()
    _mark(session, user_id, referral.id, now)
    audit.record(session, actor, "message.mark_read", object_type="referral", object_id=referral.id,
                 organization_id=referral.organization_id, referral_id=referral.id)
    session.commit()
    return {"referral_id": referral.id, "read_at": now, "unread": 0}
