"""Referrals: creation, reads and lists. State changes live in the workflow service."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from referral.db import utcnow
from referral.errors import ValidationFailed
from referral.models import Patient, Provider, Referral
from referral.models.enums import (
    ConsentGivenBy,
    ConsentMethod,
    Mode,
    ReferralStatus,
    Scope,
    Specialty,
    Urgency,
)
from referral.services import access, audit
from referral.services.actor import Actor
from referral.services.pagination import page

# How long a reader has to answer, by urgency. Emergencies are pain or swelling that cannot wait for
# the next clinic day; routine cases fit a week of reading sessions.
RESPONSE_WINDOWS = {
    Urgency.EMERGENCY: timedelta(hours=4),
    Urgency.URGENT: timedelta(hours=24),
    Urgency.ROUTINE: timedelta(days=7),
}


def due_at_for(urgency: Urgency, start: datetime) -> datetime:
    return start + RESPONSE_WINDOWS[urgency]


def create_referral(session: Session, actor: Actor, data: dict[str, Any]) -> Referral:
    access.require_role(actor, *access.CAPTURING_ROLES)
    organization_id, user_id = access.membership(actor)
    patient = session.get(Patient, data["patient_id"])
    if patient is None or patient.organization_id != organization_id:
        raise ValidationFailed("patient_id is not a patient of your organization",
                               {"patient_id": ["Unknown patient."]})
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
        due_at=due_at_for(urgency, now),
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
    audit.record(session, actor, "referral.read", object_type="referral", object_id=referral.id,
                 organization_id=referral.organization_id, referral_id=referral.id)
    session.commit()
    return referral


def list_referrals(session: Session, actor: Actor, status: str | None, cursor: str | None, limit: int | None
                   ) -> tuple[list[Referral], str | None]:
    access.require_role(actor, *access.CLINICAL_READ_ROLES)
    query = sa.select(Referral).where(access.referral_visibility(actor))
    if status:
        query = query.where(Referral.status == ReferralStatus(status))
    items, next_cursor = page(session, query, Referral.id, cursor, limit)
    audit.record(session, actor, "referral.list", object_type="referral", object_id=None,
                 organization_id=actor.organization_id, details={"count": len(items)})
    session.commit()
    return items, next_cursor
