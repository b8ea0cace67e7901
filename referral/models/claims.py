from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from referral.db import Base, UTCDateTime, new_id, utcnow
from referral.models.organizations import Organization, Provider

MONEY = sa.Numeric(12, 2)


class FeeScheduleEntry(Base):
    """What an organization charges for a code; codes without an entry are billed at 0."""

    __tablename__ = "fee_schedule_entries"
    __table_args__ = (sa.UniqueConstraint("organization_id", "code"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organizations.id"))
    code: Mapped[str] = mapped_column(sa.String(5), comment="CDT code number, e.g. D0707")
    amount: Mapped[Decimal] = mapped_column(MONEY)


class Claim(Base):
    """One billing organization's claim for its part of a referral."""

    __tablename__ = "claims"
    __table_args__ = (
        sa.UniqueConstraint("referral_id", "billing_organization_id"),
        sa.Index("ix_claims_billing_organization_id_id", "billing_organization_id", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    referral_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("referrals.id"))
    billing_organization_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organizations.id"))
    role: Mapped[str] = mapped_column(sa.String(20), comment="capture, interpretation or single")
    rendering_provider_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("providers.id"))
    referring_provider_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("providers.id"))
    place_of_service: Mapped[str] = mapped_column(sa.String(2))
    date_of_service: Mapped[date] = mapped_column(sa.Date)
    payer_id: Mapped[str | None] = mapped_column(sa.String(80))
    payer_name: Mapped[str | None] = mapped_column(sa.String(120))
    payer_profile: Mapped[str] = mapped_column(sa.String(60), comment="the payer rules the claim was built with")
    frequency: Mapped[str] = mapped_column(sa.String(1), default="1", comment="1 original, 7 replacement, 8 void")
    status: Mapped[str] = mapped_column(sa.String(10), comment="ready, or hold while an edit blocks it")
    total: Mapped[Decimal] = mapped_column(MONEY)
    generation: Mapped[int] = mapped_column(sa.Integer, default=1, comment="times regenerated after new facts")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    billing_organization: Mapped[Organization] = relationship(viewonly=True)
    rendering_provider: Mapped[Provider] = relationship(viewonly=True, foreign_keys=[rendering_provider_id])
    referring_provider: Mapped[Provider | None] = relationship(viewonly=True, foreign_keys=[referring_provider_id])
    lines: Mapped[list[ClaimLine]] = relationship(order_by="ClaimLine.number", cascade="all, delete-orphan")
    edits: Mapped[list[ClaimEdit]] = relationship(order_by="ClaimEdit.id", cascade="all, delete-orphan")


class ClaimLine(Base):
    __tablename__ = "claim_lines"
    __table_args__ = (sa.UniqueConstraint("claim_id", "number"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    claim_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("claims.id"))
    number: Mapped[int] = mapped_column(sa.Integer)
    code: Mapped[str] = mapped_column(sa.String(5))
    tooth: Mapped[str | None] = mapped_column(sa.String(3))
    teeth: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    area: Mapped[str | None] = mapped_column(sa.String(2))
    surfaces: Mapped[str | None] = mapped_column(sa.String(7))
    quantity: Mapped[int] = mapped_column(sa.Integer)
    fee: Mapped[Decimal] = mapped_column(MONEY, comment="per unit")
    date_of_service: Mapped[date] = mapped_column(sa.Date)
    control_number: Mapped[str] = mapped_column(sa.String(30), comment="REF*6R line item control number")
    explanation: Mapped[str] = mapped_column(sa.Text)
    rule: Mapped[str] = mapped_column(sa.String(60))
    image_ids: Mapped[list[str]] = mapped_column(sa.JSON, default=list)


class ClaimEdit(Base):
    __tablename__ = "claim_edits"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    claim_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("claims.id"))
    rule: Mapped[str] = mapped_column(sa.String(60))
    severity: Mapped[str] = mapped_column(sa.String(10), comment="warning or hold")
    message: Mapped[str] = mapped_column(sa.Text)
    line_numbers: Mapped[list[int]] = mapped_column(sa.JSON, default=list)


class ClaimExport(Base):
    """Each export of a claim: 837D, FHIR, or the printed summary (pdf, html). The integer id is the X12
    interchange control number, so every interchange sent has its own."""

    __tablename__ = "claim_exports"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    claim_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("claims.id"), index=True)
    format: Mapped[str] = mapped_column(sa.String(10), comment="x12 or fhir")
    exported_by_user_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
