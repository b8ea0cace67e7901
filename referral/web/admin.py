"""Set-up pages: a platform admin's list of practices, and each practice's details, providers, users and fees
(the platform admin for any practice, an org admin for their own).

As on the role pages, the page is rendered from the services and every change is a call to the JSON API
from ``static/app.js``, so the forms get the API's checks and messages.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import sqlalchemy as sa
from flask import redirect, url_for
from flask.typing import ResponseReturnValue

from referral import timezones
from referral.http.context import db_session
from referral.models import ApiToken, User, UserMfa
from referral.models.enums import Role, Specialty
from referral.services import access, organizations
from referral.services import claims as claims_service
from referral.services.actor import Actor
from referral.validation import CAPTURE_PLACES_OF_SERVICE, US_STATES
from referral.web import _page, web
from referral.web.pages import signed_in_page

ADMIN_ROLES = (Role.ADMIN, Role.ORG_ADMIN)
ROLE_LABELS = {
    Role.STAFF: "Staff (captures images)",
    Role.DENTIST: "Dentist",
    Role.SPECIALIST: "Specialist (reads cases)",
    Role.BILLING: "Billing",
    Role.ORG_ADMIN: "Practice administrator",
}
SPECIALTY_LABELS = {
    Specialty.GENERAL: "General dentistry",
    Specialty.HYGIENE: "Dental hygiene",
    Specialty.ASSISTANT: "Dental assistant (takes images only)",
}


def _not_allowed() -> tuple[str, int]:
    return _page("error.html", 403, title="Not allowed",
                 message="Only a practice administrator or a platform administrator manages practices.")


@web.get("/admin")
@signed_in_page
def admin_home(user: User, actor: Actor) -> ResponseReturnValue:
    if actor.role == Role.ORG_ADMIN and user.organization_id is not None:
        return redirect(url_for("web.practice_admin", organization_id=user.organization_id), code=303)
    if actor.role != Role.ADMIN:
        return _not_allowed()
    practices = organizations.list_organizations(db_session(), actor)
    return _page("admin_practices.html", practices=sorted(practices, key=lambda o: o.name.lower()),
                 states=sorted(US_STATES), zones=timezones.US_ZONES)


@web.get("/admin/practices/<uuid:organization_id>")
@signed_in_page
def practice_admin(user: User, actor: Actor, organization_id: uuid.UUID) -> ResponseReturnValue:
    session = db_session()
    org = access.get_organization(session, actor, organization_id)
    if actor.role not in ADMIN_ROLES:
        return _not_allowed()
    providers = sorted(organizations.list_providers(session, actor, org.id),
                       key=lambda p: (p.last_name.lower(), p.first_name.lower()))
    users = organizations.list_users(session, actor, org.id)
    tokens: dict[uuid.UUID, list[ApiToken]] = {u.id: [] for u in users}
    if users:
        rows = session.scalars(sa.select(ApiToken).where(ApiToken.user_id.in_(list(tokens)))
                               .order_by(ApiToken.created_at.desc()))
        for token in rows:
            tokens[token.user_id].append(token)
    mfa_on = set(session.scalars(sa.select(UserMfa.user_id).where(
        UserMfa.user_id.in_(list(tokens)), UserMfa.enabled_at.is_not(None)))) if users else set()
    fees: dict[str, Decimal] = claims_service.read_fee_schedule(session, actor, org.id)
    zones = list(timezones.US_ZONES)
    if org.time_zone not in zones:
        zones.append(org.time_zone)
    return _page(
        "admin_practice.html", org=org, providers=providers, users=users, tokens=tokens, me=user.id,
        provider_names={p.id: p.display_name for p in providers}, fees=sorted(fees.items()),
        zones=zones, places=CAPTURE_PLACES_OF_SERVICE, states=sorted(US_STATES),
        specialties=[(s.value, SPECIALTY_LABELS.get(s, s.value.replace("_", " ").capitalize())) for s in Specialty],
        roles=[(r.value, label) for r, label in ROLE_LABELS.items()], role_labels={r.value: v for r, v in
                                                                                   ROLE_LABELS.items()},
        token_status=organizations.token_status, is_platform_admin=actor.is_platform_admin, mfa_on=mfa_on,
    )
