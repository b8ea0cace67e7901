from __future__ import annotations

import uuid
from typing import Any

from flask import jsonify, make_response, request
from flask.views import MethodView

from referral.api.parsing import Blueprint
from referral.http.context import current_actor, db_session, settings
from referral.schemas.dicom import DicomDeviceCreateSchema, DicomDeviceListSchema, DicomDeviceSchema
from referral.schemas.organizations import (
    LinkRequestListSchema,
    LinkRequestSchema,
    MfaResetSchema,
    OrganizationCreateSchema,
    OrganizationListSchema,
    OrganizationSchema,
    OrganizationUpdateSchema,
    PasswordLinkSchema,
    ProviderCreateSchema,
    ProviderListSchema,
    ProviderSchema,
    ProviderUpdateSchema,
    TokenListSchema,
    TokenSchema,
    UserAcceptedSchema,
    UserCreatedSchema,
    UserCreateSchema,
    UserListSchema,
    UserSchema,
    UserUpdateSchema,
)
from referral.services import access, dicom_devices, link_requests, mfa, organizations
from referral.validation import normalize_tax_id, normalize_zip


class _UserWithToken:
    """The new user as the schema reads it, plus the token and link that are shown this once."""

    def __init__(self, user: Any, token: str | None, link: Any = None) -> None:
        self._user = user
        self.token = token
        self.set_password_url = link.url(base_url()) if link is not None else None
        self.set_password_expires_at = link.expires_at if link is not None else None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._user, name)


def base_url() -> str:
    """Where people open the pages: PUBLIC_BASE_URL, else the address this request came to."""
    return settings().public_base_url or request.host_url.rstrip("/")


# What a 202 pending_confirmation adds to the new login's fields.
_PENDING_FIELDS = ("status", "message", "link_request_id", "requested_provider_id", "link_request_expires_at")

blp = Blueprint("organizations", __name__, description="Practices, their providers and users")


@blp.route("/organizations")
class Organizations(MethodView):
    @blp.arguments(OrganizationCreateSchema)
    @blp.response(201, OrganizationSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Register a practice (platform admin)"""
        data["tax_id"] = normalize_tax_id(data["tax_id"])
        data["address"]["zip"] = normalize_zip(data["address"]["zip"])
        return organizations.create_organization(db_session(), current_actor(), data)

    @blp.response(200, OrganizationListSchema)
    def get(self) -> Any:
        """Organizations the caller may see"""
        return {"items": organizations.list_organizations(db_session(), current_actor())}


@blp.route("/organizations/<uuid:organization_id>")
class OrganizationById(MethodView):
    @blp.response(200, OrganizationSchema)
    def get(self, organization_id: uuid.UUID) -> Any:
        """One organization"""
        return access.get_organization(db_session(), current_actor(), organization_id)

    @blp.arguments(OrganizationUpdateSchema)
    @blp.response(200, OrganizationSchema)
    def patch(self, data: dict[str, Any], organization_id: uuid.UUID) -> Any:
        """Change the practice's details and settings: name, NPI, tax id, billing address, phone, time zone,
        default place of service, image retention (platform admin or the organization's admin)"""
        return organizations.update_organization(db_session(), current_actor(), organization_id, data)


@blp.route("/organizations/<uuid:organization_id>/providers")
class Providers(MethodView):
    @blp.arguments(ProviderCreateSchema)
    @blp.response(201, ProviderSchema)
    def post(self, data: dict[str, Any], organization_id: uuid.UUID) -> Any:
        """Add a provider (platform admin or the organization's admin)"""
        return organizations.create_provider(db_session(), current_actor(), organization_id, data)

    @blp.response(200, ProviderListSchema)
    def get(self, organization_id: uuid.UUID) -> Any:
        """The organization's providers"""
        return {"items": organizations.list_providers(db_session(), current_actor(), organization_id)}


@blp.route("/providers/<uuid:provider_id>")
class ProviderById(MethodView):
    @blp.arguments(ProviderUpdateSchema)
    @blp.response(200, ProviderSchema)
    def patch(self, data: dict[str, Any], provider_id: uuid.UUID) -> Any:
        """Change a provider: name, credentials, NPI, taxonomy, specialty, license states, accepting referrals
        (platform admin or the organization's admin)"""
        return organizations.update_provider(db_session(), current_actor(), provider_id, data)


@blp.route("/organizations/<uuid:organization_id>/users")
class Users(MethodView):
    @blp.arguments(UserCreateSchema)
    @blp.response(201, UserCreatedSchema)
    @blp.alt_response(202, schema=UserAcceptedSchema,
                      description="received: taken in, no account made: the email cannot be used in this practice "
                                  "now (says nothing of where the address is used). pending_confirmation: with "
                                  "request_link_confirmation, the login was made inactive and linked to no provider "
                                  "until the provider confirms.")
    def post(self, data: dict[str, Any], organization_id: uuid.UUID) -> Any:
        """Add a user; issue their first API token and, with invite, a one-time link to set a password
        (each shown once)"""
        configured = settings()
        try:
            created = organizations.add_user(db_session(), current_actor(), organization_id, data,
                                             token_days=configured.api_token_days,
                                             link_hours=configured.password_link_hours)
        except organizations.AddressTaken:
            return make_response(jsonify({"status": "received", "message": organizations.ADDRESS_TAKEN_MESSAGE}),
                                 202)
        if created.link_request is not None:
            request_row = created.link_request
            body = UserCreatedSchema().dump(_UserWithToken(created.user, created.token, created.link))
            body.update(UserAcceptedSchema(only=_PENDING_FIELDS).dump({
                "status": "pending_confirmation", "link_request_id": request_row.id,
                "requested_provider_id": request_row.provider_id, "link_request_expires_at": request_row.expires_at,
                "message": "The login was made inactive and linked to no provider. A login of the provider must "
                           "confirm the link before it can be used."}))
            return make_response(jsonify(body), 202)
        return _UserWithToken(created.user, created.token, created.link)

    @blp.response(200, UserListSchema)
    def get(self, organization_id: uuid.UUID) -> Any:
        """The organization's users (platform admin or the organization's admin)"""
        return {"items": organizations.list_users(db_session(), current_actor(), organization_id)}


@blp.route("/users/<uuid:user_id>")
class UserById(MethodView):
    @blp.response(200, UserSchema)
    def get(self, user_id: uuid.UUID) -> Any:
        """One user (platform admin or the organization's admin)"""
        return organizations.get_managed_user(db_session(), current_actor(), user_id)

    @blp.arguments(UserUpdateSchema)
    @blp.response(200, UserSchema)
    def patch(self, data: dict[str, Any], user_id: uuid.UUID) -> Any:
        """Change a user's role or provider link, or deactivate (active: false) or reactivate them"""
        return organizations.update_user(db_session(), current_actor(), user_id, data)


@blp.route("/users/<uuid:user_id>/password-link")
class UserPasswordLink(MethodView):
    @blp.response(201, PasswordLinkSchema)
    def post(self, user_id: uuid.UUID) -> Any:
        """Reset a user's password: their password and sessions end now, and a one-time link to choose a new
        one is returned (shown once)"""
        user, link = organizations.reset_password(db_session(), current_actor(), user_id,
                                                  link_hours=settings().password_link_hours)
        return {"user_id": user.id, "set_password_url": link.url(base_url()), "expires_at": link.expires_at}


@blp.route("/users/<uuid:user_id>/mfa")
class UserMfaReset(MethodView):
    @blp.response(200, MfaResetSchema)
    def delete(self, user_id: uuid.UUID) -> Any:
        """Reset a member's two-step sign-in (a lost phone): their authenticator and recovery codes are removed
        and their browser sessions end; they enrol again at their next sign-in where MFA is required (platform
        admin, or the organization's admin for another member)"""
        user, ended = mfa.reset(db_session(), current_actor(), user_id)
        return {"user_id": user.id, "mfa_enabled": False, "sessions_ended": ended}


@blp.route("/users/<uuid:user_id>/tokens")
class UserTokens(MethodView):
    @blp.response(200, TokenListSchema)
    def get(self, user_id: uuid.UUID) -> Any:
        """A user's API tokens, newest first (the user, their organization's admin or a platform admin)"""
        return {"items": organizations.list_tokens(db_session(), current_actor(), user_id)}


@blp.route("/tokens")
class OwnTokens(MethodView):
    @blp.response(200, TokenListSchema)
    def get(self) -> Any:
        """The caller's own API tokens, newest first"""
        actor = current_actor()
        return {"items": organizations.list_tokens(db_session(), actor, actor.user_id)} if actor.user_id else {
            "items": []}


@blp.route("/tokens/<uuid:token_id>")
class TokenById(MethodView):
    @blp.response(200, TokenSchema)
    def delete(self, token_id: uuid.UUID) -> Any:
        """Revoke an API token at once (its owner, their organization's admin or a platform admin)"""
        return organizations.revoke_token(db_session(), current_actor(), token_id)


@blp.route("/organizations/<uuid:organization_id>/dicom-devices")
class DicomDevices(MethodView):
    @blp.arguments(DicomDeviceCreateSchema)
    @blp.response(201, DicomDeviceSchema)
    def post(self, data: dict[str, Any], organization_id: uuid.UUID) -> Any:
        """Register imaging software or a sensor for the DICOM listener (the organization's admin)"""
        return dicom_devices.register_device(db_session(), current_actor(), organization_id, data)

    @blp.response(200, DicomDeviceListSchema)
    def get(self, organization_id: uuid.UUID) -> Any:
        """The organization's DICOM devices (the organization's admin)"""
        return {"items": dicom_devices.list_devices(db_session(), current_actor(), organization_id)}


@blp.route("/organizations/<uuid:organization_id>/dicom-devices/<uuid:device_id>")
class DicomDeviceById(MethodView):
    @blp.response(204)
    def delete(self, organization_id: uuid.UUID, device_id: uuid.UUID) -> Any:
        """Remove a device: its AE title is refused from then on (the organization's admin)"""
        dicom_devices.delete_device(db_session(), current_actor(), organization_id, device_id)


def _link_request_view(request_row: Any, emails: dict[uuid.UUID, str]) -> dict[str, Any]:
    return {"id": request_row.id, "organization_id": request_row.organization_id,
            "provider_id": request_row.provider_id, "user_id": request_row.user_id,
            "user_email": emails.get(request_row.user_id), "role": request_row.role,
            "requested_by_user_id": request_row.requested_by_user_id,
            "requested_by_email": emails.get(request_row.requested_by_user_id),
            "status": link_requests.status_of(request_row), "created_at": request_row.created_at,
            "expires_at": request_row.expires_at, "answered_at": request_row.answered_at}


@blp.route("/me/link-requests", methods=["GET"])
@blp.response(200, LinkRequestListSchema)
def my_link_requests() -> Any:
    """Pending requests to give another login the provider you read as, oldest first (dentists and specialists
    linked to a provider; empty for everyone else)"""
    session = db_session()
    rows = link_requests.list_pending(session, current_actor())
    emails = link_requests.emails_of(session, rows)
    return {"items": [_link_request_view(row, emails) for row in rows]}


@blp.route("/link-requests/<uuid:link_request_id>/confirm", methods=["POST"])
@blp.response(200, LinkRequestSchema)
@blp.alt_response(409, description="the request expired, was already answered, or its login changed since")
def confirm_link_request(link_request_id: uuid.UUID) -> Any:
    """Confirm that the new login may read as your provider: it is linked and activated (a login already linked
    to the provider only; anyone else 404)"""
    session = db_session()
    row = link_requests.confirm(session, current_actor(), link_request_id)
    return _link_request_view(row, link_requests.emails_of(session, [row]))


@blp.route("/link-requests/<uuid:link_request_id>/refuse", methods=["POST"])
@blp.response(200, LinkRequestSchema)
@blp.alt_response(409, description="the request expired or was already answered")
def refuse_link_request(link_request_id: uuid.UUID) -> Any:
    """Refuse the new login: it stays inactive and linked to no provider (a login already linked to the provider
    only; anyone else 404)"""
    session = db_session()
    row = link_requests.refuse(session, current_actor(), link_request_id)
    return _link_request_view(row, link_requests.emails_of(session, [row]))
