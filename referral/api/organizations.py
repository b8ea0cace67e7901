from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView

from referral.api.context import current_actor, db_session
from referral.api.parsing import Blueprint
from referral.schemas.organizations import (
    OrganizationCreateSchema,
    OrganizationListSchema,
    OrganizationSchema,
    OrganizationUpdateSchema,
    ProviderCreateSchema,
    ProviderListSchema,
    ProviderSchema,
    UserCreatedSchema,
    UserCreateSchema,
)
from referral.services import access, organizations
from referral.validation import normalize_tax_id, normalize_zip


class _UserWithToken:
    """The new user as the schema reads it, plus the token that is shown this once."""

    def __init__(self, user: Any, token: str) -> None:
        self._user = user
        self.token = token

    def __getattr__(self, name: str) -> Any:
        return getattr(self._user, name)


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
        """Change settings, such as the image retention period (platform admin or the organization's admin)"""
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


@blp.route("/organizations/<uuid:organization_id>/users")
class Users(MethodView):
    @blp.arguments(UserCreateSchema)
    @blp.response(201, UserCreatedSchema)
    def post(self, data: dict[str, Any], organization_id: uuid.UUID) -> Any:
        """Add a user and issue their first API token (shown once)"""
        user, token = organizations.create_user(db_session(), current_actor(), organization_id, data)
        return _UserWithToken(user, token)
