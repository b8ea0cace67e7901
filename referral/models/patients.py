from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from referral.db import Base, UTCDateTime, new_id, utcnow
from referral.models.enums import Sex, SubscriberRelationship, enum_column_type

# What a deleted patient's identity columns hold. The columns stay NOT NULL (SQLite cannot relax that
# without rebuilding a table that others reference); these values can never be entered through the API
# (names need a character, birth dates are at most 130 years old), so they cannot be mistaken for a person.
ERASED_NAME = ""
ERASED_BIRTH_DATE = date(1, 1, 1)


SUBSCRIBER_COLUMNS = (
    "coverage_subscriber_first_name", "coverage_subscriber_last_name", "coverage_subscriber_birth_date",
    "coverage_subscriber_sex", "coverage_subscriber_address_line1", "coverage_subscriber_address_line2",
    "coverage_subscriber_city", "coverage_subscriber_state", "coverage_subscriber_zip",
)


class Patient(Base):
    """A patient of one organization, with the dental coverage its claims go to.

    A deleted patient stays as a tombstone: the id (which referrals, claims and audit rows point to),
    organization, state and creation facts are kept; name, birth date, sex, address and coverage are erased.
    """

    __tablename__ = "patients"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    first_name: Mapped[str] = mapped_column(sa.String(100))
    last_name: Mapped[str] = mapped_column(sa.String(100))
    birth_date: Mapped[date] = mapped_column(sa.Date)
    sex: Mapped[Sex] = mapped_column(enum_column_type(Sex, "sex"))
    state: Mapped[str] = mapped_column(sa.String(2), comment="state of residence; drives reader licensure")
    address_line1: Mapped[str | None] = mapped_column(sa.String(200), comment="claims to a payer need it")
    address_line2: Mapped[str | None] = mapped_column(sa.String(200))
    city: Mapped[str | None] = mapped_column(sa.String(100))
    zip: Mapped[str | None] = mapped_column(sa.String(9))
    coverage_payer_id: Mapped[str | None] = mapped_column(sa.String(80))
    coverage_payer_name: Mapped[str | None] = mapped_column(sa.String(120))
    coverage_member_id: Mapped[str | None] = mapped_column(sa.String(80))
    coverage_group_number: Mapped[str | None] = mapped_column(sa.String(80))
    coverage_relationship: Mapped[SubscriberRelationship | None] = mapped_column(
        enum_column_type(SubscriberRelationship, "subscriber_relationship")
    )
    # The insured person when the patient is covered as a dependant (relationship spouse, child or other).
    coverage_subscriber_first_name: Mapped[str | None] = mapped_column(
        sa.String(100), comment="the insured person, when not the patient")
    coverage_subscriber_last_name: Mapped[str | None] = mapped_column(sa.String(100))
    coverage_subscriber_birth_date: Mapped[date | None] = mapped_column(sa.Date)
    coverage_subscriber_sex: Mapped[str | None] = mapped_column(sa.String(1), comment="F, M or U")
    coverage_subscriber_address_line1: Mapped[str | None] = mapped_column(sa.String(200))
    coverage_subscriber_address_line2: Mapped[str | None] = mapped_column(sa.String(200))
    coverage_subscriber_city: Mapped[str | None] = mapped_column(sa.String(100))
    coverage_subscriber_state: Mapped[str | None] = mapped_column(sa.String(2))
    coverage_subscriber_zip: Mapped[str | None] = mapped_column(sa.String(9))
    created_by_user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, comment="set when the patient's record was deleted on request; identity columns are erased"
    )

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def address(self) -> dict[str, str | None] | None:
        if self.address_line1 is None:
            return None
        return {"line1": self.address_line1, "line2": self.address_line2, "city": self.city, "zip": self.zip}

    @property
    def coverage(self) -> dict[str, Any] | None:
        if self.coverage_payer_id is None:
            return None
        return {
            "payer_id": self.coverage_payer_id,
            "payer_name": self.coverage_payer_name,
            "member_id": self.coverage_member_id,
            "group_number": self.coverage_group_number,
            "relationship": self.coverage_relationship.value if self.coverage_relationship else None,
            "subscriber": self.subscriber,
        }

    @property
    def subscriber(self) -> dict[str, Any] | None:
        """The insured person of a dependant's coverage; None when the patient is the subscriber."""
        if self.coverage_subscriber_last_name is None:
            return None
        address = None
        if self.coverage_subscriber_address_line1 is not None:
            address = {"line1": self.coverage_subscriber_address_line1, "line2": self.coverage_subscriber_address_line2,
                       "city": self.coverage_subscriber_city, "state": self.coverage_subscriber_state,
                       "zip": self.coverage_subscriber_zip}
        return {"first_name": self.coverage_subscriber_first_name, "last_name": self.coverage_subscriber_last_name,
                "birth_date": self.coverage_subscriber_birth_date, "sex": self.coverage_subscriber_sex,
                "address": address}

    def clear_subscriber(self) -> None:
        for column in SUBSCRIBER_COLUMNS:
            setattr(self, column, None)
