from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates, validates_schema

from referral.models.enums import Role, Specialty
from referral.models.organizations import MAX_IMAGE_RETENTION_DAYS, MIN_IMAGE_RETENTION_DAYS
from referral.schemas.common import DumpSchema, LoadSchema, Npi, StreetAddressSchema, Text, UsState, one_of
from referral.validation import normalize_tax_id, taxonomy_is_valid


class AddressSchema(StreetAddressSchema):
    state = UsState(required=True)


class OrganizationCreateSchema(LoadSchema):
    name = Text(200, required=True)
    npi = Npi(required=True)
    tax_id = fields.String(required=True, validate=validate.Length(max=12))
    address = fields.Nested(AddressSchema, required=True)
    phone = Text(20, allow_none=True)
    requires_teledentistry_consent = fields.Boolean(load_default=True)

    @validates("tax_id")
    def _tax_id(self, value: str, **_kwargs: Any) -> None:
        try:
            normalize_tax_id(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class OrganizationUpdateSchema(LoadSchema):
    image_retention_days = fields.Integer(
        strict=True, allow_none=True,
        validate=validate.Range(min=MIN_IMAGE_RETENTION_DAYS, max=MAX_IMAGE_RETENTION_DAYS),
        metadata={"description": "delete images this many days after their case closed (report signed or "
                  f"cancelled), {MIN_IMAGE_RETENTION_DAYS}-{MAX_IMAGE_RETENTION_DAYS}; null keeps them"})

    @validates_schema
    def _at_least_one_field(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if not data:
            raise ValidationError("Give at least one field to change.")


class AddressDumpSchema(DumpSchema):
    line1 = fields.String()
    line2 = fields.String(allow_none=True)
    city = fields.String()
    state = fields.String()
    zip = fields.String()


class OrganizationSchema(DumpSchema):
    id = fields.UUID()
    name = fields.String()
    npi = fields.String()
    tax_id = fields.String()
    address = fields.Nested(AddressDumpSchema)
    phone = fields.String(allow_none=True)
    requires_teledentistry_consent = fields.Boolean()
    image_retention_days = fields.Integer(allow_none=True)
    created_at = fields.DateTime()


class OrganizationListSchema(DumpSchema):
    items = fields.List(fields.Nested(OrganizationSchema))


class ProviderCreateSchema(LoadSchema):
    first_name = Text(100, required=True)
    last_name = Text(100, required=True)
    credentials = Text(50, allow_none=True)
    npi = Npi(required=True)
    taxonomy = fields.String(required=True)
    specialty = fields.String(required=True, validate=one_of(Specialty.values()))
    license_states = fields.List(UsState(), load_default=list, validate=validate.Length(max=60))
    accepting_referrals = fields.Boolean(load_default=True)

    @validates("taxonomy")
    def _taxonomy(self, value: str, **_kwargs: Any) -> None:
        if not taxonomy_is_valid(value):
            raise ValidationError("Not a NUCC taxonomy code (10 characters ending in X, e.g. 1223E0200X).")


class ProviderSchema(DumpSchema):
    id = fields.UUID()
    organization_id = fields.UUID()
    first_name = fields.String()
    last_name = fields.String()
    credentials = fields.String(allow_none=True)
    npi = fields.String()
    taxonomy = fields.String()
    specialty = fields.Enum(Specialty, by_value=True)
    license_states = fields.List(fields.String())
    accepting_referrals = fields.Boolean()
    created_at = fields.DateTime()


class ProviderListSchema(DumpSchema):
    items = fields.List(fields.Nested(ProviderSchema))


class UserCreateSchema(LoadSchema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    role = fields.String(required=True, validate=one_of([r.value for r in Role if r != Role.ADMIN]))
    provider_id = fields.UUID(allow_none=True)
    # load_only: the password goes in once and never comes back out in any response.
    password = fields.String(load_only=True, validate=validate.Length(min=12, max=128),
                             metadata={"description": "optional; for signing in to the web pages (12-128 characters)"})


class UserSchema(DumpSchema):
    id = fields.UUID()
    organization_id = fields.UUID(allow_none=True)
    email = fields.String()
    role = fields.Enum(Role, by_value=True)
    provider_id = fields.UUID(allow_none=True)
    active = fields.Boolean()
    created_at = fields.DateTime()


class UserCreatedSchema(UserSchema):
    token = fields.String(metadata={"description": "API token; shown only in this response"})
