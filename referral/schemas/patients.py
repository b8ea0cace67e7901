from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, post_dump, validates_schema

from referral.models.enums import Sex, SubscriberRelationship
from referral.schemas.common import (
    DumpSchema,
    LoadSchema,
    PageQuerySchema,
    PageSchema,
    PastDate,
    StreetAddressSchema,
    Text,
    UsState,
    one_of,
)


class SubscriberAddressSchema(StreetAddressSchema):
    """The subscriber may live in another state than the patient, so their address names its state."""

    state = UsState(required=True)


class SubscriberSchema(LoadSchema):
    first_name = Text(100, required=True)
    last_name = Text(100, required=True)
    birth_date = PastDate(allow_none=True)
    sex = fields.String(allow_none=True, validate=one_of(Sex.values()))
    address = fields.Nested(SubscriberAddressSchema, allow_none=True)


class CoverageSchema(LoadSchema):
    payer_id = Text(80, required=True)
    payer_name = Text(120, required=True)
    member_id = Text(80, required=True, metadata={"description": "the subscriber's member id, also for a dependant"})
    group_number = Text(80, allow_none=True)
    relationship = fields.String(load_default="self", validate=one_of(SubscriberRelationship.values()), metadata={
        "description": "the patient's relationship to the subscriber (the insured person)"})
    subscriber = fields.Nested(SubscriberSchema, allow_none=True, metadata={
        "description": "the insured person; required when relationship is spouse, child or other, refused for self"})

    @validates_schema
    def _subscriber_matches_relationship(self, data: dict[str, Any], **_kwargs: Any) -> None:
        relationship = data.get("relationship", "self")
        subscriber = data.get("subscriber")
        if relationship != "self" and not subscriber:
            raise ValidationError(
                f"The patient is covered as the subscriber's {relationship}: name the subscriber (the insured "
                "person) with their first and last name.", "subscriber")
        if relationship == "self" and subscriber:
            raise ValidationError(
                "The patient is the subscriber, so no other subscriber is named; choose the patient's "
                "relationship (spouse, child or other) or leave the subscriber out.", "subscriber")


class PatientCreateSchema(LoadSchema):
    first_name = Text(100, required=True)
    last_name = Text(100, required=True)
    birth_date = PastDate(required=True)
    sex = fields.String(required=True, validate=one_of(Sex.values()))
    state = UsState(required=True)
    address = fields.Nested(StreetAddressSchema, allow_none=True, metadata={
        "description": "street address in the patient's state; needed on claims sent to a payer"})
    coverage = fields.Nested(CoverageSchema, allow_none=True)


class PatientUpdateSchema(LoadSchema):
    """Only the fields sent change; ``address`` and ``coverage`` are replaced whole (``null`` removes them)."""

    first_name = Text(100)
    last_name = Text(100)
    birth_date = PastDate()
    sex = fields.String(validate=one_of(Sex.values()))
    state = UsState()
    address = fields.Nested(StreetAddressSchema, allow_none=True)
    coverage = fields.Nested(CoverageSchema, allow_none=True)


class SubscriberDumpSchema(DumpSchema):
    first_name = fields.String()
    last_name = fields.String()
    birth_date = fields.Date(allow_none=True)
    sex = fields.String(allow_none=True)
    address = fields.Dict(allow_none=True)


class CoverageDumpSchema(DumpSchema):
    payer_id = fields.String()
    payer_name = fields.String()
    member_id = fields.String()
    group_number = fields.String(allow_none=True)
    relationship = fields.String(allow_none=True)
    subscriber = fields.Nested(SubscriberDumpSchema, allow_none=True, metadata={
        "description": "the insured person when the patient is a dependant; null when the patient is the subscriber"})


class PatientSchema(DumpSchema):
    id = fields.UUID()
    organization_id = fields.UUID()
    first_name = fields.String(allow_none=True, metadata={"description": "null once the patient is deleted"})
    last_name = fields.String(allow_none=True, metadata={"description": "null once the patient is deleted"})
    birth_date = fields.Date(allow_none=True, metadata={"description": "null once the patient is deleted"})
    sex = fields.Enum(Sex, by_value=True)
    state = fields.String()
    address = fields.Dict(allow_none=True)
    coverage = fields.Nested(CoverageDumpSchema, allow_none=True)
    created_at = fields.DateTime()
    deleted_at = fields.DateTime(allow_none=True, metadata={
        "description": "set when the patient's record was deleted; referrals still show the patient this way"})

    @post_dump
    def _erased_identity(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        # The row keeps placeholders (its columns are NOT NULL); a reader sees no identity at all.
        if data.get("deleted_at") is not None:
            data.update({key: None for key in ("first_name", "last_name", "birth_date") if key in data})
        return data


class PatientQuerySchema(PageQuerySchema):
    # Text: control characters are refused (PostgreSQL cannot even compare a string holding NUL).
    q = Text(100, min_length=2, metadata={
        "description": "search: the start of a last or first name (any case), or a birth date YYYY-MM-DD"})


class PatientPageSchema(PageSchema):
    items = fields.List(fields.Nested(PatientSchema))
