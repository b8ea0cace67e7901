from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from referral.db import Base, UTCDateTime, new_id, utcnow


class ClaimAttachment(Base):
    """A claim's attachment package: the documentation sent to the payer with it, under a control number that the
    837D's PWK segment names. The PDF is rendered from the case when it is asked for; the row keeps the number so
    that the claim and the package always agree. A claim regenerated from new facts gets a new revision (and
    number), as an attachment service issues a new id when documents are added."""

    __tablename__ = "claim_attachments"
    __table_args__ = (sa.UniqueConstraint("claim_id", "revision"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    claim_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("claims.id", ondelete="CASCADE"), index=True)
    revision: Mapped[int] = mapped_column(sa.Integer, comment="counts packages of one practice on one referral")
    claim_generation: Mapped[int] = mapped_column(sa.Integer, comment="the claim's generation the package documents")
    control_number: Mapped[str] = mapped_column(sa.String(80), unique=True, comment="PWK06 after the AC qualifier")
    created_by_user_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
