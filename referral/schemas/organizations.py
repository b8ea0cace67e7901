from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, post_load, validate, validates, validates_schema

from referral.models.enums import Role, Specialty
from referral.models.organizations import MAX_IMAGE_RETENTION_DAYS, MIN_IMAGE_RETENTION_DAYS
from referral.schemas.common import DumpSchema, LoadSchema, Npi, StreetAddressSchema, Text, UsState, one_of
from referral.services.organizations import token_status
from referral.timezones import is_zone
from referral.validation import CAPTURE_PLACES_OF_SERVICE, normalize_tax_id, taxonomy_is_valid


class TimeZone(fields.String):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not is_zone(text):
            raise ValidationError("Not a time zone name; use an IANA name such as America/Los_Angeles.")
        return text


class AddressSchema(StreetAddressSchema):
    state = UsState(required=True)


class OrganizationCreateSchema(LoadSchema):
    name = Text(200, required=True)
    npi = Npi(required=True)
    tax_id = fields.String(required=True, validate=validate.Length(max=12))
    address = fields.Nested(AddressSchema, required=True)
    phone = Text(20, allow_none=True)
    requires_teledentistry_consent = fields.Boolean(load_default=True)
    time_zone = TimeZone(metadata={"description": "IANA zone in which the practice's people read and type times "
                                                 "(e.g. America/Los_Angeles); defaults to the zone most of the "
                                                 "practice's state uses"})

    @validates("tax_id")
    def _tax_id(self, value: str, **_kwargs: Any) -> None:
        try:
            normalize_tax_id(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


def _place_of_service(value: str) -> None:
    if value not in CAPTURE_PLACES_OF_SERVICE:
        codes = ", ".join(f"{code} {name}" for code, name in CAPTURE_PLACES_OF_SERVICE.items())
        raise ValidationError(f"Not a physical place of service for a capture. Use one of: {codes}.")


class OrganizationUpdateSchema(LoadSchema):
    name = Text(200)
    npi = Npi()
    tax_id = fields.String(validate=validate.Length(max=12))
    address = fields.Nested(AddressSchema, metadata={"description": "replaces the whole billing address"})
    phone = Text(20, allow_none=True)
    requires_teledentistry_consent = fields.Boolean()
    default_place_of_service = fields.String(
        validate=_place_of_service,
        metadata={"description": "CMS place-of-service code a new referral starts with (e.g. 11 office, 03 school)"})
    time_zone = TimeZone()
    image_retention_days = fields.Integer(
        strict=True, allow_none=True,
        validate=validate.Range(min=MIN_IMAGE_RETENTION_DAYS, max=MAX_IMAGE_RETENTION_DAYS),
        metadata={"description": "delete images this many days after their case closed (report signed or "
                  f"cancelled), {MIN_IMAGE_RETENTION_DAYS}-{MAX_IMAGE_RETENTION_DAYS}; null keeps them"})

    @validates("tax_id")
    def _tax_id(self, value: str, **_kwargs: Any) -> None:
        try:
            normalize_tax_id(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None

    @validates_schema
    def _at_least_one_field(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if not data:
            raise ValidationError("Give at least one field to change.")

    @post_load
    def _normalize(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        if "tax_id" in data:
            data["tax_id"] = normalize_tax_id(data["tax_id"])
        if "address" in data:
            data["address"]["zip"] = data["address"]["zip"].replace("-", "").strip()
            data["address"].setdefault("line2", None)
        return data


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
    time_zone = fields.String()
    default_place_of_service = fields.String()
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


class ProviderUpdateSchema(LoadSchema):
    first_name = Text(100)
    last_name = Text(100)
    credentials = Text(50, allow_none=True)
    npi = Npi()
    taxonomy = fields.String()
    specialty = fields.String(validate=one_of(Specialty.values()))
    license_states = fields.List(UsState(), validate=validate.Length(max=60))
    accepting_referrals = fields.Boolean()

    @validates("taxonomy")
    def _taxonomy(self, value: str, **_kwargs: Any) -> None:
        if not taxonomy_is_valid(value):
            raise ValidationError("Not a NUCC taxonomy code (10 characters ending in X, e.g. 1223E0200X).")

    @validates_schema
    def _at_least_one_field(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if not data:
            raise ValidationError("Give at least one field to change.")


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
    invite = fields.Boolean(load_default=False, metadata={
        "description": "make a one-time link for the user to set their own password (set_password_url)"})
    issue_token = fields.Boolean(load_default=True, metadata={
        "description": "issue a first API token (token); false for people who only use the pages"})
    request_link_confirmation = fields.Boolean(load_default=False, metadata={
        "description": "org admins: when the provider already has a login, make this dentist or specialist login "
                       "inactive and unlinked and ask the provider to confirm it (202 pending_confirmation) "
                       "instead of answering 409; ignored when no confirmation is needed"})


class UserSchema(DumpSchema):
    id = fields.UUID()
    organization_id = fields.UUID(allow_none=True)
    email = fields.String()
    role = fields.Enum(Role, by_value=True)
    provider_id = fields.UUID(allow_none=True)
    active = fields.Boolean()
    password_set = fields.Function(lambda user: user.password_hash is not None,
                                   metadata={"description": "whether the user can sign in to the pages"})
    created_at = fields.DateTime()


class UserListSchema(DumpSchema):
    items = fields.List(fields.Nested(UserSchema))


class UserCreatedSchema(UserSchema):
    token = fields.String(allow_none=True, metadata={"description": "API token; shown only in this response"})
    set_password_url = fields.String(allow_none=True, metadata={
        "description": "with invite: the one-time link to set a password; shown only in this response"})
    set_password_expires_at = fields.DateTime(allow_none=True)


class UserReceivedSchema(DumpSchema):
    status = fields.String(metadata={"description": "received: no account was made"})
    message = fields.String()


class UserAcceptedSchema(UserCreatedSchema):
    """The 202 answers: ``received`` (status and message only, no account made) or ``pending_confirmation`` (the
    login was made inactive and unlinked; the user fields, token and link as for a 201, plus the request)."""

    status = fields.String(metadata={"description": "received: no account was made; pending_confirmation: the "
                                                    "login waits for the provider's confirmation"})
    message = fields.String()
    link_request_id = fields.UUID(metadata={"description": "pending_confirmation: the provider link request"})
    requested_provider_id = fields.UUID(metadata={"description": "pending_confirmation: the provider asked"})
    link_request_expires_at = fields.DateTime(metadata={
        "description": "pending_confirmation: the provider must answer before this time"})


class LinkRequestSchema(DumpSchema):
    id = fields.UUID()
    organization_id = fields.UUID()
    provider_id = fields.UUID()
    user_id = fields.UUID(metadata={"description": "the new login asking to read as the provider"})
    user_email = fields.String(allow_none=True)
    role = fields.String()
    requested_by_user_id = fields.UUID()
    requested_by_email = fields.String(allow_none=True)
    status = fields.String(metadata={"description": "pending, confirmed, refused or expired"})
    created_at = fields.DateTime()
    expires_at = fields.DateTime()
    answered_at = fields.DateTime(allow_none=True)


class LinkRequestListSchema(DumpSchema):
    items = fields.List(fields.Nested(LinkRequestSchema))


class UserUpdateSchema(LoadSchema):
    role = fields.String(validate=one_of([r.value for r in Role if r != Role.ADMIN]))
    provider_id = fields.UUID(allow_none=True)
    active = fields.Boolean(metadata={"description": "false: the user can no longer sign in or use tokens"})

    @validates_schema
    def _at_least_one_field(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if not data:
            raise ValidationError("Give at least one field to change.")


class PasswordLinkSchema(DumpSchema):
    user_id = fields.UUID()
    set_password_url = fields.String(metadata={"description": "one-time link; shown only in this response"})
    expires_at = fields.DateTime()


class MfaResetSchema(DumpSchema):
    user_id = fields.UUID()
    mfa_enabled = fields.Boolean(metadata={"description": "always false after a reset"})
    sessions_ended = fields.Integer(metadata={"description": "the member's browser sessions ended by the reset"})


class TokenSchema(DumpSchema):
    id = fields.UUID()
    user_id = fields.UUID()
    prefix = fields.String(metadata={"description": "first characters of the token, to tell tokens apart"})
    created_at = fields.DateTime()
    last_used_at = fields.DateTime(allow_none=True)
    expires_at = fields.DateTime(allow_none=True)
    revoked_at = fields.DateTime(allow_none=True)
    status = fields.Function(lambda token: token_status(token), metadata={"description": "active, expired or revoked"})


class TokenListSchema(DumpSchema):
    items = fields.List(fields.Nested(TokenSchema))

