"""A reader's own reusable phrases, inserted into a report's fields from the case page."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from referral.db import Base, UTCDateTime, new_id, utcnow


class ReaderPhrase(Base):
    """One phrase of one person (a reader). Nobody else lists, uses or deletes it."""

    __tablename__ = "reader_phrases"
    __table_args__ = (sa.Index("ix_reader_phrases_user_id_created_at", "user_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(sa.Text, comment="the phrase as the reader typed it")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
