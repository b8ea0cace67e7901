from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from referral.db import Base, UTCDateTime, new_id, utcnow
from referral.models.enums import StrEnum, enum_column_type


class ReportStatus(StrEnum):
    DRAFT = "draft"
    SIGNED = "signed"


class DiagnosticQuality(StrEnum):
    ADEQUATE = "adequate"
    LIMITED = "limited"
    NONDIAGNOSTIC = "nondiagnostic"


class Report(Base):
    """The reader's interpretation of a case's images. Once signed it never changes."""

    __tablename__ = "reports"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    referral_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("referrals.id"), unique=True)
    reader_provider_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("providers.id"))
    status: Mapped[ReportStatus] = mapped_column(enum_column_type(ReportStatus, "report_status"),
                                                 default=ReportStatus.DRAFT)
    findings: Mapped[list[dict[str, Any]]] = mapped_column(
        sa.JSON, default=list, comment="per image: crown, roots, pdl_space, lamina_dura, periapical_area, "
        "bone_levels, other, diagnostic_quality"
    )
    impression: Mapped[str | None] = mapped_column(sa.Text)
    recommendation: Mapped[str | None] = mapped_column(sa.Text)
    answer: Mapped[str | None] = mapped_column(
        sa.Text, comment="the reader's answer to the referring dentist's question")
    evaluation_performed: Mapped[bool] = mapped_column(
        sa.Boolean, default=False, comment="the reader also evaluated the patient; drives an evaluation code"
    )
    drafted_by_user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    signed_by_user_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    content_sha256: Mapped[str | None] = mapped_column(
        sa.String(64), comment="SHA-256 of the canonical signed content, to show it never changed"
    )

    addenda: Mapped[list[ReportAddendum]] = relationship(order_by="ReportAddendum.id", viewonly=True)


class ReportAddendum(Base):
    """A signed correction or addition to a signed report."""

    __tablename__ = "report_addenda"
    __table_args__ = (sa.Index("ix_report_addenda_report_id_id", "report_id", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    report_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("reports.id"))
    text: Mapped[str] = mapped_column(sa.Text)
    provider_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("providers.id"))
    signed_by_user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    content_sha256: Mapped[str] = mapped_column(sa.String(64))
