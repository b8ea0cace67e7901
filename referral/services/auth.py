"""Bearer tokens: random, shown once, stored as SHA-256.

Checking a token costs two SELECTs (the token, its user), so a token that checks out is remembered in the process
for a few seconds (``API_TOKEN_CACHE_SECONDS``, 30 by default; 0 turns it off), keyed by the token's hash. What is
remembered is only what a request needs to know who is asking: the user's id, practice, role and provider, and
the token's own expiry, which is checked on every use. Revoking the token, and changing or deactivating its user,
forget the entry at once in the process that made the change (when the change is made and again once it is
committed); every other process sees the change when its entry runs out, within the cache's lifetime.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from referral import unit_of_work
from referral.db import utcnow
from referral.models import ApiToken, User

TOKEN_PREFIX = "rfl_"  # noqa: S105 - a public marker that makes leaked tokens easy to scan for
# Recording every use would turn each read into a write; minute-level precision is enough to see
# which tokens are alive.
_LAST_USED_RESOLUTION = timedelta(minutes=5)
DEFAULT_TOKEN_CACHE_SECONDS = 30.0
# Entries kept at most; past it the cache starts over (each live token costs two SELECTs once more).
_CACHE_MAX_ENTRIES = 10_000


def hash_token(token: str) -> str:
    # A 256-bit random token needs no slow hash: guessing it is infeasible either way.
    return hashlib.sha256(token.encode()).hexdigest()


DEFAULT_TOKEN_DAYS = 90


@dataclass(frozen=True)
class TokenUser:
    """Who a token speaks for: what a request needs to build its actor, and no more."""

    id: uuid.UUID
    organization_id: uuid.UUID | None
    role: str
    provider_id: uuid.UUID | None


@dataclass(frozen=True)
class _Entry:
    user: TokenUser
    token_id: uuid.UUID
    token_expires_at: datetime | None
    fresh_until: float  # time.monotonic()


class TokenCache:
    """Tokens that checked out recently, by hash, in this process."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def get(self, token_hash: str, now: datetime) -> TokenUser | None:
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        if time.monotonic() >= entry.fresh_until or (
                entry.token_expires_at is not None and entry.token_expires_at <= now):
            with self._lock:
                self._entries.pop(token_hash, None)
            return None
        return entry.user

    def put(self, token_hash: str, entry: _Entry) -> None:
        with self._lock:
            if len(self._entries) >= _CACHE_MAX_ENTRIES:
                self._entries.clear()
            self._entries[token_hash] = entry

    def forget_token(self, token_id: uuid.UUID) -> None:
        with self._lock:
            for key in [key for key, entry in self._entries.items() if entry.token_id == token_id]:
                del self._entries[key]

    def forget_user(self, user_id: uuid.UUID) -> None:
        with self._lock:
            for key in [key for key, entry in self._entries.items() if entry.user.id == user_id]:
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


TOKENS = TokenCache()


def forget_token(session: Session, token_id: uuid.UUID) -> None:
    """A token is being revoked: forget it now, and again once the change is committed (a request of this
    process that checked the token in between would otherwise have remembered it as it was)."""
    TOKENS.forget_token(token_id)
    unit_of_work.after_commit(session, lambda: TOKENS.forget_token(token_id), describe="forget a revoked token")


def forget_user(session: Session, user_id: uuid.UUID) -> None:
    """A user's role, provider or standing is changing: forget their tokens now and once it is committed."""
    TOKENS.forget_user(user_id)
    unit_of_work.after_commit(session, lambda: TOKENS.forget_user(user_id), describe="forget a changed user's tokens")


def issue_token(session: Session, user: User, days: int = DEFAULT_TOKEN_DAYS) -> str:
    """A new token for ``user`` that stops working ``days`` days from now (API_TOKEN_DAYS)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=hash_token(token), prefix=token[:12],
                         expires_at=utcnow() + timedelta(days=days)))
    return token


def authenticate(session: Session, token: str, *,
                 cache_seconds: float = DEFAULT_TOKEN_CACHE_SECONDS) -> TokenUser | None:
    """The user a live token of an active user speaks for, else None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    token_hash = hash_token(token)
    now = utcnow()
    if cache_seconds > 0:
        cached = TOKENS.get(token_hash, now)
        if cached is not None:
            return cached
    row = session.execute(
        sa.select(ApiToken).where(ApiToken.token_hash == token_hash)
    ).scalar_one_or_none()
    if row is None or row.revoked_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= now:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    if row.last_used_at is None or now - row.last_used_at > _LAST_USED_RESOLUTION:
        session.execute(sa.update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
        session.commit()
    found = TokenUser(id=user.id, organization_id=user.organization_id, role=str(user.role),
                      provider_id=user.provider_id)
    if cache_seconds > 0:
        TOKENS.put(token_hash, _Entry(found, row.id, row.expires_at, time.monotonic() + cache_seconds))
    return found
