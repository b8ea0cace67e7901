"""Multi-factor sign-in for the pages: an authenticator app's time-based codes (TOTP, RFC 6238: SHA-1, six
digits, 30-second steps, the parameters every authenticator app reads from an ``otpauth://`` URI) and ten
one-time recovery codes.

- The shared secret is kept sealed (AES-GCM under a key derived from SECRET_KEY, bound to the user's id); it is
  shown while enrolling only, and never logged.
- A code is accepted for the current time step and one step either side (clock drift), and never twice: the
  last accepted step is remembered and a code of that step or an earlier one is refused as reused.
- Recovery codes are random (about 59 bits each); only their SHA-256 is stored, and each works once.
- Wrong codes count as failed sign-ins (per account and per address, with the password's limits), and every
  enrolment, disabling, reset and refused code is audited.

API bearer tokens are not affected: this is the pages' sign-in only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

import pyotp
import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.orm import Session

from referral.db import utcnow
from referral.errors import Conflict, Forbidden, NotFound
from referral.models import MfaRecoveryCode, SignInAttempt, User, UserMfa, WebSession
from referral.models.enums import Role
from referral.services import access, audit, web_auth
from referral.services.actor import Actor

DIGITS = 6
PERIOD_SECONDS = 30
DRIFT_STEPS = 1
ISSUER = "Teledentistry referrals"
RECOVERY_CODE_COUNT = 10
# No 0/o, 1/l/i: a code copied from paper reads back unambiguously. 12 characters of 31 = about 59 bits.
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
RECOVERY_GROUPS = 3
RECOVERY_GROUP_LENGTH = 4
_SEAL_VERSION = "v1"
_KEY_LABEL = b"referral.mfa-secret.v1"


class CodeRefused(Exception):
    """The code is wrong, or was already used (``reason``: ``wrong`` or ``reused``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnsealFailed(Exception):
    """The stored secret cannot be opened with this key (SECRET_KEY changed): the user needs a reset."""


@dataclass(frozen=True)
class Enrolment:
    """What an authenticator app needs, shown during enrolment only."""

    secret: str
    uri: str


# -- the sealed secret -----------------------------------------------------------------------------------


def sealing_key(secret_key: str) -> bytes:
    """The AES-256 key for TOTP secrets, derived from the server's SECRET_KEY (never the key itself)."""
    return hmac.new(secret_key.encode(), _KEY_LABEL, hashlib.sha256).digest()


def seal(key: bytes, user_id: uuid.UUID, secret: str) -> str:
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(key).encrypt(nonce, secret.encode(), user_id.bytes)
    return f"{_SEAL_VERSION}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def unseal(key: bytes, user_id: uuid.UUID, stored: str) -> str:
    version, _, body = stored.partition(".")
    if version != _SEAL_VERSION:
        raise UnsealFailed
    try:
        raw = base64.urlsafe_b64decode(body.encode())
        return AESGCM(key).decrypt(raw[:12], raw[12:], user_id.bytes).decode()
    except (InvalidTag, ValueError) as exc:
        raise UnsealFailed from exc


# -- codes -------------------------------------------------------------------------------------------------


def time_step(moment: datetime) -> int:
    return int(moment.timestamp()) // PERIOD_SECONDS


def code_for(secret: str, step: int) -> str:
    """The code an authenticator app shows during ``step``."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD_SECONDS).at(step * PERIOD_SECONDS)


def provisioning_uri(secret: str, email: str) -> str:
    """``otpauth://totp/Issuer:email?secret=...&issuer=...`` with the algorithm, digits and period spelled out."""
    label = quote(f"{ISSUER}:{email}", safe="@:")
    return (f"otpauth://totp/{label}?secret={secret}&issuer={quote(ISSUER)}"
            f"&algorithm=SHA1&digits={DIGITS}&period={PERIOD_SECONDS}")


def _normalize(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())[:64]


def _is_totp(code: str) -> bool:
    return len(code) == DIGITS and code.isdigit()


def _matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step (now, or one either side) whose code is ``code``; compared in constant time."""
    current = time_step(now)
    found = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(code_for(secret, step).encode(), code.encode()):
            found = step
    return found


def _hash_recovery(code: str) -> str:
    return hashlib.sha256(_normalize(code).encode()).hexdigest()


def new_recovery_codes() -> list[str]:
    return ["-".join("".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_GROUP_LENGTH))
                     for _ in range(RECOVERY_GROUPS)) for _ in range(RECOVERY_CODE_COUNT)]


# -- state -------------------------------------------------------------------------------------------------


def enabled_row(session: Session, user_id: uuid.UUID) -> UserMfa | None:
    row = session.get(UserMfa, user_id)
    return row if row is not None and row.enabled_at is not None else None


def is_enabled(session: Session, user_id: uuid.UUID) -> bool:
    return enabled_row(session, user_id) is not None


def recovery_codes_left(session: Session, user_id: uuid.UUID) -> int:
    return int(session.scalar(sa.select(sa.func.count()).select_from(MfaRecoveryCode).where(
        MfaRecoveryCode.user_id == user_id, MfaRecoveryCode.used_at.is_(None))) or 0)


def _throttled(session: Session, user: User, actor: Actor, action: str, now: datetime) -> bool:
    """Too many failures for the account or address: audited, for the caller to commit and refuse."""
    if not web_auth.throttled(session, user.email, actor.ip_address, now):
        return False
    audit.record(session, actor, action, object_type="user", object_id=user.id,
                 organization_id=user.organization_id, outcome="throttled")
    return True


def _record_refusal(session: Session, user: User, actor: Actor, action: str, reason: str, method: str,
                    now: datetime) -> None:
    """Count the refused code against the account and address (as a failed sign-in) and audit it; the caller
    commits, so the refusal is kept, and raises."""
    session.add(SignInAttempt(email=user.email, ip_address=actor.ip_address, succeeded=False, at=now))
    audit.record(session, actor, action, object_type="user", object_id=user.id,
                 organization_id=user.organization_id, outcome="failure",
                 details={"reason": reason, "method": method})


def _take_code(session: Session, user: User, row: UserMfa, key: bytes, code: str, now: datetime) -> tuple[str, str]:
    """Check ``code`` (an authenticator code or a recovery code) and spend it: ``(method, outcome)`` with
    outcome ``ok``, ``wrong`` or ``reused``. Spending is a conditional update, so two requests racing with the
    same code cannot both succeed."""
    cleaned = _normalize(code)
    if _is_totp(cleaned):
        step = _matching_step(unseal(key, user.id, row.secret_sealed), cleaned, now)
        if step is None:
            return "totp", "wrong"
        taken = session.execute(sa.update(UserMfa).where(
            UserMfa.user_id == user.id,
            sa.or_(UserMfa.last_used_step.is_(None), UserMfa.last_used_step < step)).values(last_used_step=step))
        return "totp", "ok" if taken.rowcount == 1 else "reused"  # type: ignore[attr-defined]
    if not cleaned:
        return "recovery", "wrong"
    digest = _hash_recovery(cleaned)
    spent = session.execute(sa.update(MfaRecoveryCode).where(
        MfaRecoveryCode.user_id == user.id, MfaRecoveryCode.code_hash == digest,
        MfaRecoveryCode.used_at.is_(None)).values(used_at=now))
    if spent.rowcount == 1:  # type: ignore[attr-defined]
        return "recovery", "ok"
    used = session.scalar(sa.select(MfaRecoveryCode.id).where(MfaRecoveryCode.user_id == user.id,
                                                              MfaRecoveryCode.code_hash == digest))
    return "recovery", "reused" if used is not None else "wrong"


# -- enrolment -----------------------------------------------------------------------------------------------


def begin_enrolment(session: Session, user: User, key: bytes, actor: Actor) -> Enrolment:
    """The secret to enrol with: a new one, or the one of an enrolment started earlier and not yet confirmed
    (so reloading the page shows the same). Refused once MFA is on: the secret is never shown again."""
    row = session.get(UserMfa, user.id)
    if row is not None and row.enabled_at is not None:
        raise Conflict("Two-step sign-in is already on for this account")
    secret = None
    if row is not None:
        try:
            secret = unseal(key, user.id, row.secret_sealed)
        except UnsealFailed:
            secret = None
    if secret is None:
        secret = pyotp.random_base32()  # 32 characters: 160 bits, as RFC 4226 recommends
        if row is None:
            row = UserMfa(user_id=user.id, secret_sealed=seal(key, user.id, secret), created_at=utcnow())
            session.add(row)
        else:
            row.secret_sealed = seal(key, user.id, secret)
        audit.record(session, actor, "mfa.enrol_start", object_type="user", object_id=user.id,
                     organization_id=user.organization_id)
    session.commit()
    return Enrolment(secret=secret, uri=provisioning_uri(secret, user.email))


def confirm_enrolment(session: Session, user: User, key: bytes, code: str, actor: Actor, *,
                      web_session: WebSession | None = None, now: datetime | None = None) -> list[str]:
    """Turn MFA on once the person proves their app shows the right code; returns the recovery codes, shown
    this once. A session that was sent to enrol right after its password is then fully signed in."""
    now = now or utcnow()
    row = session.get(UserMfa, user.id)
    if row is None or row.enabled_at is not None:
        raise Conflict("There is no enrolment waiting for a code; open the two-step sign-in page again")
    if _throttled(session, user, actor, "mfa.enrol", now):
        session.commit()
        raise web_auth.SignInThrottled
    cleaned = _normalize(code)
    step = _matching_step(unseal(key, user.id, row.secret_sealed), cleaned, now) if _is_totp(cleaned) else None
    if step is None:
        _record_refusal(session, user, actor, "mfa.enrol", "wrong", "totp", now)
        session.commit()
        raise CodeRefused("wrong")
    row.enabled_at = now
    row.last_used_step = step
    session.execute(sa.delete(MfaRecoveryCode).where(MfaRecoveryCode.user_id == user.id))
    codes = new_recovery_codes()
    session.add_all(MfaRecoveryCode(user_id=user.id, code_hash=_hash_recovery(c), created_at=now) for c in codes)
    audit.record(session, actor, "mfa.enrol", object_type="user", object_id=user.id,
                 organization_id=user.organization_id, details={"recovery_codes": len(codes)})
    if web_session is not None and web_session.mfa_pending is not None:
        web_auth.complete_session(session, web_session, user, method="enrolled", now=now)
    session.commit()
    return codes


# -- the second step of signing in ----------------------------------------------------------------------------


def verify_sign_in(session: Session, web_session: WebSession, key: bytes, code: str, actor: Actor, *,
                   now: datetime | None = None) -> str:
    """The second step: an authenticator code or a recovery code completes the half-signed-in session.
    Returns how (``totp`` or ``recovery``); raises ``CodeRefused`` or ``SignInThrottled``."""
    now = now or utcnow()
    user = session.get(User, web_session.user_id)
    row = enabled_row(session, web_session.user_id)
    if user is None or row is None or web_session.mfa_pending != web_auth.PENDING_CODE:
        raise Conflict("This session is not waiting for a code; sign in again")
    if _throttled(session, user, actor, "mfa.verify", now):
        session.commit()
        raise web_auth.SignInThrottled
    method, outcome = _take_code(session, user, row, key, code, now)
    if outcome != "ok":
        _record_refusal(session, user, actor, "mfa.verify", outcome, method, now)
        session.commit()
        raise CodeRefused(outcome)
    session.add(SignInAttempt(email=user.email, ip_address=actor.ip_address, succeeded=True, at=now))
    details = {"recovery_codes_left": recovery_codes_left(session, user.id)} if method == "recovery" else None
    web_auth.complete_session(session, web_session, user, method=method, now=now, details=details)
    session.commit()
    return method


# -- turning it off ---------------------------------------------------------------------------------------------


def disable(session: Session, user: User, key: bytes, code: str, actor: Actor, *, required: bool,
            now: datetime | None = None) -> None:
    """The person turns MFA off, confirming with a current code (or a recovery code); not where it is required."""
    now = now or utcnow()
    if required:
        raise Forbidden("Two-step sign-in is required on this service and cannot be turned off")
    row = enabled_row(session, user.id)
    if row is None:
        raise Conflict("Two-step sign-in is not on for this account")
    if _throttled(session, user, actor, "mfa.disable", now):
        session.commit()
        raise web_auth.SignInThrottled
    method, outcome = _take_code(session, user, row, key, code, now)
    if outcome != "ok":
        _record_refusal(session, user, actor, "mfa.disable", outcome, method, now)
        session.commit()
        raise CodeRefused(outcome)
    _remove(session, user.id)
    audit.record(session, actor, "mfa.disable", object_type="user", object_id=user.id,
                 organization_id=user.organization_id, details={"method": method})
    session.commit()


def reset(session: Session, actor: Actor, user_id: uuid.UUID) -> tuple[User, int]:
    """An administrator clears a member's MFA (a lost phone and no recovery codes): the member enrols again at
    their next sign-in where MFA is required, and their current sessions end. A platform admin may reset any
    practice's member; an org admin only their own practice's, and not themselves (another admin does)."""
    user = access.get_user(session, actor, user_id)
    access.require_role(actor, Role.ADMIN, Role.ORG_ADMIN)
    if user.organization_id is None:
        raise NotFound("User not found")
    if user.id == actor.user_id:
        raise Forbidden("You cannot reset your own two-step sign-in; ask another administrator")
    had = session.get(UserMfa, user.id) is not None
    _remove(session, user.id)
    ended = web_auth.end_sessions(session, user, "mfa_reset")
    audit.record(session, actor, "mfa.reset", object_type="user", object_id=user.id,
                 organization_id=user.organization_id, details={"had_mfa": had, "sessions_ended": ended})
    session.commit()
    return user, ended


def _remove(session: Session, user_id: uuid.UUID) -> None:
    session.execute(sa.delete(MfaRecoveryCode).where(MfaRecoveryCode.user_id == user_id))
    session.execute(sa.delete(UserMfa).where(UserMfa.user_id == user_id))
