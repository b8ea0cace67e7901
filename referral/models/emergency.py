"""Emergency (break-glass) access to a case, and the notices that tell a practice's admins about it and about
changes to who may read what."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from referral.db import Base, UTCDateTime, new_id, utcnow


class EmergencyAccess(Base):
    """One person's time-limited access to one case they could not otherwise see, with the reason they gave.
    Rows are never changed or deleted: an expired grant simply stops counting."""

    __tablename__ = "emergency_access_grants"
    __table_args__ = (
        sa.Index("ix_emergency_access_grants_user_referral", "user_id", "referral_id", "expires_at"),
        sa.Index("ix_emergency_access_grants_organization_id", "organization_id", "expires_at"),
        sa.Index("ix_emergency_access_grants_case_organization_id", "case_organization_id", "expires_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    referral_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("referrals.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    organization_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organizations.id"),
                                                       comment="the practice of the person given access")
    case_organization_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organizations.id"),
                                                            comment="the practice that referred the case")
    reason: Mapped[str] = mapped_column(sa.Text, comment="why, in the person's words; shown to admins only")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AdminNotice(Base):
    """Something an org admin should know about their practice's access: an emergency access, a role or a
    provider-link change. Ids and codes only; one row per admin told."""

    __tablename__ = "admin_notices"
    __table_args__ = (sa.Index("ix_admin_notices_user_id_id", "user_id", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"), comment="the admin told")
    organization_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organizations.id"))
    kind: Mapped[str] = mapped_column(sa.String(40), comment="emergency_access, role_change or provider_link")
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, comment="who did it; null for the CLI")
    subject_user_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, comment="whose access changed")
    referral_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    grant_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    details: Mapped[dict[str, object] | None] = mapped_column(sa.JSON, comment="ids and codes only")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    email_status: Mapped[str | None] = mapped_column(
        sa.String(10), comment="null until the mail worker looks at it: sending, sent, failed or skipped")
