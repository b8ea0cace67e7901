from __future__ import annotations

from marshmallow import fields

from referral.models.enums import Sex, SubscriberRelationship
from referral.schemas.common import (
    DumpSchema,
    LoadSchema,
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
    first_name = fields.String()
    last_name = fields.String()
    birth_date = fields.Date()
    sex = fields.Enum(Sex, by_value=True)
    state = fields.String()
    address = fields.Dict(allow_none=True)
    coverage = fields.Nested(CoverageDumpSchema, allow_none=True)
    created_at = fields.DateTime()


class PatientPageSchema(PageSchema):
    items = fields.List(fields.Nested(PatientSchema))
