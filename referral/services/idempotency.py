"""Idempotency keys: a retried request gets the first response, and never does the work twice."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from referral.db import utcnow
from referral.errors import Conflict, ValidationFailed
from referral.models import IdempotencyRecord

# A claim whose request died with its process (no response recorded) is taken over after this long.
STALE_CLAIM = timedelta(minutes=10)
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Replay:
    status: int
    body: dict[str, Any]


def fingerprint(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        encoded = part.encode()
        # length-prefixed so that ("ab", "c") and ("a", "bc") differ
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return digest.hexdigest()


def validate_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise ValidationFailed(
            "Idempotency-Key must be 1 to 255 printable ASCII characters (a UUID is a good choice)",
            {"Idempotency-Key": ["Invalid key."]},
        )
    return key


def claim(session: Session, user_id: uuid.UUID, key: str, request_fingerprint: str
          ) -> IdempotencyRecord | Replay:
    """Claim ``key`` for this request, or return the response stored for an identical earlier one."""
    validate_key(key)
    record = IdempotencyRecord(user_id=user_id, key=key, request_fingerprint=request_fingerprint)
    session.add(record)
    try:
        session.commit()
        return record
    except IntegrityError:
        session.rollback()

    existing = session.execute(
        sa.select(IdempotencyRecord).where(IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key)
    ).scalar_one()
    if existing.request_fingerprint != request_fingerprint:
        raise Conflict("This Idempotency-Key was already used for a different request; use a new key")
    if existing.response_status is not None and existing.response_body is not None:
        return Replay(existing.response_status, existing.response_body)
    if utcnow() - existing.created_at < STALE_CLAIM:
        raise Conflict("A request with this Idempotency-Key is still being processed; retry shortly")
    # Take over an abandoned claim; the conditional update lets only one retry win.
    taken = session.execute(
        sa.update(IdempotencyRecord)
        .where(IdempotencyRecord.id == existing.id, IdempotencyRecord.created_at == existing.created_at,
               IdempotencyRecord.response_status.is_(None))
        .values(created_at=utcnow())
    ).rowcount  # type: ignore[attr-defined]
    session.commit()
    if taken != 1:
        raise Conflict("A request with this Idempotency-Key is still being processed; retry shortly")
    session.refresh(existing)
    return existing


def complete(record: IdempotencyRecord, status: int, body: dict[str, Any]) -> None:
    """Record the response; committed by the caller together with the work it describes."""
    record.response_status = status
    record.response_body = body
    record.completed_at = utcnow()


def release(session: Session, record: IdempotencyRecord) -> None:
    """Forget a claim whose request failed, so the client can retry with the same key."""
    session.rollback()
    session.execute(sa.delete(IdempotencyRecord).where(IdempotencyRecord.id == record.id))
    session.commit()
