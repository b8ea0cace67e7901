"""Referrals: creation, reads and lists. State changes live in the workflow service."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, joinedload, selectinload

from referral.db import utcnow
from referral.errors import ValidationFailed
from referral.models import Patient, Provider, Referral
from referral.models.enums import (
    ConsentGivenBy,
    ConsentMethod,
    Mode,
    ReferralStatus,
    Role,
    Scope,
    Specialty,
    Urgency,
)
from referral.services import access, audit
from referral.services.actor import Actor
from referral.services.pagination import page
from referral.services.workflow import WorkflowSettings


def create_referral(session: Session, actor: Actor, data: dict[str, Any],
                    settings: WorkflowSettings | None = None) -> Referral:
    """A draft. Its deadline is provisional until it is submitted, when the response clock starts."""
    settings = settings or WorkflowSettings()
    access.require_role(actor, *access.CAPTURING_ROLES)
    organization_id, user_id = access.membership(actor)
    # FOR SHARE: a deletion of the patient under way finishes first, and is then seen.
    patient = session.get(Patient, data["patient_id"], with_for_update={"read": True})
    if patient is None or patient.organization_id != organization_id:
        raise ValidationFailed("patient_id is not a patient of your organization",
                               {"patient_id": ["Unknown patient."]})
    if patient.is_deleted:
        raise ValidationFailed("This patient's record was deleted", {"patient_id": ["Deleted patient."]})
    referring = access.get_own_provider(session, organization_id, data["referring_provider_id"],
                                        "referring_provider_id")
    target_id = data.get("target_provider_id")
    if target_id is not None and session.get(Provider, target_id) is None:
        raise ValidationFailed("target_provider_id is not a known provider",
                               {"target_provider_id": ["Unknown provider."]})
    now = utcnow()
    urgency = Urgency(data["urgency"])
    consent = data.get("consent")
    referral = Referral(
        organization_id=organization_id,
        patient_id=patient.id,
        referring_provider_id=referring.id,
        specialty=Specialty(data["specialty"]),
        reason=data["reason"],
        teeth=data.get("teeth") or [],
        urgency=urgency,
        due_at=settings.due_at(urgency.value, now),
        mode=Mode(data["mode"]),
        scope=Scope(data.get("scope") or Scope.EVALUATE_ONLY),
        place_of_service=data.get("place_of_service") or "11",
        target_provider_id=target_id,
        status=ReferralStatus.DRAFT,
        consent_given_by=ConsentGivenBy(consent["given_by"]) if consent else None,
        consent_method=ConsentMethod(consent["method"]) if consent else None,
        consent_given_at=consent["given_at"] if consent else None,
        created_by_user_id=user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(referral)
    session.flush()
    audit.record(session, actor, "referral.create", object_type="referral", object_id=referral.id,
                 organization_id=referral.organization_id, referral_id=referral.id)
    session.commit()
    return referral


def read_referral(session: Session, actor: Actor, referral_id: uuid.UUID) -> Referral:
    referral = access.get_referral(session, actor, referral_id)
    # The case is shown with its patient, images, events and report state. Loaded here, inside this
    # transaction (three queries), rather than lazily one by one after the commit, which costs a second
    # connection checkout and transaction per read (measured in bench/api.py).
    session.execute(
        sa.select(Referral).where(Referral.id == referral.id).options(
            joinedload(Referral.patient), joinedload(Referral.interpretation),
            selectinload(Referral.images), selectinload(Referral.events))
    ).unique().one()
    audit.record(session, actor, "referral.read", object_type="referral", object_id=referral.id,
                 organization_id=referral.organization_id, referral_id=referral.id)
    session.commit()
    return referral


# Cases still waiting on someone; past their deadline they are marked overdue.
AWAITING_RESPONSE = (ReferralStatus.ROUTED, ReferralStatus.ACCEPTED, ReferralStatus.RETAKE_REQUESTED,
                     ReferralStatus.UNASSIGNED)


def is_overdue(referral: Referral, now: datetime | None = None) -> bool:
    return referral.status in AWAITING_RESPONSE and referral.due_at < (now or utcnow())


def list_referrals(session: Session, actor: Actor, *, view: str | None = None, statuses: list[str] | None = None,
                   urgency: str | None = None, overdue: bool | None = None, cursor: str | None = None,
                   limit: int | None = None) -> tuple[list[Referral], str | None]:
    """The sent box of a practice or the inbox of a reader, by response deadline then id."""
    access.require_role(actor, *access.CLINICAL_READ_ROLES)
    if view is None:
        view = "inbox" if actor.role == Role.SPECIALIST else "sent"
    if view == "inbox":
        if actor.provider_id is None or actor.role not in access.READER_ROLES:
            raise ValidationFailed("view=inbox lists the cases assigned to a reader; you are not one",
                                   {"view": ["Only readers have an inbox."]})
        query = sa.select(Referral).where(Referral.assigned_provider_id == actor.provider_id)
    else:
        query = sa.select(Referral).where(Referral.organization_id == actor.organization_id)
    if statuses:
        query = query.where(Referral.status.in_([ReferralStatus(s) for s in statuses]))
    if urgency:
        query = query.where(Referral.urgency == Urgency(urgency))
    if overdue is not None:
        late = sa.and_(Referral.status.in_(AWAITING_RESPONSE), Referral.due_at < utcnow())
        query = query.where(late if overdue else sa.not_(late))
    items, next_cursor = page(session, query, [Referral.due_at, Referral.id], cursor, limit)
    audit.record(session, actor, "referral.list", object_type="referral", object_id=None,
                 organization_id=actor.organization_id, details={"count": len(items), "view": view})
    session.commit()
    return items, next_cursor
