from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from referral.db import Base, UTCDateTime, new_id, utcnow
from referral.models.enums import (
    ConsentGivenBy,
    ConsentMethod,
    Mode,
    ReferralStatus,
    Scope,
    Specialty,
    Urgency,
    enum_column_type,
)
from referral.models.images import Image
from referral.models.organizations import Provider
from referral.models.patients import Patient


class Referral(Base):
    """A case sent from a capturing office to a reader."""

    __tablename__ = "referrals"
    __table_args__ = (
        sa.Index("ix_referrals_org_status_id", "organization_id", "status", "id"),
        sa.Index("ix_referrals_assigned_status_due", "assigned_provider_id", "status", "due_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("organizations.id"), comment="the referring (capturing) organization"
    )
    patient_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    referring_provider_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("providers.id"))
    specialty: Mapped[Specialty] = mapped_column(enum_column_type(Specialty, "referral_specialty"))
    reason: Mapped[str] = mapped_column(sa.Text, comment="chief complaint / question for the reader")
    teeth: Mapped[list[str]] = mapped_column(sa.JSON, default=list, comment="ADA Universal designations")
    urgency: Mapped[Urgency] = mapped_column(enum_column_type(Urgency, "urgency"))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, comment="response deadline from the urgency")
    mode: Mapped[Mode] = mapped_column(enum_column_type(Mode, "mode"))
    scope: Mapped[Scope] = mapped_column(enum_column_type(Scope, "scope"))
    place_of_service: Mapped[str] = mapped_column(
        sa.String(2), comment="CMS place-of-service code of the physical capture site"
    )
    target_provider_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("providers.id"), comment="reader named by the referring office, if any"
    )
    assigned_provider_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("providers.id"))
    status: Mapped[ReferralStatus] = mapped_column(
        enum_column_type(ReferralStatus, "referral_status"), default=ReferralStatus.DRAFT
    )
    consent_given_by: Mapped[ConsentGivenBy | None] = mapped_column(
        enum_column_type(ConsentGivenBy, "consent_given_by")
    )
    consent_method: Mapped[ConsentMethod | None] = mapped_column(
        enum_column_type(ConsentMethod, "consent_method")
    )
    consent_given_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    patient: Mapped[Patient] = relationship()
    referring_provider: Mapped[Provider] = relationship(foreign_keys=[referring_provider_id])
    images: Mapped[list[Image]] = relationship(order_by="Image.id", viewonly=True)

    @property
    def report(self) -> dict[str, str]:
        return {"status": "none"}

    @property
    def consent(self) -> dict[str, object] | None:
        if self.consent_given_by is None:
            return None
        return {
            "given_by": self.consent_given_by.value,
            "method": self.consent_method.value if self.consent_method else None,
            "given_at": self.consent_given_at,
        }
