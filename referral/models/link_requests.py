"""A request to link a new login to a provider who already has one, waiting for that provider's answer."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from referral.db import Base, UTCDateTime, new_id, utcnow


class ProviderLinkRequest(Base):
    """An org admin made ``user_id`` (inactive, linked to no provider) and asked that it read as ``provider_id``.
    A reading login already linked to that provider confirms (the new login is linked and activated) or refuses
    (nothing changes) before ``expires_at``."""

    __tablename__ = "provider_link_requests"
    __table_args__ = (
        sa.Index("ix_provider_link_requests_provider_id", "provider_id", "status"),
        sa.Index("ix_provider_link_requests_user_id", "user_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organizations.id"))
    provider_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("providers.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"), comment="the new login to be linked")
    role: Mapped[str] = mapped_column(sa.String(20), comment="the role the new login was made with")
    requested_by_user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(sa.String(20), default="pending",
                                        comment="pending, confirmed or refused (expiry is read from expires_at)")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_by_user_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
