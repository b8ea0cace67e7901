"""One-time links to set a password: the first sign-in of a platform admin, an invitation, a reset.

A link carries a random token; only its SHA-256 is stored. It works once and only until it expires; a newer
link for the same person replaces any older one still unused. Using it sets the password and signs in.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from referral.db import utcnow
from referral.errors import DomainError
from referral.models import PasswordLink, User
from referral.services import audit, web_auth

PURPOSES = ("first_sign_in", "invite", "reset")
LINK_PATH = "/set-password/"
DEFAULT_LINK_HOURS = 72


class LinkNotUsable(DomainError):
    """The link is unknown, used, replaced or expired; deliberately says no more than that."""

    status_code = 410

    def __init__(self) -> None:
        super().__init__("This link to set a password has expired or was already used. "
                         "Ask your practice administrator for a new one.")


@dataclass(frozen=True)
class IssuedLink:
    token: str
    expires_at: datetime

    def url(self, base_url: str | None) -> str:
        """The link as a person opens it; a path alone when no public address is configured."""
        return f"{(base_url or '').rstrip('/')}{LINK_PATH}{self.token}"


def issue(session: Session, user: User, *, purpose: str, created_by: uuid.UUID | None,
          hours: int = DEFAULT_LINK_HOURS) -> IssuedLink:
    """A new link for ``user`` in the caller's transaction; older unused links of theirs stop working."""
    if purpose not in PURPOSES:
        raise ValueError(purpose)
    now = utcnow()
    session.execute(sa.update(PasswordLink)
                    .where(PasswordLink.user_id == user.id, PasswordLink.used_at.is_(None),
                           PasswordLink.voided_at.is_(None))
                    .values(voided_at=now))
    token = secrets.token_urlsafe(32)
    expires_at = now + timedelta(hours=hours)
    session.add(PasswordLink(user_id=user.id, token_hash=web_auth.hash_token(token), purpose=purpose,
                             created_at=now, expires_at=expires_at, created_by_user_id=created_by))
    return IssuedLink(token=token, expires_at=expires_at)


def void_links(session: Session, user: User) -> None:
    """Unused links of ``user`` stop working (the account was deactivated)."""
    session.execute(sa.update(PasswordLink)
                    .where(PasswordLink.user_id == user.id, PasswordLink.used_at.is_(None),
                           PasswordLink.voided_at.is_(None))
                    .values(voided_at=utcnow()))


def _usable(session: Session, token: str) -> tuple[PasswordLink, User]:
    if not token or len(token) > 100:
        raise LinkNotUsable
    link = session.scalar(sa.select(PasswordLink).where(PasswordLink.token_hash == web_auth.hash_token(token)))
    if link is None or link.used_at is not None or link.voided_at is not None or link.expires_at <= utcnow():
        raise LinkNotUsable
    user = session.get(User, link.user_id)
    if user is None or not user.active:
        raise LinkNotUsable
    return link, user


def check(session: Session, token: str) -> User:
    """The person a usable link is for (the page shows whose password is being set)."""
    return _usable(session, token)[1]


def use(session: Session, token: str, password: str, *, ip_address: str | None,
        user_agent: str | None, mfa_required: bool = False) -> web_auth.NewSession:
    """Set the password through the link and sign in. The link is spent in the same transaction, by a
    conditional update, so two uses racing each other cannot both succeed."""
    link, user = _usable(session, token)
    web_auth.check_password_strength(password, user.email)
    now = utcnow()
    spent = session.execute(sa.update(PasswordLink)
                            .where(PasswordLink.id == link.id, PasswordLink.used_at.is_(None),
                                   PasswordLink.voided_at.is_(None))
                            .values(used_at=now))
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        raise LinkNotUsable
    user.password_hash = web_auth.hash_password(password)
    web_auth.end_sessions(session, user, "password_set")
    actor = web_auth.actor_for(user, ip_address, user_agent)
    audit.record(session, actor, "user.password_set", object_type="user", object_id=user.id,
                 organization_id=user.organization_id, details={"purpose": link.purpose})
    # A new password is the first step only: someone with MFA on still gives a code, and where MFA is required
    # someone without it enrols next.
    new = web_auth.start_session(session, user, ip_address=ip_address, user_agent=user_agent,
                                 mfa_required=mfa_required)
    session.commit()
    return new
