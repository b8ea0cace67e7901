from __future__ import annotations

from typing import Any

from marshmallow import fields, post_dump

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


class CoverageSchema(LoadSchema):
    payer_id = Text(80, required=True)
    payer_name = Text(120, required=True)
    member_id = Text(80, required=True)
    group_number = Text(80, allow_none=True)
    relationship = fields.String(load_default="self", validate=one_of(SubscriberRelationship.values()))


class PatientCreateSchema(LoadSchema):
    first_name = Text(100, required=True)
    last_name = Text(100, required=True)
    birth_date = PastDate(required=True)
    sex = fields.String(required=True, validate=one_of(Sex.values()))
    state = UsState(required=True)
    address = fields.Nested(StreetAddressSchema, allow_none=True, metadata={
        "description": "street address in the patient's state; needed on claims sent to a payer"})
    coverage = fields.Nested(CoverageSchema, allow_none=True)


class CoverageDumpSchema(DumpSchema):
    payer_id = fields.String()
    payer_name = fields.String()
    member_id = fields.String()
    group_number = fields.String(allow_none=True)
    relationship = fields.String(allow_none=True)


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
