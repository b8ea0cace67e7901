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
        # One original claim per practice per referral; its replacements and voids are claims of their own.
        sa.Index("ix_claims_original_per_practice", "referral_id", "billing_organization_id", unique=True,
                 sqlite_where=sa.text("original_claim_id IS NULL"),
                 postgresql_where=sa.text("original_claim_id IS NULL")),
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
    status: Mapped[str] = mapped_column(sa.String(20), comment="life-cycle state, one of CLAIM_STATUSES")
    total: Mapped[Decimal] = mapped_column(MONEY)
    generation: Mapped[int] = mapped_column(sa.Integer, default=1, comment="times regenerated after new facts")
    narrative: Mapped[str | None] = mapped_column(sa.String(80), comment="the claim note sent as NTE*ADD")
    narrative_edited: Mapped[bool] = mapped_column(
        sa.Boolean, default=False, comment="billing wrote the narrative; regeneration keeps it")
    patient_control_number: Mapped[str | None] = mapped_column(
        sa.String(20), index=True, comment="CLM01 as first exported; the payer echoes it in 277CA and 835")
    payer_claim_number: Mapped[str | None] = mapped_column(sa.String(50), comment="the payer's number (835 CLP07)")
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    original_claim_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("claims.id"), comment="the claim this one replaces (frequency 7) or voids (8)")
    original_payer_claim_number: Mapped[str | None] = mapped_column(
        sa.String(50), comment="REF*F8: the payer's number of the claim replaced or voided")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    billing_organization: Mapped[Organization] = relationship(viewonly=True)
    rendering_provider: Mapped[Provider] = relationship(viewonly=True, foreign_keys=[rendering_provider_id])
    referring_provider: Mapped[Provider | None] = relationship(viewonly=True, foreign_keys=[referring_provider_id])
    lines: Mapped[list[ClaimLine]] = relationship(order_by="ClaimLine.number", cascade="all, delete-orphan")
    edits: Mapped[list[ClaimEdit]] = relationship(order_by="ClaimEdit.id", cascade="all, delete-orphan")
    events: Mapped[list[ClaimEvent]] = relationship(order_by="ClaimEvent.sequence", cascade="all, delete-orphan")


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
    place_of_service: Mapped[str | None] = mapped_column(
        sa.String(2), comment="where this line was performed when not at the claim's place; None: the claim's")
    date_basis: Mapped[str | None] = mapped_column(
        sa.String(10), comment="what the line's date is: capture, reading or visit")


class ClaimEdit(Base):
    __tablename__ = "claim_edits"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    claim_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("claims.id"))
    rule: Mapped[str] = mapped_column(sa.String(60))
    severity: Mapped[str] = mapped_column(sa.String(10), comment="warning or hold")
    message: Mapped[str] = mapped_column(sa.Text)
    line_numbers: Mapped[list[int]] = mapped_column(sa.JSON, default=list)


# The claim life cycle. hold/ready come from the engine's edits; the rest from exports, acknowledgements,
# remittances and the people working the claim.
CLAIM_STATUSES = ("hold", "ready", "submitted", "accepted", "rejected", "paid", "partially_paid", "denied",
                  "appealed", "corrected", "closed")


class ClaimEvent(Base):
    """One change of a claim's status (or a note on it while its status stays): who, when, from, to, why."""

    __tablename__ = "claim_events"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    claim_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("claims.id"), index=True)
    sequence: Mapped[int] = mapped_column(sa.Integer, comment="1, 2, ... per claim, in order")
    from_status: Mapped[str | None] = mapped_column(sa.String(20), comment="None for the claim's first event")
    to_status: Mapped[str] = mapped_column(sa.String(20))
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    actor_label: Mapped[str] = mapped_column(sa.String(200), comment="who, in words, also for the system itself")
    note: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ClaimBatch(Base):
    """One 837D interchange sent by a practice: one claim or many for one payer. Its control number is the
    practice's own, unique and increasing, and is the ISA13 and GS06 of the file."""

    __tablename__ = "claim_batches"
    __table_args__ = (sa.UniqueConstraint("organization_id", "control_number"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organizations.id"))
    control_number: Mapped[int] = mapped_column(sa.Integer)
    payer_id: Mapped[str] = mapped_column(sa.String(80))
    claim_ids: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    interchange: Mapped[str] = mapped_column(sa.Text, comment="the 837D as sent")
    created_by_user_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ClaimExport(Base):
    """Each export of a claim: 837D, FHIR, or the printed summary (pdf, html). The integer id is the X12
    interchange control number, so every interchange sent has its own."""

    __tablename__ = "claim_exports"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    claim_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("claims.id"), index=True)
    format: Mapped[str] = mapped_column(sa.String(10), comment="x12 or fhir")
    exported_by_user_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    batch_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("claim_batches.id"),
                                                        comment="the 837D interchange this export went out in")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Remittance(Base):
    """An 835 payment advice a practice received. The trace number (TRN02) identifies it: the same file
    again is answered with the earlier result."""

    __tablename__ = "remittances"
    __table_args__ = (sa.UniqueConstraint("organization_id", "trace_number"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organizations.id"))
    trace_number: Mapped[str] = mapped_column(sa.String(80), comment="TRN02: check or EFT number")
    payer_id: Mapped[str | None] = mapped_column(sa.String(80))
    payer_name: Mapped[str | None] = mapped_column(sa.String(120))
    paid_total: Mapped[Decimal] = mapped_column(MONEY, comment="BPR02")
    payment_date: Mapped[date | None] = mapped_column(sa.Date)
    content_sha256: Mapped[str] = mapped_column(sa.String(64))
    unmatched: Mapped[list[dict[str, object]]] = mapped_column(
        sa.JSON, default=list, comment="payments in the file that are not this practice's claims")
    received_by_user_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    claims: Mapped[list[RemittanceClaim]] = relationship(order_by="RemittanceClaim.sequence",
                                                         cascade="all, delete-orphan")


class RemittanceClaim(Base):
    """One CLP of an 835 matched to a claim of the practice."""

    __tablename__ = "remittance_claims"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    remittance_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("remittances.id"), index=True)
    claim_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("claims.id"), index=True)
    sequence: Mapped[int] = mapped_column(sa.Integer)
    status_code: Mapped[str] = mapped_column(sa.String(2), comment="CLP02")
    charge: Mapped[Decimal] = mapped_column(MONEY)
    paid: Mapped[Decimal] = mapped_column(MONEY)
    patient_share: Mapped[Decimal | None] = mapped_column(MONEY)
    payer_claim_number: Mapped[str | None] = mapped_column(sa.String(50))
    adjustments: Mapped[list[dict[str, object]]] = mapped_column(sa.JSON, default=list, comment="claim-level CAS")
    result_status: Mapped[str] = mapped_column(sa.String(20), comment="the claim's status this payment set")
    previous_status: Mapped[str] = mapped_column(sa.String(20), comment="the claim's status before it")
    reversed_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, comment="the reversal that undid it")

    lines: Mapped[list[RemittanceLine]] = relationship(order_by="RemittanceLine.sequence",
                                                       cascade="all, delete-orphan")


class RemittanceLine(Base):
    """One SVC of a matched claim payment: what the payer did with one claim line."""

    __tablename__ = "remittance_lines"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    remittance_claim_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("remittance_claims.id"), index=True)
    claim_line_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("claim_lines.id"),
                                                            comment="None when the payer's line matched none")
    sequence: Mapped[int] = mapped_column(sa.Integer)
    control_number: Mapped[str | None] = mapped_column(sa.String(50), comment="REF*6R as returned")
    code: Mapped[str] = mapped_column(sa.String(10), comment="the adjudicated code")
    submitted_code: Mapped[str | None] = mapped_column(sa.String(10), comment="SVC06 when the payer recoded")
    charge: Mapped[Decimal] = mapped_column(MONEY)
    paid: Mapped[Decimal] = mapped_column(MONEY)
    adjustments: Mapped[list[dict[str, object]]] = mapped_column(
        sa.JSON, default=list, comment="[{group, reason, amount, explanation}]")
    remarks: Mapped[list[str]] = mapped_column(sa.JSON, default=list, comment="RARC codes")


class Acknowledgement(Base):
    """A 999 or 277CA a practice received and what it did to the practice's claims."""

    __tablename__ = "acknowledgements"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(5), comment="999 or 277CA")
    content_sha256: Mapped[str] = mapped_column(sa.String(64))
    results: Mapped[list[dict[str, object]]] = mapped_column(sa.JSON, default=list)
    unmatched: Mapped[list[dict[str, object]]] = mapped_column(sa.JSON, default=list)
    received_by_user_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
