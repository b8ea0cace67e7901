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
from referral.models import SignInAttempt, User, UserMfa, WebSession
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
# A session whose password was right but whose second step (a code, or enrolling an authenticator where that is
# required) is still owed: it can do nothing else, and lapses after this long.
PENDING_CODE = "code"
PENDING_ENROL = "enrol"
PENDING_LIFETIME = timedelta(minutes=10)

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


# Words that make up most guessed passwords; a password that is one of them padded with digits and symbols
# (Password2026!, dentist123456) is refused whatever its length.
_GUESSABLE_WORDS = frozenset({
    "password", "passw0rd", "qwerty", "qwertyuiop", "letmein", "welcome", "admin", "administrator", "dentist",
    "dental", "teeth", "tooth", "referral", "teledentistry", "changeme", "iloveyou", "monkey", "dragon",
    "sunshine", "football", "baseball", "abc", "abcdef", "abcdefghijkl", "secret", "login", "practice",
})
_MIN_DISTINCT_CHARACTERS = 5


def check_password_strength(password: str, email: str | None = None) -> None:
    """The rules for a new password chosen by a person: the length rules, enough different characters,
    not a guessable word padded with digits, and not the account's own email name."""
    check_password_rules(password)
    lowered = password.lower()
    problem = None
    if len(set(lowered)) < _MIN_DISTINCT_CHARACTERS:
        problem = "uses too few different characters"
    elif lowered.strip("0123456789!@#$%^&*()-_=+.,?~ ") in _GUESSABLE_WORDS | {""}:
        problem = "is a common word or number that is easy to guess"
    elif lowered in "1234567890" * 13 or lowered in "abcdefghijklmnopqrstuvwxyz":
        problem = "is a simple sequence"
    elif email:
        name = email.split("@", 1)[0].lower()
        if len(name) >= 4 and name in lowered:
            problem = "contains your email name"
    if problem:
        raise ValidationFailed(f"This password {problem}; choose a longer phrase only you would think of",
                               {"password": [f"The password {problem}."]})


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


def throttled(session: Session, email: str, ip_address: str | None, now: datetime) -> bool:
    """Too many recent failures (wrong passwords and wrong codes) for this account or this address."""
    return (_recent_failures(session, SignInAttempt.email, email, now) >= ACCOUNT_FAILURE_LIMIT
            or (ip_address is not None
                and _recent_failures(session, SignInAttempt.ip_address, ip_address, now) >= ADDRESS_FAILURE_LIMIT))


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
            user_agent: str | None, mfa_required: bool = False) -> NewSession:
    """Check the password, counting failures per account and per address; a throttled try is refused
    before the password is even looked at, so a correct guess during the lockout teaches nothing. The new
    session still owes its second step when the user has MFA on, or must enrol where MFA is required."""
    email = email.strip().lower()[:254]
    now = utcnow()
    if throttled(session, email, ip_address, now):
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
    new = start_session(session, user, ip_address=ip_address, user_agent=user_agent, mfa_required=mfa_required)
    session.commit()
    return new


def _second_step(session: Session, user: User, mfa_required: bool) -> str | None:
    mfa = session.get(UserMfa, user.id)
    if mfa is not None and mfa.enabled_at is not None:
        return PENDING_CODE
    return PENDING_ENROL if mfa_required else None


def start_session(session: Session, user: User, *, ip_address: str | None, user_agent: str | None,
                  mfa_required: bool = False) -> NewSession:
    """A new session for ``user`` after their password, with its audit row, in the caller's transaction: signed
    in, or (``mfa_pending``) waiting for its second step, which ``complete_session`` records."""
    now = utcnow()
    token = secrets.token_urlsafe(32)
    pending = _second_step(session, user, mfa_required)
    row = WebSession(id=hash_token(token), user_id=user.id, created_at=now, last_seen_at=now,
                     expires_at=now + (PENDING_LIFETIME if pending else SESSION_LIFETIME),
                     csrf_token=secrets.token_urlsafe(32), ip_address=ip_address,
                     user_agent=(user_agent or "")[:200] or None, mfa_pending=pending)
    session.add(row)
    audit.record(session, _web_actor(user, ip_address, user_agent),
                 "session.password" if pending else "session.sign_in", object_type="user",
                 object_id=user.id, organization_id=user.organization_id,
                 details={"next_step": pending} if pending else None)
    return NewSession(token=token, row=row)


def complete_session(session: Session, row: WebSession, user: User, *, method: str, now: datetime,
                     details: dict[str, Any] | None = None) -> None:
    """The second step is done: the session is signed in from now on (its 12 hours count from the password), in
    the caller's transaction."""
    row.mfa_pending = None
    row.expires_at = row.created_at + SESSION_LIFETIME
    row.last_seen_at = now
    audit.record(session, _web_actor(user, row.ip_address, row.user_agent), "session.sign_in",
                 object_type="user", object_id=user.id, organization_id=user.organization_id,
                 details={"mfa": method, **(details or {})})


def end_sessions(session: Session, user: User, reason: str) -> int:
    """End every live session of ``user`` (password reset, deactivation), in the caller's transaction."""
    now = utcnow()
    rows = list(session.scalars(sa.select(WebSession).where(WebSession.user_id == user.id,
                                                            WebSession.revoked_at.is_(None),
                                                            WebSession.expires_at > now)))
    for row in rows:
        _revoke(session, row, reason, now)
    return len(rows)


def resume(session: Session, token: str, *, idle: timedelta,
           touch: bool = True) -> tuple[WebSession | None, str | None]:
    """The live session for a cookie and ``None``, or ``None`` and why it ended (``idle``, ``expired``)
    when it just did. The idle rule is applied here, on the server, on every request; a request counts as
    activity unless ``touch`` is false (a page asking how long its session has left)."""
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
        session.commit()
        return None, reason
    if touch:
        row.last_seen_at = now
    session.commit()
    return row, None


def seconds_left(row: WebSession, idle: timedelta) -> int:
    """How long this session stays signed in without further activity (the idle rule or the absolute end)."""
    now = utcnow()
    end = min(row.last_seen_at + idle, row.expires_at)
    return max(0, int((end - now).total_seconds()))


def _revoke(session: Session, row: WebSession, reason: str, now: datetime) -> None:
    row.revoked_at = now
    row.revoked_reason = reason
    user = session.get(User, row.user_id)
    audit.record(session, _web_actor(user, row.ip_address, row.user_agent),
                 "session.sign_out" if reason == "logout" else "session.end", object_type="user",
                 object_id=row.user_id, organization_id=user.organization_id if user else None,
                 details={"reason": reason})


def sign_out(session: Session, row: WebSession) -> None:
    _revoke(session, row, "logout", utcnow())
    session.commit()


def actor_for(user: User, ip_address: str | None, user_agent: str | None) -> Actor:
    return _web_actor(user, ip_address, user_agent)
