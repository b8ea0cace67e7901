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
class IdempotentRequest:
    """A request sent with an ``Idempotency-Key``: who sent it, the key, and what the request was."""

    user_id: uuid.UUID
    key: str
    fingerprint: str


@dataclass(frozen=True)
class Replay:
    """The outcome of the first request with a key: its status and the resource it created. (``body``
    holds the whole first response for keys recorded before resources were referenced.)"""

    status: int
    resource_id: uuid.UUID | None
    body: dict[str, Any] | None = None


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


def claim(session: Session, request: IdempotentRequest) -> IdempotencyRecord | Replay:
    """Claim the key for this request in the caller's transaction, or return the outcome of an identical
    earlier one.

    The claim commits or rolls back with the work it guards: a request that fails leaves the key free for a
    retry, and a second copy of a request still running waits on the key's unique index until the first one
    ends, then replays its outcome."""
    validate_key(request.key)
    record = IdempotencyRecord(user_id=request.user_id, key=request.key, request_fingerprint=request.fingerprint)
    try:
        with session.begin_nested():
            session.add(record)
        return record
    except IntegrityError:
        pass

    existing = session.execute(
        sa.select(IdempotencyRecord).where(IdempotencyRecord.user_id == request.user_id,
                                           IdempotencyRecord.key == request.key)
    ).scalar_one()
    if existing.request_fingerprint != request.fingerprint:
        raise Conflict("This Idempotency-Key was already used for a different request; use a new key")
    if existing.response_status is not None:
        return Replay(existing.response_status, existing.resource_id, existing.response_body)
    # A claim committed without its outcome: only a process that died between claiming in a transaction of its
    # own and finishing the work leaves one. It is taken over once it is clearly abandoned.
    if utcnow() - existing.created_at < STALE_CLAIM:
        raise Conflict("A request with this Idempotency-Key is still being processed; retry shortly")
    taken = session.execute(
        sa.update(IdempotencyRecord)
        .where(IdempotencyRecord.id == existing.id, IdempotencyRecord.created_at == existing.created_at,
               IdempotencyRecord.response_status.is_(None))
        .values(created_at=utcnow())
    ).rowcount  # type: ignore[attr-defined]
    if taken != 1:
        raise Conflict("A request with this Idempotency-Key is still being processed; retry shortly")
    session.refresh(existing)
    return existing


def complete(record: IdempotencyRecord, status: int, resource_id: uuid.UUID) -> None:
    """Record the outcome in the claim; committed by the caller together with the work it describes."""
    record.response_status = status
    record.resource_id = resource_id
    record.completed_at = utcnow()
