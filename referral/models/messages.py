"""The conversation on a case between the referring office and its reader, what each person has read of it, and
which emails each person wants."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from referral.db import Base, UTCDateTime, new_id, utcnow


class CaseMessage(Base):
    """One message on a referral. Messages never change: a correction is a new message."""

    __tablename__ = "case_messages"
    __table_args__ = (sa.Index("ix_case_messages_referral_id_id", "referral_id", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    referral_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("referrals.id"))
    author_user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    author_organization_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organizations.id"))
    image_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("images.id"), comment="an image of the same case the message is about, if any"
    )
    body: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CaseRead(Base):
    """How far one person has read one case: messages and status changes up to ``read_at`` are not new to them."""

    __tablename__ = "case_reads"

    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    referral_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("referrals.id"), primary_key=True)
    read_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class NotificationPreference(Base):
    """The emails one person wants. Without a row, the defaults of ``referral.services.notifications`` apply."""

    __tablename__ = "notification_preferences"

    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    email_routed: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    email_report_signed: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    email_retake_requested: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    email_declined: Mapped[bool] = mapped_column(sa.Boolean, default=False,
                                                 comment="a reader declined, or no reader could be found")
    email_message: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    email_access_alerts: Mapped[bool | None] = mapped_column(
        sa.Boolean, comment="org admins: emergency access, role and provider-link changes; null = the default (on)")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
