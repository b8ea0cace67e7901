"""Browser sign-in: argon2id passwords, a database-backed rate limit and server-side sessions."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from referral.db import utcnow
from referral.errors import ValidationFailed
from referral.models import SignInAttempt, User, WebSession
from referral.models.enums import Role
from referral.services import audit
from referral.services.actor import Actor

PASSWORD_MIN_LENGTH = 12
PASSWORD_MAX_LENGTH = 128
SESSION_LIFETIME = timedelta(hours=12)
RATE_LIMIT_WINDOW = timedelta(minutes=15)
ACCOUNT_FAILURE_LIMIT = 5
# Several people of one clinic sign in from the same address, so the address limit is looser than the
# account limit; it still stops one machine from spraying guesses across many accounts.
ADDRESS_FAILURE_LIMIT = 20

_hasher = PasswordHasher()  # argon2id with the library's current RFC 9106 parameters
# Verified against when the email is unknown, so a miss takes as long as a wrong password and response
# times do not tell which emails have accounts.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def check_password_rules(password: str) -> None:
    if not PASSWORD_MIN_LENGTH <= len(password) <= PASSWORD_MAX_LENGTH:
        raise ValidationFailed(
            f"A password is {PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} characters",
            {"password": [f"Length must be between {PASSWORD_MIN_LENGTH} and {PASSWORD_MAX_LENGTH}."]},
        )


def hash_password(password: str) -> str:
    check_password_rules(password)
    return _hasher.hash(password)


def _password_matches(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SignInRefused(Exception):
    """Wrong email or password; deliberately says no more than that."""


class SignInThrottled(Exception):
    """Too many recent failures for this account or address."""


def _recent_failures(session: Session, column: Any, value: str, now: datetime) -> int:
    query = sa.select(sa.func.count()).select_from(SignInAttempt).where(
        column == value, SignInAttempt.succeeded.is_(False), SignInAttempt.at > now - RATE_LIMIT_WINDOW
    )
    return int(session.scalar(query) or 0)


def _web_actor(user: User | None, ip_address: str | None, user_agent: str | None) -> Actor:
    if user is None:
        return Actor(user_id=None, organization_id=None, role=None, ip_address=ip_address, user_agent=user_agent)
    return Actor(user_id=user.id, organization_id=user.organization_id, role=Role(user.role),
                 provider_id=user.provider_id, ip_address=ip_address, user_agent=user_agent)


@dataclass(frozen=True)
class NewSession:
    token: str
    row: WebSession


def sign_in(session: Session, email: str, password: str, *, ip_address: str | None,
            user_agent: str | None) -> NewSession:
    """Check the password, counting failures per account and per address; a throttled try is refused
    before the password is even looked at, so a correct guess during the lockout teaches nothing."""
    email = email.strip().lower()[:254]
    now = utcnow()
    if (_recent_failures(session, SignInAttempt.email, email, now) >= ACCOUNT_FAILURE_LIMIT
            or (ip_address is not None
                and _recent_failures(session, SignInAttempt.ip_address, ip_address, now) >= ADDRESS_FAILURE_LIMIT)):
        audit.record(session, _web_actor(None, ip_address, user_agent), "session.sign_in", object_type="user",
                     object_id=None, organization_id=None, outcome="throttled")
        session.commit()
        raise SignInThrottled
    user = session.scalar(sa.select(User).where(User.email == email))
    ok = _password_matches(user.password_hash if user else None, password) and user is not None and user.active
    session.add(SignInAttempt(email=email, ip_address=ip_address, succeeded=ok, at=now))
    if not ok or user is None:
        # The typed email is kept only in sign_in_attempts; the audit row names the account when it exists.
        audit.record(session, _web_actor(None, ip_address, user_agent), "session.sign_in", object_type="user",
                     object_id=user.id if user else None, organization_id=user.organization_id if user else None,
                     outcome="failure")
        session.commit()
        raise SignInRefused
    if user.password_hash and _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    token = secrets.token_urlsafe(32)
    row = WebSession(id=hash_token(token), user_id=user.id, created_at=now, last_seen_at=now,
                     expires_at=now + SESSION_LIFETIME, csrf_token=secrets.token_urlsafe(32),
                     ip_address=ip_address, user_agent=(user_agent or "")[:200] or None)
    session.add(row)
    audit.record(session, _web_actor(user, ip_address, user_agent), "session.sign_in", object_type="user",
                 object_id=user.id, organization_id=user.organization_id)
    session.commit()
    return NewSession(token=token, row=row)


def resume(session: Session, token: str, *, idle: timedelta) -> tuple[WebSession | None, str | None]:
    """The live session for a cookie and ``None``, or ``None`` and why it ended (``idle``, ``expired``)
    when it just did. The idle rule is applied here, on the server, on every request."""
    if not token or len(token) > 100:
        return None, None
    row = session.get(WebSession, hash_token(token))
    if row is None or row.revoked_at is not None:
        return None, None
    user = session.get(User, row.user_id)
    now = utcnow()
    reason = None
    if row.expires_at <= now:
        reason = "expired"
    elif now - row.last_seen_at > idle:
        reason = "idle"
    elif user is None or not user.active:
        reason = "inactive"
    if reason is not None:
        _revoke(session, row, reason, now)
        return None, reason
    row.last_seen_at = now
    session.commit()
    return row, None


def _revoke(session: Session, row: WebSession, reason: str, now: datetime) -> None:
    row.revoked_at = now
    row.revoked_reason = reason
    user = session.get(User, row.user_id)
    audit.record(session, _web_actor(user, row.ip_address, row.user_agent),
                 "session.sign_out" if reason == "logout" else "session.end", object_type="user",
                 object_id=row.user_id, organization_id=user.organization_id if user else None,
                 details={"reason": reason})
    session.commit()


def sign_out(session: Session, row: WebSession) -> None:
    _revoke(session, row, "logout", utcnow())


def actor_for(user: User, ip_address: str | None, user_agent: str | None) -> Actor:
    return _web_actor(user, ip_address, user_agent)
