"""Browser sign-in: server-side sessions and the record of sign-in attempts."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from referral.db import Base, UTCDateTime, new_id, utcnow
from referral.models.users import User


class WebSession(Base):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is stored, so a copy of the
    table cannot be replayed as a cookie."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True, comment="hex SHA-256 of the cookie token")
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, comment="absolute end, whatever the activity")
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[str | None] = mapped_column(sa.String(20), comment="logout, idle or expired")
    csrf_token: Mapped[str] = mapped_column(sa.String(64))
    ip_address: Mapped[str | None] = mapped_column(sa.String(45))
    user_agent: Mapped[str | None] = mapped_column(sa.String(200))
    mfa_pending: Mapped[str | None] = mapped_column(
        sa.String(10), comment="null once fully signed in; code or enrol while the second step is outstanding"
    )

    user: Mapped[User] = relationship()


class SignInAttempt(Base):
    """One try at the sign-in form. Kept in the database so the rate limit holds across processes."""

    __tablename__ = "sign_in_attempts"
    __table_args__ = (
        sa.Index("ix_sign_in_attempts_email_at", "email", "at"),
        sa.Index("ix_sign_in_attempts_ip_address_at", "ip_address", "at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    email: Mapped[str] = mapped_column(sa.String(254), comment="as typed, lower-cased; may match no user")
    ip_address: Mapped[str | None] = mapped_column(sa.String(45))
    succeeded: Mapped[bool] = mapped_column(sa.Boolean)


class PasswordLink(Base):
    """A one-time link to set a password (first sign-in, an invitation or a reset). The link carries a
    random token; only its SHA-256 is stored. It works once, until ``expires_at``."""

    __tablename__ = "password_links"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True, comment="hex SHA-256 of the link's token")
    purpose: Mapped[str] = mapped_column(sa.String(20), comment="first_sign_in, invite or reset")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    voided_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, comment="set when a newer link replaced it or the account was deactivated")
    created_by_user_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("users.id"), comment="null when made on the command line")


class UserMfa(Base):
    """A user's authenticator (TOTP, RFC 6238). The shared secret is kept encrypted (AES-GCM, key derived from
    SECRET_KEY); it is shown during enrolment only. Until ``enabled_at`` is set the enrolment is pending."""

    __tablename__ = "user_mfa"

    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    secret_sealed: Mapped[str] = mapped_column(sa.String(200), comment="encrypted TOTP secret; never the secret itself")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, comment="null while enrolment awaits a code")
    last_used_step: Mapped[int | None] = mapped_column(
        sa.BigInteger, comment="the last accepted 30-second time step: a code is never taken twice"
    )


class MfaRecoveryCode(Base):
    """A one-time recovery code: only its SHA-256 is stored; using it sets ``used_at``."""

    __tablename__ = "mfa_recovery_codes"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"), index=True)
    code_hash: Mapped[str] = mapped_column(sa.String(64), comment="hex SHA-256 of the code")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
