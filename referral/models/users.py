from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from referral.db import Base, UTCDateTime, new_id, utcnow
from referral.models.enums import Role, enum_column_type
from referral.models.organizations import Organization, Provider


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("organizations.id"), index=True, comment="null only for platform admins"
    )
    email: Mapped[str] = mapped_column(sa.String(254), unique=True, comment="stored lower-cased")
    role: Mapped[Role] = mapped_column(enum_column_type(Role, "role"))
    provider_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("providers.id"))
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    password_hash: Mapped[str | None] = mapped_column(
        sa.String(255), comment="argon2id; null for users who sign in with API tokens only"
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    organization: Mapped[Organization | None] = relationship()
    provider: Mapped[Provider | None] = relationship()

    @property
    def is_platform_admin(self) -> bool:
        return self.role == Role.ADMIN


class ApiToken(Base):
    """A bearer token. Only its SHA-256 is stored; the token itself is shown once, at creation."""

    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True, comment="hex SHA-256 of the token")
    prefix: Mapped[str] = mapped_column(sa.String(12), comment="first characters, to tell tokens apart")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()
