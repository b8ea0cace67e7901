from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from referral.models import Patient
from referral.models.enums import Sex, SubscriberRelationship
from referral.services import access, audit
from referral.services.actor import Actor
from referral.services.pagination import page
from referral.validation import normalize_zip


def create_patient(session: Session, actor: Actor, data: dict[str, Any]) -> Patient:
    access.require_role(actor, *access.CAPTURING_ROLES)
    organization_id, user_id = access.membership(actor)
    coverage = data.get("coverage") or {}
    address = data.get("address") or {}
    patient = Patient(
        organization_id=organization_id,
        first_name=data["first_name"],
        last_name=data["last_name"],
        birth_date=data["birth_date"],
        sex=Sex(data["sex"]),
        state=data["state"],
        address_line1=address.get("line1"),
        address_line2=address.get("line2"),
        city=address.get("city"),
        zip=normalize_zip(address["zip"]) if address else None,
        coverage_payer_id=coverage.get("payer_id"),
        coverage_payer_name=coverage.get("payer_name"),
        coverage_member_id=coverage.get("member_id"),
        coverage_group_number=coverage.get("group_number"),
        coverage_relationship=SubscriberRelationship(coverage.get("relationship", "self")) if coverage else None,
        created_by_user_id=user_id,
    )
    session.add(patient)
    session.flush()
    audit.record(session, actor, "patient.create", object_type="patient", object_id=patient.id,
                 organization_id=patient.organization_id)
    session.commit()
    return patient


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
