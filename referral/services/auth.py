"""Bearer tokens: random, shown once, stored as SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from referral.db import utcnow
from referral.models import ApiToken, User

TOKEN_PREFIX = "rfl_"  # noqa: S105 - a public marker that makes leaked tokens easy to scan for
# Recording every use would turn each read into a write; minute-level precision is enough to see
# which tokens are alive.
_LAST_USED_RESOLUTION = timedelta(minutes=5)


def hash_token(token: str) -> str:
    # A 256-bit random token needs no slow hash: guessing it is infeasible either way.
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, user: User) -> str:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=hash_token(token), prefix=token[:12]))
    return token


def authenticate(session: Session, token: str) -> User | None:
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = session.execute(
        sa.select(ApiToken).where(ApiToken.token_hash == hash_token(token))
    ).scalar_one_or_none()
    if row is None or row.revoked_at is not None:
        return None
    now = utcnow()
    if row.expires_at is not None and row.expires_at <= now:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    if row.last_used_at is None or now - row.last_used_at > _LAST_USED_RESOLUTION:
        session.execute(sa.update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
        session.commit()
    return user
