"""Organizations, their providers and their users."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from referral.db import utcnow
from referral.errors import Conflict, Forbidden, NotFound, ValidationFailed
from referral.models import ApiToken, Organization, Provider, ProviderLinkRequest, User
from referral.models.enums import Role, Specialty
from referral.services import access, audit, auth, claims, link_requests, notices, password_links, web_auth
from referral.services.actor import Actor
from referral.services.auth import DEFAULT_TOKEN_DAYS, issue_token
from referral.services.password_links import DEFAULT_LINK_HOURS, IssuedLink
from referral.services.web_auth import hash_password
from referral.timezones import zone_for_state


def add_unique(session: Session, row: object, conflict: Conflict) -> None:
    """Insert ``row``; a unique constraint it breaks (a duplicate NPI or email) is the caller's 409. The
    insert runs in a savepoint, so the caller's transaction stays usable either way."""
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
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
        time_zone=data.get("time_zone") or zone_for_state(address["state"]),
    )
    add_unique(session, org, Conflict("An organization with this NPI already exists",
                                       {"npi": ["Already registered."]}))
    audit.record(session, actor, "organization.create", object_type="organization", object_id=org.id,
                 organization_id=org.id)
    session.commit()
    return org


# Settings of a practice its own admin may change; the rest of the fields are the platform admin's.
_ORGANIZATION_FIELDS = ("name", "npi", "tax_id", "phone", "requires_teledentistry_consent", "image_retention_days",
                        "time_zone", "default_place_of_service")
_ADDRESS_FIELDS = {"line1": "address_line1", "line2": "address_line2", "city": "city", "state": "state",
                   "zip": "zip"}
# The organization's details its claims are written from: a change re-checks the claims it bills.
CLAIM_FACTS = frozenset({"name", "npi", "tax_id", "phone", "address_line1", "address_line2", "city", "state", "zip"})


def update_organization(session: Session, actor: Actor, organization_id: uuid.UUID,
                        data: dict[str, Any]) -> Organization:
    """Change a practice's details and settings (platform admin, or that organization's admin). The
    address is replaced as a whole when given."""
    org = access.get_organization(session, actor, organization_id)
    access.require_role(actor, Role.ADMIN, Role.ORG_ADMIN)
    changes: dict[str, dict[str, Any]] = {}
    wanted: dict[str, Any] = {name: data[name] for name in _ORGANIZATION_FIELDS if name in data}
    if "address" in data:
        address = data["address"]
        wanted.update({column: address.get(key) for key, column in _ADDRESS_FIELDS.items()})
    for name, value in wanted.items():
        if value != getattr(org, name):
            # Ids and codes only in the audit row; the old and new name or address are on the record itself.
            shown = name in ("image_retention_days", "time_zone", "default_place_of_service",
                             "requires_teledentistry_consent")
            changes[name] = {"from": getattr(org, name), "to": value} if shown else {}
            setattr(org, name, value)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict("An organization with this NPI already exists", {"npi": ["Already registered."]}) from None
    if set(changes) & CLAIM_FACTS:
        session.flush()
        claims.recheck_organization(session, actor, org.id)
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
    add_unique(session, provider, Conflict("This organization already has a provider with this NPI",
                                            {"npi": ["Already registered in this organization."]}))
    audit.record(session, actor, "provider.create", object_type="provider", object_id=provider.id,
                 organization_id=org.id)
    session.commit()
    return provider


def list_providers(session: Session, actor: Actor, organization_id: uuid.UUID) -> list[Provider]:
    org = access.get_organization(session, actor, organization_id)
    return list(session.scalars(sa.select(Provider).where(Provider.organization_id == org.id).order_by(Provider.id)))


_PROVIDER_FIELDS = ("first_name", "last_name", "credentials", "npi", "taxonomy", "license_states",
                   "accepting_referrals")


def update_provider(session: Session, actor: Actor, provider_id: uuid.UUID, data: dict[str, Any]) -> Provider:
    """Change a provider's details (platform admin, or the admin of the provider's organization)."""
    provider = session.get(Provider, provider_id)
    if provider is None or (not actor.is_platform_admin and provider.organization_id != actor.organization_id):
        raise NotFound("Provider not found")
    access.require_role(actor, Role.ADMIN, Role.ORG_ADMIN)
    changed: list[str] = []
    for name in _PROVIDER_FIELDS:
        if name in data:
            value = sorted(set(data[name] or [])) if name == "license_states" else data[name]
            if value != getattr(provider, name):
                setattr(provider, name, value)
                changed.append(name)
    if "specialty" in data and Specialty(data["specialty"]) != provider.specialty:
        provider.specialty = Specialty(data["specialty"])
        changed.append("specialty")
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict("This organization already has a provider with this NPI",
                       {"npi": ["Already registered in this organization."]}) from None
    if {"npi", "taxonomy", "first_name", "last_name"} & set(changed):
        # Claims name the provider: the claims the practice bills are checked again.
        claims.recheck_organization(session, actor, provider.organization_id)
    audit.record(session, actor, "provider.update", object_type="provider", object_id=provider.id,
                 organization_id=provider.organization_id, details={"fields": changed})
    session.commit()
    return provider


@dataclass(frozen=True)
class NewUser:
    user: User
    token: str | None
    link: IssuedLink | None
    # Set when the login waits for its provider's confirmation (made inactive and linked to no provider).
    link_request: ProviderLinkRequest | None = None


class AddressTaken(Exception):
    """The email belongs to an account outside the caller's practice. The caller is told only that the
    request was taken in (the API's 202), never that the address is in use or where."""


ADDRESS_TAKEN_MESSAGE = ("The request was received. If this address can be given an account in your practice, "
                         "a platform administrator will follow it up; no account was made now.")


def _check_role_and_provider(session: Session, organization_id: uuid.UUID, role: Role,
                             provider_id: uuid.UUID | None) -> None:
    if role == Role.ADMIN:
        raise ValidationFailed("Platform admins are created with the command line",
                               {"role": ["Must be one of: staff, dentist, specialist, billing, org_admin."]})
    if provider_id is not None:
        provider = access.get_own_provider(session, organization_id, provider_id, "provider_id")
        if provider.specialty == Specialty.ASSISTANT and role in access.READER_ROLES:
            raise ValidationFailed("A dental assistant does not read cases",
                                   {"role": ["A dental assistant signs in as staff: dentists and specialists "
                                             "read cases."]})
    elif role in _PROVIDER_ROLES:
        raise ValidationFailed(f"A {role.value} user must be linked to a provider",
                               {"provider_id": ["Required for this role."]})


def _other_logins(session: Session, provider_id: uuid.UUID | None, user_id: uuid.UUID | None = None) -> list[str]:
    """The ids of the provider's logins (but ``user_id``), active or not."""
    if provider_id is None:
        return []
    query = sa.select(User.id).where(User.provider_id == provider_id)
    if user_id is not None:
        query = query.where(User.id != user_id)
    return [str(found) for found in session.scalars(query.order_by(User.id))]


def _needs_confirmation(actor: Actor, role: Role, others: list[str]) -> bool:
    """Whether linking a login of ``role`` to a provider with ``others`` is beyond the actor alone."""
    return bool(others) and role in _PROVIDER_ROLES and not actor.is_platform_admin


def _check_provider_free(session: Session, actor: Actor, role: Role, provider_id: uuid.UUID | None,
                         user_id: uuid.UUID | None = None) -> list[str]:
    """A login that reads as a provider (a dentist or specialist linked to them) sees the cases routed to that
    provider. When the provider already has a login, active or not, only a platform admin may give them another
    reading login: otherwise an org admin could give themselves a reader's access. Returns the ids of the
    provider's other logins, for the audit row."""
    others = _other_logins(session, provider_id, user_id)
    if _needs_confirmation(actor, role, others):
        raise Conflict("This provider already has a login. Only a platform administrator can give them another "
                       "one that reads their cases, or ask for the provider's confirmation with "
                       "request_link_confirmation", {"provider_id": ["This provider already has a login."]})
    return others


def create_user(session: Session, actor: Actor, organization_id: uuid.UUID, data: dict[str, Any]) -> tuple[User, str]:
    created = add_user(session, actor, organization_id, {**data, "issue_token": True})
    return created.user, created.token or ""


def add_user(session: Session, actor: Actor, organization_id: uuid.UUID, data: dict[str, Any], *,
             token_days: int = DEFAULT_TOKEN_DAYS, link_hours: int = DEFAULT_LINK_HOURS) -> NewUser:
    """Add a member. ``issue_token`` (default true) gives them an API token, shown once; ``invite`` gives
    them a one-time link to set their password for the pages."""
    org = access.get_organization(session, actor, organization_id)
    access.require_role(actor, Role.ADMIN, Role.ORG_ADMIN)
    role = Role(data["role"])
    provider_id = data.get("provider_id")
    _check_role_and_provider(session, org.id, role, provider_id)
    password = data.get("password")
    if password and data.get("invite"):
        raise ValidationFailed("Either set a password or send an invitation, not both",
                               {"invite": ["Leave out the password to invite."]})
    email = data["email"].strip().lower()
    holder = session.execute(sa.select(User.organization_id).where(User.email == email).limit(1)).first()
    if holder is not None and holder[0] != org.id and not actor.is_platform_admin:
        # Elsewhere: nothing is made and nothing says where the address is used. The audit row is the actor's
        # own practice's, with no trace of the other account.
        audit.record(session, actor, "user.create_withheld", object_type="user", object_id=None,
                     organization_id=org.id, details={"role": role.value})
        session.commit()
        raise AddressTaken()
    others = _other_logins(session, provider_id)
    # A reading login for a provider who already has one: with the flag, made inactive and unlinked, and the
    # provider is asked; without it, the 409 of _check_provider_free.
    pending = _needs_confirmation(actor, role, others) and bool(data.get("request_link_confirmation"))
    if not pending:
        others = _check_provider_free(session, actor, role, provider_id)
    user = User(organization_id=org.id, email=email, role=role, provider_id=None if pending else provider_id,
                active=not pending, password_hash=hash_password(password) if password else None)
    add_unique(session, user, Conflict("A user with this email already exists",
                                        {"email": ["Already registered."]}))
    token = issue_token(session, user, token_days) if data.get("issue_token", True) else None
    link = (password_links.issue(session, user, purpose="invite", created_by=actor.user_id, hours=link_hours)
            if data.get("invite") else None)
    details: dict[str, Any] = {"role": role.value, "password_set": bool(password), "invited": link is not None,
                               "token_issued": token is not None,
                               "provider_id": str(provider_id) if provider_id and not pending else None,
                               "provider_other_logins": others}
    if pending:
        details.update(active=False, awaiting_provider_id=str(provider_id))
    audit.record(session, actor, "user.create", object_type="user", object_id=user.id, organization_id=org.id,
                 details=details)
    request = None
    if pending:
        # The request's own notice tells the other admins of the login and what it waits for.
        request = link_requests.open_request(session, actor, user, cast(uuid.UUID, provider_id), role, others)
    else:
        # A new login is a new holder of a role (and perhaps of a provider's cases): the practice's other admins
        # are told.
        notices.notify_admins(session, actor, [org.id], notices.USER_CREATED, subject_user_id=user.id,
                              details={"role": role.value, "provider_id": str(provider_id) if provider_id else None,
                                       "provider_other_logins": others})
    session.commit()
    return NewUser(user=user, token=token, link=link, link_request=request)


def list_users(session: Session, actor: Actor, organization_id: uuid.UUID) -> list[User]:
    org = access.get_organization(session, actor, organization_id)
    access.require_role(actor, Role.ADMIN, Role.ORG_ADMIN)
    return list(session.scalars(sa.select(User).where(User.organization_id == org.id).order_by(User.email)))


def _managed_user(session: Session, actor: Actor, user_id: uuid.UUID) -> User:
    """A member the actor administers: anyone for a platform admin, their own practice's members for an
    org admin. Platform admins' own accounts are managed on the command line."""
    user = access.get_user(session, actor, user_id)
    access.require_role(actor, Role.ADMIN, Role.ORG_ADMIN)
    if user.organization_id is None:
        raise NotFound("User not found")
    return user


def get_managed_user(session: Session, actor: Actor, user_id: uuid.UUID) -> User:
    return _managed_user(session, actor, user_id)


def update_user(session: Session, actor: Actor, user_id: uuid.UUID, data: dict[str, Any]) -> User:
    """Change a member's role, provider link or whether they may sign in. Nobody changes their own role or
    deactivates themselves (an admin could otherwise lock the practice out)."""
    user = _managed_user(session, actor, user_id)
    organization_id = cast(uuid.UUID, user.organization_id)
    role = Role(data["role"]) if "role" in data else Role(user.role)
    provider_id = data.get("provider_id", user.provider_id)
    if user.id == actor.user_id and (role != user.role or data.get("active") is False):
        raise Forbidden("You cannot change your own role or deactivate yourself; ask another administrator")
    _check_role_and_provider(session, organization_id, role, provider_id)
    linking = provider_id != user.provider_id or (role != user.role and role in _PROVIDER_ROLES)
    others = _check_provider_free(session, actor, role, provider_id, user.id) if linking else []
    changes: dict[str, Any] = {}
    if role != user.role:
        changes["role"] = {"from": Role(user.role).value, "to": role.value}
        user.role = role
    if provider_id != user.provider_id:
        changes["provider_id"] = {"from": str(user.provider_id) if user.provider_id else None,
                                  "to": str(provider_id) if provider_id else None}
        user.provider_id = provider_id
    if "active" in data and data["active"] != user.active:
        changes["active"] = {"from": user.active, "to": data["active"]}
        user.active = data["active"]
        if not user.active:
            web_auth.end_sessions(session, user, "deactivated")
            password_links.void_links(session, user)
    if changes:
        # The user's tokens were remembered with their old role, provider or standing.
        auth.forget_user(session, user.id)
    details: dict[str, Any] = {"changes": changes}
    if others:
        # A platform admin gave a provider another reading login: the row names the logins they already had.
        details["provider_other_logins"] = others
    audit.record(session, actor, "user.update", object_type="user", object_id=user.id,
                 organization_id=user.organization_id, details=details)
    if "role" in changes or "provider_id" in changes:
        # Who reads what changed: the practice's admins other than the one who did it are told.
        notices.notify_admins(session, actor, [organization_id], notices.ACCESS_CHANGE, subject_user_id=user.id,
                              details=details)
    session.commit()
    return user


def reset_password(session: Session, actor: Actor, user_id: uuid.UUID, *,
                   link_hours: int = DEFAULT_LINK_HOURS) -> tuple[User, IssuedLink]:
    """A one-time link for the member to choose a new password. Their current password stops working and
    their sessions end at once, so a reset also shuts out whoever may know the old one."""
    user = _managed_user(session, actor, user_id)
    if not user.active:
        raise Conflict("This account is deactivated; activate it first", {"active": ["The account is inactive."]})
    purpose = "reset" if user.password_hash else "invite"
    user.password_hash = None
    web_auth.end_sessions(session, user, "password_reset")
    link = password_links.issue(session, user, purpose=purpose, created_by=actor.user_id, hours=link_hours)
    audit.record(session, actor, "user.password_reset", object_type="user", object_id=user.id,
                 organization_id=user.organization_id, details={"purpose": purpose})
    session.commit()
    return user, link


# -- API tokens ------------------------------------------------------------------------------------------


def token_status(token: ApiToken) -> str:
    """active, expired or revoked."""
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= utcnow():
        return "expired"
    return "active"


def _token_owner_visible(session: Session, actor: Actor, user_id: uuid.UUID) -> User:
    """The user whose tokens the actor may see and revoke: themselves, a member of the practice they
    administer, anyone for a platform admin; anybody else is not found."""
    user = session.get(User, user_id)
    allowed = user is not None and (
        actor.is_platform_admin or user.id == actor.user_id
        or (actor.role == Role.ORG_ADMIN and user.organization_id == actor.organization_id))
    if user is None or not allowed:
        raise NotFound("User not found")
    return user


def list_tokens(session: Session, actor: Actor, user_id: uuid.UUID) -> list[ApiToken]:
    user = _token_owner_visible(session, actor, user_id)
    return list(session.scalars(sa.select(ApiToken).where(ApiToken.user_id == user.id)
                                .order_by(ApiToken.created_at.desc(), ApiToken.id)))


def revoke_token(session: Session, actor: Actor, token_id: uuid.UUID) -> ApiToken:
    """Revoke a token at once (its owner, their practice's admin, or a platform admin). Revoking a revoked
    token again changes nothing."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound("Token not found")
    try:
        owner = _token_owner_visible(session, actor, token.user_id)
    except NotFound:
        raise NotFound("Token not found") from None
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        auth.forget_token(session, token.id)
        audit.record(session, actor, "token.revoke", object_type="api_token", object_id=token.id,
                     organization_id=owner.organization_id, details={"user_id": str(owner.id)})
        session.commit()
    return token


@dataclass(frozen=True)
class AdminSetup:
    user: User
    token: str
    link: IssuedLink | None


def create_platform_admin(session: Session, email: str, password: str | None = None) -> tuple[User, str]:
    created = set_up_platform_admin(session, email, password)
    return created.user, created.token


def set_up_platform_admin(session: Session, email: str, password: str | None = None, *, link: bool = False,
                          token_days: int = DEFAULT_TOKEN_DAYS, link_hours: int = DEFAULT_LINK_HOURS) -> AdminSetup:
    """A platform admin with a first API token and, with ``link``, a one-time link to set a password for
    the pages (when no password is given)."""
    email = email.strip().lower()
    if "@" not in email or len(email) > 254:
        raise ValidationFailed("EMAIL must be an email address", {"email": ["Not a valid email address."]})
    user = User(organization_id=None, email=email, role=Role.ADMIN,
                password_hash=hash_password(password) if password is not None else None)
    add_unique(session, user, Conflict("A user with this email already exists",
                                        {"email": ["Already registered."]}))
    token = issue_token(session, user, token_days)
    issued = (password_links.issue(session, user, purpose="first_sign_in", created_by=None, hours=link_hours)
              if link and password is None else None)
    audit.record(session, Actor.operator(), "user.create", object_type="user", object_id=user.id,
                 organization_id=None, details={"role": Role.ADMIN.value, "link": issued is not None})
    session.commit()
    return AdminSetup(user=user, token=token, link=issued)


def new_sign_in_link(session: Session, email: str, *, link_hours: int = DEFAULT_LINK_HOURS) -> IssuedLink:
    """From the command line: a fresh one-time link for an existing, active account (a lost link or a
    forgotten password). The current password keeps working until the link is used."""
    user = session.scalar(sa.select(User).where(User.email == email.strip().lower()))
    if user is None or not user.active:
        raise NotFound("No active account has this email")
    issued = password_links.issue(session, user, purpose="reset", created_by=None, hours=link_hours)
    audit.record(session, Actor.operator(), "user.password_link", object_type="user", object_id=user.id,
                 organization_id=user.organization_id)
    session.commit()
    return issued
