"""Organizations, their providers and their users."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from referral.errors import Conflict, ValidationFailed
from referral.models import Organization, Provider, User
from referral.models.enums import Role, Specialty
from referral.services import access, audit
from referral.services.actor import Actor
from referral.services.auth import issue_token
from referral.services.web_auth import hash_password


def _add_unique(session: Session, row: object, conflict: Conflict) -> None:
    """Insert ``row``; a unique constraint it breaks (a duplicate NPI or email) is the caller's 409."""
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise conflict from None


# Which roles a user may hold depends on the provider they are linked to, if any.
_PROVIDER_ROLES = {Role.DENTIST, Role.SPECIALIST}


def create_organization(session: Session, actor: Actor, data: dict[str, Any]) -> Organization:
    access.require_role(actor, Role.ADMIN)
    address = data["address"]
    org = Organization(
        name=data["name"],
        npi=data["npi"],
        tax_id=data["tax_id"],
        address_line1=address["line1"],
        address_line2=address.get("line2"),
        city=address["city"],
        state=address["state"],
        zip=address["zip"],
        phone=data.get("phone"),
        requires_teledentistry_consent=data.get("requires_teledentistry_consent", True),
    )
    _add_unique(session, org, Conflict("An organization with this NPI already exists",
                                       {"npi": ["Already registered."]}))
    audit.record(session, actor, "organization.create", object_type="organization", object_id=org.id,
                 organization_id=org.id)
    session.commit()
    return org


def update_organization(session: Session, actor: Actor, organization_id: uuid.UUID,
                        data: dict[str, Any]) -> Organization:
    """Change an organization's settings (platform admin, or that organization's admin)."""
    org = access.get_organization(session, actor, organization_id)
    access.require_role(actor, Role.ADMIN, Role.ORG_ADMIN)
    changes: dict[str, dict[str, Any]] = {}
    if "image_retention_days" in data:
        days = data["image_retention_days"]
        if days != org.image_retention_days:
            changes["image_retention_days"] = {"from": org.image_retention_days, "to": days}
            org.image_retention_days = days
    audit.record(session, actor, "organization.update", object_type="organization", object_id=org.id,
                 organization_id=org.id, details={"changes": changes})
    session.commit()
    return org


def list_organizations(session: Session, actor: Actor) -> list[Organization]:
    if actor.is_platform_admin:
        return list(session.scalars(sa.select(Organization).order_by(Organization.id)))
    return [access.get_organization(session, actor, actor.organization_id)] if actor.organization_id else []


def create_provider(session: Session, actor: Actor, organization_id: uuid.UUID, data: dict[str, Any]) -> Provider:
    org = access.get_organization(session, actor, organization_id)
    access.require_role(actor, Role.ADMIN, Role.ORG_ADMIN)
    provider = Provider(
        organization_id=org.id,
        first_name=data["first_name"],
        last_name=data["last_name"],
        credentials=data.get("credentials"),
        npi=data["npi"],
        taxonomy=data["taxonomy"],
        specialty=Specialty(data["specialty"]),
        license_states=sorted(set(data.get("license_states") or [])),
        accepting_referrals=data.get("accepting_referrals", True),
    )
    _add_unique(session, provider, Conflict("This organization already has a provider with this NPI",
                                            {"npi": ["Already registered in this organization."]}))
    audit.record(session, actor, "provider.create", object_type="provider", object_id=provider.id,
                 organization_id=org.id)
    session.commit()
    return provider


def list_providers(session: Session, actor: Actor, organization_id: uuid.UUID) -> list[Provider]:
    org = access.get_organization(session, actor, organization_id)
    return list(session.scalars(sa.select(Provider).where(Provider.organization_id == org.id).order_by(Provider.id)))


def create_user(session: Session, actor: Actor, organization_id: uuid.UUID, data: dict[str, Any]) -> tuple[User, str]:
    org = access.get_organization(session, actor, organization_id)
    access.require_role(actor, Role.ADMIN, Role.ORG_ADMIN)
    role = Role(data["role"])
    if role == Role.ADMIN:
        raise ValidationFailed("Platform admins are created with the command line",
                               {"role": ["Must be one of: staff, dentist, specialist, billing, org_admin."]})
    provider_id = data.get("provider_id")
    if provider_id is not None:
        access.get_own_provider(session, org.id, provider_id, "provider_id")
    elif role in _PROVIDER_ROLES:
        raise ValidationFailed(f"A {role.value} user must be linked to a provider",
                               {"provider_id": ["Required for this role."]})
    password = data.get("password")
    user = User(organization_id=org.id, email=data["email"].strip().lower(), role=role, provider_id=provider_id,
                password_hash=hash_password(password) if password else None)
    _add_unique(session, user, Conflict("A user with this email already exists",
                                        {"email": ["Already registered."]}))
    token = issue_token(session, user)
    audit.record(session, actor, "user.create", object_type="user", object_id=user.id, organization_id=org.id,
                 details={"role": role.value, "password_set": bool(password)})
    session.commit()
    return user, token


def create_platform_admin(session: Session, email: str, password: str | None = None) -> tuple[User, str]:
    email = email.strip().lower()
    if "@" not in email or len(email) > 254:
        raise ValidationFailed("EMAIL must be an email address", {"email": ["Not a valid email address."]})
    user = User(organization_id=None, email=email, role=Role.ADMIN,
                password_hash=hash_password(password) if password is not None else None)
    _add_unique(session, user, Conflict("A user with this email already exists",
                                        {"email": ["Already registered."]}))
    token = issue_token(session, user)
    audit.record(session, Actor.operator(), "user.create", object_type="user", object_id=user.id,
                 organization_id=None, details={"role": Role.ADMIN.value})
    session.commit()
    return user, token
