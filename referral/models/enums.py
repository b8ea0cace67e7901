"""Vocabularies stored by value. Kept in one module so schemas, services and models agree."""

from __future__ import annotations

import enum

import sqlalchemy as sa


class StrEnum(enum.StrEnum):
    @classmethod
    def values(cls) -> list[str]:
        return [member.value for member in cls]


class Specialty(StrEnum):
    GENERAL = "general"
    ENDODONTICS = "endodontics"
    ORAL_SURGERY = "oral_surgery"
    PERIODONTICS = "periodontics"
    ORAL_RADIOLOGY = "oral_radiology"
    ORAL_MEDICINE = "oral_medicine"
    PEDIATRIC = "pediatric"
    ORTHODONTICS = "orthodontics"
    PROSTHODONTICS = "prosthodontics"
    HYGIENE = "hygiene"
    ASSISTANT = "assistant"  # a dental assistant: captures images, never reads, refers or renders


# Providers who take images but never read, refer or render a claim: the practice's dentist does.
CAPTURE_ONLY_SPECIALTIES = (Specialty.HYGIENE, Specialty.ASSISTANT)
# What a referral may ask for: a reading specialty, never a capturing one.
REFERRAL_SPECIALTIES = tuple(s for s in Specialty if s is not Specialty.ASSISTANT)


class Role(StrEnum):
    ADMIN = "admin"  # platform operator; belongs to no organization
    ORG_ADMIN = "org_admin"
    STAFF = "staff"
    DENTIST = "dentist"
    SPECIALIST = "specialist"
    BILLING = "billing"


class Sex(StrEnum):
    FEMALE = "F"
    MALE = "M"
    UNKNOWN = "U"


class Urgency(StrEnum):
    ROUTINE = "routine"
    URGENT = "urgent"
    EMERGENCY = "emergency"


class Mode(StrEnum):
    ASYNCHRONOUS = "asynchronous"
    SYNCHRONOUS = "synchronous"


class Scope(StrEnum):
    EVALUATE_ONLY = "evaluate_only"
    EVALUATE_AND_TREAT = "evaluate_and_treat"


class Question(StrEnum):
    """What the referring dentist asks the reader."""

    DIAGNOSIS = "diagnosis"
    TREATMENT_PLAN = "treatment_plan"
    RESTORABILITY = "restorability"


class RestorabilityDecider(StrEnum):
    """Who decides whether the tooth can be restored: the referring dentist (the reader advises) or the reader."""

    REFERRING_DENTIST = "referring_dentist"
    READER = "reader"


class ReferralStatus(StrEnum):
    DRAFT = "draft"
    ROUTED = "routed"
    ACCEPTED = "accepted"
    REPORTED = "reported"
    CLOSED = "closed"
    UNASSIGNED = "unassigned"
    RETAKE_REQUESTED = "retake_requested"
    CANCELLED = "cancelled"


class ImageKind(StrEnum):
    PERIAPICAL = "periapical"
    BITEWING = "bitewing"
    OCCLUSAL = "occlusal"
    PANORAMIC = "panoramic"
    CEPHALOMETRIC = "cephalometric"
    EXTRAORAL_POSTERIOR = "extraoral_posterior"
    COMPLETE_SERIES = "complete_series"
    PHOTO_INTRAORAL = "photo_intraoral"
    PHOTO_EXTRAORAL = "photo_extraoral"

    @property
    def is_photo(self) -> bool:
        return self in (ImageKind.PHOTO_INTRAORAL, ImageKind.PHOTO_EXTRAORAL)


class ConsentGivenBy(StrEnum):
    PATIENT = "patient"
    GUARDIAN = "guardian"


class ConsentMethod(StrEnum):
    VERBAL = "verbal"
    WRITTEN = "written"


class SubscriberRelationship(StrEnum):
    SELF = "self"
    SPOUSE = "spouse"
    CHILD = "child"
    OTHER = "other"


def enum_column_type(enum_cls: type[StrEnum], name: str) -> sa.Enum:
    """Store enums by value as a short string with a CHECK constraint naming the allowed values."""
    return sa.Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda cls: [m.value for m in cls],
        validate_strings=True,
    )
