from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from referral.db import Base, UTCDateTime, new_id, utcnow
from referral.models.enums import Specialty, enum_column_type
from referral.timezones import FALLBACK_ZONE

# Bounds of an organization's image retention period. No federal rule sets how long dental records are
# kept (HIPAA's six years is for the compliance documentation of 45 CFR 164.316/164.530, not charts); state
# dental boards do, typically 5-10 years after the last treatment and longer for minors. The server cannot
# know each state's rule, so the practice chooses; the floor only stops an obvious slip (days typed as
# months or years) from destroying records, and the ceiling is a century.
MIN_IMAGE_RETENTION_DAYS = 365
MAX_IMAGE_RETENTION_DAYS = 36_525


class Organization(Base):
    """A practice: the billing entity whose claims carry its NPI and tax id."""

    __tablename__ = "organizations"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(sa.String(200))
    npi: Mapped[str] = mapped_column(sa.String(10), unique=True, comment="type 2 (organization) NPI")
    tax_id: Mapped[str] = mapped_column(sa.String(9), comment="EIN, nine digits without the dash")
    address_line1: Mapped[str] = mapped_column(sa.String(200))
    address_line2: Mapped[str | None] = mapped_column(sa.String(200))
    city: Mapped[str] = mapped_column(sa.String(100))
    state: Mapped[str] = mapped_column(sa.String(2))
    zip: Mapped[str] = mapped_column(sa.String(9))
    phone: Mapped[str | None] = mapped_column(sa.String(20))
    requires_teledentistry_consent: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    image_retention_days: Mapped[int | None] = mapped_column(
        sa.Integer, comment="images of cases closed longer ago are deleted by `retention apply`; null keeps them"
    )
    time_zone: Mapped[str] = mapped_column(
        sa.String(64), server_default=FALLBACK_ZONE,
        comment="IANA zone in which the practice's people read and type times")
    default_place_of_service: Mapped[str] = mapped_column(
        sa.String(2), server_default="11", default="11",
        comment="CMS place-of-service code a new referral starts with")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    providers: Mapped[list[Provider]] = relationship(back_populates="organization")

    @property
    def address(self) -> dict[str, Any]:
        return {
            "line1": self.address_line1,
            "line2": self.address_line2,
            "city": self.city,
            "state": self.state,
            "zip": self.zip,
        }


class Provider(Base):
    """A person who captures or reads: dentist, specialist or hygienist of one organization."""

    __tablename__ = "providers"
    __table_args__ = (sa.UniqueConstraint("organization_id", "npi"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    first_name: Mapped[str] = mapped_column(sa.String(100))
    last_name: Mapped[str] = mapped_column(sa.String(100))
    credentials: Mapped[str | None] = mapped_column(sa.String(50), comment="e.g. DDS, MS")
    npi: Mapped[str] = mapped_column(sa.String(10), comment="type 1 (individual) NPI")
    taxonomy: Mapped[str] = mapped_column(sa.String(10), comment="NUCC provider taxonomy code")
    specialty: Mapped[Specialty] = mapped_column(enum_column_type(Specialty, "specialty"))
    license_states: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    accepting_referrals: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    organization: Mapped[Organization] = relationship(back_populates="providers")

    @property
    def display_name(self) -> str:
        name = f"{self.first_name} {self.last_name}"
        return f"{name}, {self.credentials}" if self.credentials else name
