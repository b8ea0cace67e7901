from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from typing import Any

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
from referral.models.reports import Report

# Accession numbers are typed and read aloud at the sensor: Crockford's base-32 digits (no I, L, O, U).
ACCESSION_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ACCESSION_MAX_LENGTH = 16  # DICOM AccessionNumber is an SH value


def new_accession_number() -> str:
    """``R`` and nine random digits of base 32 (45 bits): unique per practice, enforced by an index."""
    return "R" + "".join(secrets.choice(ACCESSION_ALPHABET) for _ in range(9))


def new_study_instance_uid() -> str:
    """A DICOM UID under the 2.25 root, made from a random UUID (at most 44 characters)."""
    return f"2.25.{uuid.uuid4().int}"


class Referral(Base):
    """A case sent from a capturing office to a reader."""

    __tablename__ = "referrals"
    # Lists are ordered by response deadline then id, from either side: the referring office's
    # (organization) and the reader's inbox (assigned provider), with or without a status filter.
    __table_args__ = (
        sa.Index("ix_referrals_org_due", "organization_id", "due_at", "id"),
        sa.Index("ix_referrals_org_status_due", "organization_id", "status", "due_at", "id"),
        sa.Index("ix_referrals_assigned_due", "assigned_provider_id", "due_at", "id"),
        sa.Index("ix_referrals_assigned_status_due", "assigned_provider_id", "status", "due_at", "id"),
        sa.Index("ux_referrals_org_accession", "organization_id", "accession_number", unique=True),
        sa.Index("ux_referrals_study_instance_uid", "study_instance_uid", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("organizations.id"), comment="the referring (capturing) organization"
    )
    patient_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    # Set for every referral (existing ones were given theirs by migration 0018). The columns stay nullable in
    # the database only because SQLite cannot make them NOT NULL without rebuilding a table others reference.
    accession_number: Mapped[str] = mapped_column(
        sa.String(ACCESSION_MAX_LENGTH), nullable=True, default=new_accession_number,
        comment="the case's DICOM accession number, unique within the practice")
    study_instance_uid: Mapped[str] = mapped_column(
        sa.String(64), nullable=True, default=new_study_instance_uid,
        comment="the DICOM Study Instance UID the worklist gives the case")
    referring_provider_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("providers.id"))
    specialty: Mapped[Specialty] = mapped_column(enum_column_type(Specialty, "referral_specialty"))
    reason: Mapped[str] = mapped_column(sa.Text, comment="chief complaint / question for the reader")
    reason_code: Mapped[str | None] = mapped_column(
        sa.String(20), comment="SNOMED CT code of the reason, from the dental reason-for-referral list, when one fits"
    )
    teeth: Mapped[list[str]] = mapped_column(sa.JSON, default=list, comment="ADA Universal designations")
    urgency: Mapped[Urgency] = mapped_column(enum_column_type(Urgency, "urgency"))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, comment="response deadline from the urgency")
    mode: Mapped[Mode] = mapped_column(enum_column_type(Mode, "mode"))
    scope: Mapped[Scope] = mapped_column(enum_column_type(Scope, "scope"))
    questions: Mapped[list[str] | None] = mapped_column(
        sa.JSON, default=list, comment="what the referring dentist asks: diagnosis, treatment_plan, restorability")
    restorability_decided_by: Mapped[str | None] = mapped_column(
        sa.String(20), comment="referring_dentist or reader, when restorability is asked")
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
    consent_form_key: Mapped[str | None] = mapped_column(
        sa.String(512), comment="object key of a scanned consent form, if one was uploaded"
    )
    consent_form_content_type: Mapped[str | None] = mapped_column(sa.String(40))
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, comment="first submission")
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    patient: Mapped[Patient] = relationship()
    referring_provider: Mapped[Provider] = relationship(foreign_keys=[referring_provider_id])
    images: Mapped[list[Image]] = relationship(order_by="Image.id", viewonly=True)
    events: Mapped[list[ReferralEvent]] = relationship(order_by="ReferralEvent.id", viewonly=True)
    interpretation: Mapped[Report | None] = relationship(viewonly=True, uselist=False)

    @property
    def report(self) -> dict[str, Any]:
        """The report's state as both sides see it on the case."""
        if self.interpretation is None:
            return {"status": "none"}
        return {"status": self.interpretation.status.value, "signed_at": self.interpretation.signed_at}

    @property
    def question(self) -> dict[str, Any]:
        """The structured question as both sides read it, with the scope (evaluate only, or evaluate and treat)."""
        return {"asks": list(self.questions or []), "restorability_decided_by": self.restorability_decided_by,
                "scope": self.scope.value}

    @property
    def consent(self) -> dict[str, object] | None:
        if self.consent_given_by is None:
            return None
        return {
            "given_by": self.consent_given_by.value,
            "method": self.consent_method.value if self.consent_method else None,
            "given_at": self.consent_given_at,
            "form_on_file": self.consent_form_key is not None,
        }


class ReferralEvent(Base):
    """One step of a referral's life: who moved it from which status to which, when and why."""

    __tablename__ = "referral_events"
    __table_args__ = (sa.Index("ix_referral_events_referral_id_id", "referral_id", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    referral_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("referrals.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    action: Mapped[str] = mapped_column(sa.String(30), comment="submit, accept, decline, retake_request, cancel...")
    from_status: Mapped[str] = mapped_column(sa.String(32))
    to_status: Mapped[str] = mapped_column(sa.String(32))
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    provider_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("providers.id"), comment="the reader the step concerns, if any"
    )
    reason: Mapped[str | None] = mapped_column(sa.String(1000))
    details: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, comment="ids and codes only")


class ReferralDecline(Base):
    """A reader who declined a referral is never routed that referral again."""

    __tablename__ = "referral_declines"
    __table_args__ = (sa.UniqueConstraint("referral_id", "provider_id"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    referral_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("referrals.id"))
    provider_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("providers.id"))
    reason: Mapped[str] = mapped_column(sa.String(1000))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
