"""Referrals: creation, reads and lists. State changes live in the workflow service."""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, joinedload, selectinload

from referral import dental
from referral.db import utcnow
from referral.errors import ValidationFailed
from referral.models import Image, Organization, Patient, Provider, Referral
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
from referral.services import access, audit, case_reads, clock, pagination
from referral.services.actor import Actor
from referral.services.consent import check_giver
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
    if referring.specialty == Specialty.ASSISTANT:
        # The referring dentist renders the capturing practice's claim; an assistant takes images only.
        raise ValidationFailed("A dental assistant cannot be the referring provider",
                               {"referring_provider_id": [
                                   "Choose a dentist of the practice: a dental assistant takes images but does "
                                   "not refer or bill for them."]})
    target_id = data.get("target_provider_id")
    if target_id is not None and session.get(Provider, target_id) is None:
        raise ValidationFailed("target_provider_id is not a known provider",
                               {"target_provider_id": ["Unknown provider."]})
    now = utcnow()
    urgency = Urgency(data["urgency"])
    consent = data.get("consent")
    if consent:
        check_giver(patient, consent["given_by"], consent["given_at"])
    referral = Referral(
        organization_id=organization_id,
        patient_id=patient.id,
        referring_provider_id=referring.id,
        specialty=Specialty(data["specialty"]),
        reason=data["reason"],
        reason_code=data.get("reason_code"),
        teeth=data.get("teeth") or [],
        urgency=urgency,
        due_at=settings.due_at(urgency.value, now),
        mode=Mode(data["mode"]),
        scope=Scope(data.get("scope") or Scope.EVALUATE_ONLY),
        questions=list(data.get("questions") or []),
        restorability_decided_by=data.get("restorability_decided_by"),
        place_of_service=data.get("place_of_service") or _default_place(session, organization_id),
        target_provider_id=target_id,
        status=ReferralStatus.DRAFT,
        consent_given_by=ConsentGivenBy(consent["given_by"]) if consent else None,
        consent_method=ConsentMethod(consent["method"]) if consent else None,
        consent_given_at=clock.practice_moment(consent["given_at"], clock.practice_zone(session, organization_id),
                                               "consent.given_at", "The time of consent") if consent else None,
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
    """The case with its patient, images (with who captured them), events and report state, loaded in three
    SELECTs whatever the number of images, then the audit row and one COMMIT.

    The access check is the first SELECT's WHERE clause (``access.load_case``)."""
    referral = access.load_case(
        session, actor, referral_id, joinedload(Referral.patient), joinedload(Referral.interpretation),
        selectinload(Referral.images).joinedload(Image.captured_by), selectinload(Referral.events))
    audit.record(session, actor, "referral.read", object_type="referral", object_id=referral.id,
                 organization_id=referral.organization_id, referral_id=referral.id)
    session.commit()
    return referral


def read_case(session: Session, actor: Actor, referral_id: uuid.UUID) -> Referral:
    """``read_referral`` for the API's answer, which reads only the case's columns and those of its patient, report
    state, images (with their capturers) and events. On PostgreSQL the access check, the case and the audit row are
    one statement (``case_reads``) and what comes back stands in for the ORM objects; a case that statement does
    not find, and every case on SQLite, is read by ``read_referral``, which refuses or flags it as it always has."""
    if session.get_bind().dialect.name == "postgresql":
        case = case_reads.read_visible_case(session, actor, referral_id)
        if case is not None:
            session.commit()
            return case
    return read_referral(session, actor, referral_id)


# Cases still waiting on someone; past their deadline they are marked overdue.
AWAITING_RESPONSE = (ReferralStatus.ROUTED, ReferralStatus.ACCEPTED, ReferralStatus.RETAKE_REQUESTED,
                     ReferralStatus.UNASSIGNED)


def is_overdue(referral: Referral, now: datetime | None = None) -> bool:
    return referral.status in AWAITING_RESPONSE and referral.due_at < (now or utcnow())


SEARCH_MAX = 100


def _prefix(text: str) -> str:
    """A LIKE pattern for values starting with ``text`` (lower case), its wildcards escaped."""
    return text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def search_condition(text: str) -> sa.ColumnElement[bool] | None:
    """Referrals found by a search box: a patient's name (the start of the last or first name, or of both, as
    "Last, First" or "First Last"), a tooth the case names (19, #19, tooth 19, A) or the start of the accession
    number. ``None`` when the text is empty. A deleted patient's record has no name to find."""
    text = " ".join(text.split())
    if not text:
        return None
    if len(text) > SEARCH_MAX:
        raise ValidationFailed("The search is too long", {"q": [f"At most {SEARCH_MAX} characters."]})
    if any(ord(ch) < 32 for ch in text):
        raise ValidationFailed("The search holds control characters", {"q": ["Control characters are not allowed."]})

    def starts(column: Any, word: str) -> sa.ColumnElement[bool]:
        return sa.func.lower(column).like(_prefix(word), escape="\\")

    parts = [p for p in text.replace(",", " , ").split(" ") if p]
    words = [p for p in parts if p != ","]
    if len(words) == 2 and "," in parts:  # "Last, First"
        by_name = sa.and_(starts(Patient.last_name, words[0]), starts(Patient.first_name, words[1]))
    elif len(words) == 2:  # "First Last", or "Last First"
        by_name = sa.or_(sa.and_(starts(Patient.first_name, words[0]), starts(Patient.last_name, words[1])),
                         sa.and_(starts(Patient.last_name, words[0]), starts(Patient.first_name, words[1])))
    else:
        whole = text.replace(",", "").strip()
        by_name = sa.or_(starts(Patient.last_name, whole), starts(Patient.first_name, whole))
    found: list[sa.ColumnElement[bool]] = [sa.and_(Patient.deleted_at.is_(None), by_name)]
    bare = text.lower().removeprefix("tooth").lstrip(" #")
    tooth = dental.try_tooth(bare)
    if tooth is not None:
        # The teeth are a JSON list of strings on both databases: the designation in quotes is one element.
        found.append(sa.cast(Referral.teeth, sa.Text).like(f'%"{tooth}"%'))
    if text.isalnum():
        found.append(Referral.accession_number.like(_prefix(text).upper(), escape="\\"))
    return sa.or_(*found)


@functools.cache
def _listing(view: str, statuses: bool, urgency: bool, overdue: bool | None) -> sa.Select[Any]:
    """The cases an inbox (``view``: the reader's provider's) or sent box (the practice's) lists, narrowed by the
    filters asked for, before any search; the viewer, statuses, urgency and the time are bound parameters
    (``_listing_parameters``), so each combination of filters is built once and then reused as it is."""
    viewer = Referral.assigned_provider_id if view == "inbox" else Referral.organization_id
    query = sa.select(Referral).where(viewer == sa.bindparam("viewer", type_=sa.Uuid))
    if statuses:
        query = query.where(Referral.status.in_(sa.bindparam("statuses", expanding=True, type_=Referral.status.type)))
    if urgency:
        query = query.where(Referral.urgency == sa.bindparam("urgency", type_=Referral.urgency.type))
    if overdue is not None:
        late = sa.and_(Referral.status.in_(AWAITING_RESPONSE),
                       Referral.due_at < sa.bindparam("now", type_=Referral.due_at.type))
        query = query.where(late if overdue else sa.not_(late))
    return query


def list_referrals(session: Session, actor: Actor, *, view: str | None = None, statuses: list[str] | None = None,
                   urgency: str | None = None, overdue: bool | None = None, cursor: str | None = None,
                   limit: int | None = None, q: str | None = None) -> tuple[list[Referral], str | None]:
    """The sent box of a practice or the inbox of a reader, by response deadline then id; ``q`` narrows it to
    the cases a search finds (see ``search_condition``)."""
    access.require_role(actor, *access.CLINICAL_READ_ROLES)
    if view is None:
        view = "inbox" if actor.role == Role.SPECIALIST else "sent"
    if view == "inbox" and (actor.provider_id is None or actor.role not in access.READER_ROLES):
        raise ValidationFailed("view=inbox lists the cases assigned to a reader; you are not one",
                               {"view": ["Only readers have an inbox."]})
    query = _listing(view, bool(statuses), bool(urgency), overdue)
    parameters: dict[str, Any] = {
        "viewer": actor.provider_id if view == "inbox" else actor.organization_id,
        "statuses": [ReferralStatus(s) for s in statuses or ()],
        "urgency": Urgency(urgency) if urgency else None,
        "now": utcnow(),
    }
    searched = search_condition(q) if q else None
    if searched is not None:
        query = query.join(Patient, Patient.id == Referral.patient_id).where(searched)
    details: dict[str, Any] = {"view": view}
    if searched is not None:
        details["searched"] = True  # never the words searched for: they may be a patient's name
    if session.get_bind().dialect.name == "postgresql":
        # the page and its audit row in one statement (case_reads.read_page); a search's statement is its own
        items, next_cursor = case_reads.read_page(session, actor, query, parameters, cursor, limit, details,
                                                  reuse=searched is None)
    else:
        items, next_cursor = pagination.page(session, query, [Referral.due_at, Referral.id], cursor, limit,
                                             parameters=parameters)
        audit.record(session, actor, "referral.list", object_type="referral", object_id=None,
                     organization_id=actor.organization_id, details={"count": len(items), **details})
    session.commit()
    return items, next_cursor


def _default_place(session: Session, organization_id: uuid.UUID) -> str:
    """The practice's default place of service, for a referral that names none."""
    org = session.get(Organization, organization_id)
    return org.default_place_of_service if org is not None and org.default_place_of_service else "11"
