"""Organization scoping, in one place. Every lookup of a patient, referral or image by id goes
through here: a record of another organization is reported as not found, never as forbidden."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.interfaces import ORMOption

from referral.db import utcnow
from referral.errors import Forbidden, Gone, NotFound, ValidationFailed
from referral.models import EmergencyAccess, Image, Organization, Patient, Provider, Referral, User
from referral.models.enums import Role
from referral.services import audit
from referral.services.actor import Actor

# Roles of the people who capture images and own referrals at the referring office.
CAPTURING_ROLES = (Role.STAFF, Role.DENTIST)
# Roles that may see image bytes. Billing and administrative roles see codes and ids, not pictures
# (HIPAA minimum necessary).
IMAGE_VIEWER_ROLES = (Role.STAFF, Role.DENTIST, Role.SPECIALIST)
CLINICAL_READ_ROLES = (Role.STAFF, Role.DENTIST, Role.SPECIALIST, Role.BILLING, Role.ORG_ADMIN)

T = TypeVar("T")


def require_role(actor: Actor, *roles: Role) -> None:
    if actor.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise Forbidden(f"This action needs one of the roles: {allowed}")


def membership(actor: Actor) -> tuple[uuid.UUID, uuid.UUID]:
    """The practice and user id of someone working for a practice; platform admins and the command
    line have none and cannot act on a practice's patients."""
    if actor.organization_id is None or actor.user_id is None:
        raise Forbidden("This action is for members of a practice")
    return actor.organization_id, actor.user_id


def require_org_member(actor: Actor, organization_id: uuid.UUID) -> None:
    """Platform admins act on any organization; everyone else only on their own."""
    if actor.is_platform_admin:
        return
    if actor.organization_id != organization_id:
        raise NotFound("Organization not found")


def get_organization(session: Session, actor: Actor, organization_id: uuid.UUID) -> Organization:
    require_org_member(actor, organization_id)
    org = session.get(Organization, organization_id)
    if org is None:
        raise NotFound("Organization not found")
    return org


def get_own_provider(session: Session, organization_id: uuid.UUID, provider_id: uuid.UUID, field: str) -> Provider:
    """A provider that must belong to ``organization_id``; otherwise the field is invalid."""
    provider = session.get(Provider, provider_id)
    if provider is None or provider.organization_id != organization_id:
        raise ValidationFailed(
            f"{field} is not a provider of your organization",
            {field: ["Unknown provider for this organization."]},
        )
    return provider


# Roles that read cases when they are linked to the provider a case is assigned to.
READER_ROLES = (Role.DENTIST, Role.SPECIALIST)


def referral_visibility(actor: Actor) -> sa.ColumnElement[bool]:
    """The referrals an actor may see: those of their own organization, and, for a reader, those
    assigned to them right now (a reader who declined or was replaced no longer sees the case)."""
    return visibility_rule(reads_assigned(actor), actor.organization_id, actor.provider_id)


def reads_assigned(actor: Actor) -> bool:
    """Whether the actor also sees the cases assigned to their provider (a reader with a provider)."""
    return actor.provider_id is not None and actor.role in READER_ROLES


def visibility_rule(assigned: bool, organization_id: Any, provider_id: Any) -> sa.ColumnElement[bool]:
    """``referral_visibility`` with the practice and provider as values, or as bound parameters of a statement
    built once for every actor of the same kind (``assigned``: see ``reads_assigned``)."""
    own = Referral.organization_id == organization_id
    if assigned:
        return sa.or_(own, Referral.assigned_provider_id == provider_id)
    return own


def sees_patient_coverage(actor: Actor, referral: Referral) -> bool:
    """The referring practice sees its patient's coverage on a case; the reader does not (the case as the reader
    reads it leaves coverage out: minimum necessary)."""
    return actor.organization_id == referral.organization_id


def require_referring_side(actor: Actor, referral: Referral) -> None:
    """Changes to the case itself (images, consent, submit, cancel) belong to the referring office."""
    require_role(actor, *CAPTURING_ROLES)
    if actor.organization_id != referral.organization_id:
        raise Forbidden("Only the referring office can do this")


def deny(session: Session, actor: Actor, object_type: str, object_id: uuid.UUID) -> NotFound:
    """Not found, to someone outside, whether or not the object exists; the attempt is audited whatever
    becomes of the request, with nothing in the row that the actor did not send."""
    audit.record_denied(session, actor, f"{object_type}.access", object_type=object_type, object_id=object_id)
    return NotFound(f"{object_type.capitalize()} not found")


def _referral_visible(session: Session, actor: Actor, referral_id: uuid.UUID) -> bool:
    return bool(session.execute(
        sa.select(sa.literal(True)).where(Referral.id == referral_id, referral_visibility(actor))
    ).scalar())


def now() -> datetime:
    """The clock emergency access is measured by (tests move it)."""
    return utcnow()


# The session.info key under which the emergency grants used in this session are kept, for the audit rows.
EMERGENCY_MARKS = audit.EMERGENCY_MARKS


def emergency_grant(session: Session, actor: Actor, referral_id: uuid.UUID) -> uuid.UUID | None:
    """The actor's emergency access grant on the case that is in force now, if any. Only a dentist or specialist
    holds one: a login whose role changed since loses it."""
    if actor.user_id is None or actor.role not in READER_ROLES:
        return None
    moment = now()
    return session.scalar(
        sa.select(EmergencyAccess.id)
        .where(EmergencyAccess.user_id == actor.user_id, EmergencyAccess.referral_id == referral_id,
               EmergencyAccess.starts_at <= moment, EmergencyAccess.expires_at > moment)
        .order_by(EmergencyAccess.expires_at.desc()).limit(1))


def _through_grant(session: Session, actor: Actor, referral_id: uuid.UUID) -> bool:
    """Whether the actor reaches the case through an emergency grant; if so, the grant is noted on the session
    so that every audit row of this case the actor's request writes is flagged with it."""
    grant = emergency_grant(session, actor, referral_id)
    if grant is None:
        return False
    session.info.setdefault(EMERGENCY_MARKS, {})[(actor.user_id, referral_id)] = grant
    return True


def sees_referral(session: Session, actor: Actor, referral_id: uuid.UUID) -> bool:
    """Whether the actor may see the case now, without recording anything (for what a page shows of it)."""
    return _referral_visible(session, actor, referral_id) or _through_grant(session, actor, referral_id)


def sees_without_grant(session: Session, actor: Actor, referral_id: uuid.UUID) -> bool:
    """Whether the actor sees the case through their practice or assignment, emergency access aside."""
    return _referral_visible(session, actor, referral_id)


def require_regular_access(session: Session, actor: Actor, referral: Referral) -> None:
    """Emergency access is for reading: writing on the case needs the ordinary right to see it."""
    if not _referral_visible(session, actor, referral.id):
        raise Forbidden("Emergency access lets you read this case, not act on it")


def load_case(session: Session, actor: Actor, referral_id: uuid.UUID, *options: ORMOption) -> Referral:
    """The case with what ``options`` load alongside, the access check in the first SELECT's WHERE clause (a hot
    read's way of ``get_referral``): a case the actor may not see loads nothing and is refused exactly as
    ``get_referral`` refuses it (404, audited as denied); an emergency grant in force loads it again, flagged."""
    require_role(actor, *CLINICAL_READ_ROLES)

    def load(*visible: sa.ColumnElement[bool]) -> Referral | None:
        return session.execute(
            sa.select(Referral).where(Referral.id == referral_id, *visible).options(*options)
        ).unique().scalar_one_or_none()

    referral = load(referral_visibility(actor))
    if referral is None and sees_referral(session, actor, referral_id):
        referral = load()  # an emergency grant: the read is flagged with it in the audit row
    if referral is None:
        raise deny(session, actor, "referral", referral_id)
    return referral


def get_referral(session: Session, actor: Actor, referral_id: uuid.UUID) -> Referral:
    return case_of(session, actor, referral_id, asked=("referral", referral_id))


def case_of(session: Session, actor: Actor, referral_id: uuid.UUID | None, *,
            asked: tuple[str, uuid.UUID]) -> Referral:
    """The case a record belongs to, when the actor may see it: through their practice, their assignment, or an
    emergency access grant in force (then the request's audit rows on the case are flagged). A refusal is
    recorded as a refusal of the record that was asked for (``asked``: its type and id), never of its case."""
    require_role(actor, *CLINICAL_READ_ROLES)
    referral = session.get(Referral, referral_id) if referral_id is not None else None
    if referral is None or not (_referral_visible(session, actor, referral.id)
                                or _through_grant(session, actor, referral.id)):
        raise deny(session, actor, *asked)
    return referral


def get_patient(session: Session, actor: Actor, patient_id: uuid.UUID,
                roles: tuple[Role, ...] = CLINICAL_READ_ROLES) -> Patient:
    """A live patient of the actor's organization (any organization for a platform admin, where ``roles``
    lets one in). A deleted patient answers 410, but only to those who could have seen it. Another
    practice's patient is not found whatever the actor's role; the role is checked on the practice's own."""
    patient = session.get(Patient, patient_id)
    if patient is None or (not actor.is_platform_admin and patient.organization_id != actor.organization_id):
        raise deny(session, actor, "patient", patient_id)
    require_role(actor, *roles)
    if patient.is_deleted:
        raise Gone("This patient's record was deleted")
    return patient


def get_image(session: Session, actor: Actor, image_id: uuid.UUID) -> Image:
    image = session.get(Image, image_id)
    # The image is visible exactly when its referral is; a refusal names the image only, not its case.
    if image is None:
        raise deny(session, actor, "image", image_id)
    case_of(session, actor, image.referral_id, asked=("image", image_id))
    return image


def require_stored(image: Image) -> None:
    """The bytes of a deleted image (retention, or the patient's deletion) are gone for good."""
    if image.is_deleted:
        raise Gone("This image was deleted; its metadata remains but its content is no longer kept")


def get_user(session: Session, actor: Actor, user_id: uuid.UUID) -> User:
    user = session.get(User, user_id)
    if user is None or (not actor.is_platform_admin and user.organization_id != actor.organization_id):
        raise NotFound("User not found")
    return user
