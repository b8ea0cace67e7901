from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from referral.errors import ValidationFailed
from referral.models import Claim, Patient, Referral
from referral.models.enums import Role, Sex, SubscriberRelationship
from referral.services import access, audit
from referral.services import claims as claims_service
from referral.services.actor import Actor
from referral.services.pagination import page
from referral.validation import normalize_zip

# Who may correct a patient's details: the people who register patients, and the billing office, which fixes the
# address and insurance that keep a claim from being sent.
EDITING_ROLES = (*access.CAPTURING_ROLES, Role.BILLING, Role.ORG_ADMIN)
_IDENTITY_FIELDS = ("first_name", "last_name", "birth_date", "sex", "state")


def _set_address(patient: Patient, address: dict[str, Any] | None) -> None:
    address = address or {}
    patient.address_line1 = address.get("line1")
    patient.address_line2 = address.get("line2")
    patient.city = address.get("city")
    patient.zip = normalize_zip(address["zip"]) if address else None


def _set_coverage(patient: Patient, coverage: dict[str, Any] | None) -> None:
    coverage = coverage or {}
    patient.coverage_payer_id = coverage.get("payer_id")
    patient.coverage_payer_name = coverage.get("payer_name")
    patient.coverage_member_id = coverage.get("member_id")
    patient.coverage_group_number = coverage.get("group_number")
    patient.coverage_relationship = (SubscriberRelationship(coverage.get("relationship", "self"))
                                     if coverage else None)
    patient.clear_subscriber()
    subscriber = coverage.get("subscriber")
    if not subscriber:
        return
    patient.coverage_subscriber_first_name = subscriber["first_name"]
    patient.coverage_subscriber_last_name = subscriber["last_name"]
    patient.coverage_subscriber_birth_date = subscriber.get("birth_date")
    patient.coverage_subscriber_sex = subscriber.get("sex")
    address = subscriber.get("address")
    if address:
        patient.coverage_subscriber_address_line1 = address["line1"]
        patient.coverage_subscriber_address_line2 = address.get("line2")
        patient.coverage_subscriber_city = address["city"]
        patient.coverage_subscriber_state = address["state"]
        patient.coverage_subscriber_zip = normalize_zip(address["zip"])


def create_patient(session: Session, actor: Actor, data: dict[str, Any]) -> Patient:
    access.require_role(actor, *access.CAPTURING_ROLES)
    organization_id, user_id = access.membership(actor)
    patient = Patient(
        organization_id=organization_id,
        first_name=data["first_name"],
        last_name=data["last_name"],
        birth_date=data["birth_date"],
        sex=Sex(data["sex"]),
        state=data["state"],
        created_by_user_id=user_id,
    )
    _set_address(patient, data.get("address"))
    _set_coverage(patient, data.get("coverage"))
    session.add(patient)
    session.flush()
    audit.record(session, actor, "patient.create", object_type="patient", object_id=patient.id,
                 organization_id=patient.organization_id,
                 details={"coverage": bool(data.get("coverage")), "address": bool(data.get("address"))})
    session.commit()
    return patient


def update_patient(session: Session, actor: Actor, patient_id: uuid.UUID, data: dict[str, Any]) -> Patient:
    """Change the fields sent (address and coverage are replaced whole), then re-check the patient's claims,
    which read their name, address and coverage: one transaction."""
    patient = access.get_patient(session, actor, patient_id, roles=EDITING_ROLES)
    if not data:
        raise ValidationFailed("Nothing to change: send at least one of the patient's details",
                               {"json": ["Send at least one field to change."]})
    for name in _IDENTITY_FIELDS:
        if name in data:
            setattr(patient, name, Sex(data[name]) if name == "sex" else data[name])
    if "address" in data:
        _set_address(patient, data["address"])
    if "coverage" in data:
        _set_coverage(patient, data["coverage"])
    session.flush()
    rechecked = recheck_claims(session, actor, patient.id)
    audit.record(session, actor, "patient.update", object_type="patient", object_id=patient.id,
                 organization_id=patient.organization_id,
                 details={"fields": sorted(data), "claims_rechecked": rechecked})
    session.commit()
    return patient


def recheck_claims(session: Session, actor: Actor, patient_id: uuid.UUID) -> int:
    """Regenerate the claims of every case of the patient that has claims; the number of cases re-checked."""
    referrals = list(session.scalars(
        sa.select(Referral).where(Referral.patient_id == patient_id,
                                  Referral.id.in_(sa.select(Claim.referral_id))).order_by(Referral.id)))
    for referral in referrals:
        claims_service.regenerate(session, actor, referral)
    return len(referrals)


def read_patient(session: Session, actor: Actor, patient_id: Any) -> Patient:
    patient = access.get_patient(session, actor, patient_id)
    audit.record(session, actor, "patient.read", object_type="patient", object_id=patient.id,
                 organization_id=patient.organization_id)
    session.commit()
    return patient


def _search(query: sa.Select[Patient], text: str) -> sa.Select[Patient]:
    """A birth date finds that date; other text is the start of a last or first name, in any case."""
    text = text.strip()
    try:
        born = date.fromisoformat(text)
    except ValueError:
        prefix = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return query.where(sa.or_(sa.func.lower(Patient.last_name).like(prefix, escape="\\"),
                                  sa.func.lower(Patient.first_name).like(prefix, escape="\\")))
    return query.where(Patient.birth_date == born)


def list_patients(session: Session, actor: Actor, cursor: str | None, limit: int | None,
                  search: str | None = None) -> tuple[list[Patient], str | None]:
    access.require_role(actor, *access.CLINICAL_READ_ROLES)
    query = sa.select(Patient).where(Patient.organization_id == actor.organization_id, Patient.deleted_at.is_(None))
    if search:
        query = _search(query, search)
    items, next_cursor = page(session, query, [Patient.id], cursor, limit, descending=True)
    audit.record(session, actor, "patient.list", object_type="patient", object_id=None,
                 organization_id=actor.organization_id, details={"count": len(items), "searched": bool(search)})
    session.commit()
    return items, next_cursor
