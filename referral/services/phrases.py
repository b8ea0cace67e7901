"""A reader's reusable phrases: short texts the reader inserts into report fields from the case page.

Each phrase belongs to one person and is seen by nobody else: another person's phrase id answers 404, as an id
that does not exist (to anyone, whatever their role). Only readers (the roles that read cases) keep phrases. A
phrase is the reader's wording, not a patient's record; adding and deleting one is still audited, by id only,
never with its text.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Session

from referral.errors import Conflict, NotFound, ValidationFailed
from referral.models import ReaderPhrase
from referral.services import access, audit
from referral.services.actor import Actor

MAX_TEXT = 500
MAX_PHRASES = 100


def _owner(actor: Actor) -> uuid.UUID:
    access.require_role(actor, *access.READER_ROLES)
    _, user_id = access.membership(actor)
    return user_id


def list_phrases(session: Session, actor: Actor) -> list[ReaderPhrase]:
    """The signed-in reader's phrases, oldest first (the order they were added)."""
    user_id = _owner(actor)
    rows = list(session.scalars(sa.select(ReaderPhrase).where(ReaderPhrase.user_id == user_id)
                                .order_by(ReaderPhrase.created_at, ReaderPhrase.id)))
    session.commit()
    return rows


def add_phrase(session: Session, actor: Actor, text: str) -> ReaderPhrase:
    user_id = _owner(actor)
    text = text.strip()
    if not text:
        raise ValidationFailed("The phrase is empty", {"text": ["Write the phrase."]})
    if len(text) > MAX_TEXT:
        raise ValidationFailed("The phrase is too long", {"text": [f"At most {MAX_TEXT} characters."]})
    existing = list(session.scalars(sa.select(ReaderPhrase.text).where(ReaderPhrase.user_id == user_id)))
    if text in existing:
        raise Conflict("You already have this phrase", {"text": ["You already have this phrase."]})
    if len(existing) >= MAX_PHRASES:
        raise Conflict(f"You have {MAX_PHRASES} phrases, the most one reader keeps; delete one first",
                       {"text": [f"At most {MAX_PHRASES} phrases; delete one first."]})
    phrase = ReaderPhrase(user_id=user_id, text=text)
    session.add(phrase)
    session.flush()
    audit.record(session, actor, "phrase.create", object_type="reader_phrase", object_id=phrase.id,
                 organization_id=actor.organization_id)
    session.commit()
    return phrase


def delete_phrase(session: Session, actor: Actor, phrase_id: uuid.UUID) -> None:
    """Delete one of the reader's phrases. Anyone else, whatever their role, is answered as for an id that does
    not exist: they have no phrase of that id."""
    phrase = session.get(ReaderPhrase, phrase_id)
    if phrase is None or actor.user_id is None or phrase.user_id != actor.user_id \
            or actor.role not in access.READER_ROLES:
        raise NotFound("Phrase not found")
    session.delete(phrase)
    audit.record(session, actor, "phrase.delete", object_type="reader_phrase", object_id=phrase_id,
                 organization_id=actor.organization_id)
    session.commit()
