"""The patients pages: a searchable list, and one form to register or correct a patient with address and
insurance (the subscriber's details when the patient is covered as a dependant). Saving calls the JSON API from
``static/patients.js``, so the form gets the API's checks and a saved patient's claims are re-checked."""

from __future__ import annotations

import uuid
from typing import Any

from flask import request
from flask.typing import ResponseReturnValue

from referral.http.context import db_session
from referral.models import User
from referral.models.enums import SubscriberRelationship
from referral.services import access
from referral.services import patients as patients_service
from referral.services.actor import Actor
from referral.validation import US_STATES
from referral.web import _page, web
from referral.web.pages import LIST_LIMIT, signed_in_page

SEXES = {"F": "Female", "M": "Male", "U": "Unknown"}
RELATIONSHIPS = {
    SubscriberRelationship.SELF.value: "The patient is the subscriber",
    SubscriberRelationship.SPOUSE.value: "Spouse of the subscriber",
    SubscriberRelationship.CHILD.value: "Child of the subscriber",
    SubscriberRelationship.OTHER.value: "Other dependant of the subscriber",
}
LIST_ROLES = patients_service.EDITING_ROLES


def _not_allowed(message: str) -> tuple[str, int]:
    return _page("error.html", 403, title="Not allowed", message=message)


def _search_text() -> tuple[str, str | None]:
    """The search as typed, and the text to search for (None, with a hint, when it cannot be searched)."""
    text = request.args.get("q", "").strip()
    if not text:
        return "", None
    if len(text) < 2 or len(text) > 100 or any(ord(ch) < 32 for ch in text):
        return text, None
    return text, text


def _back_link() -> str | None:
    """Where the page was opened from, when that was a claim: the clerk returns to it after saving."""
    target = request.args.get("next", "")
    if target.startswith("/claims/") and all(ch.isalnum() or ch in "/-" for ch in target):
        return target
    return None


@web.get("/patients")
@signed_in_page
def patient_list(user: User, actor: Actor) -> ResponseReturnValue:
    if actor.role not in LIST_ROLES or actor.organization_id is None:
        return _not_allowed("The patient list is for the people of a practice who register and bill patients.")
    typed, text = _search_text()
    items, next_cursor = patients_service.list_patients(db_session(), actor, request.args.get("cursor") or None,
                                                        LIST_LIMIT, search=text)
    hint = None
    if typed and text is None:
        hint = "Type at least two letters of a name, or a birth date as YYYY-MM-DD."
    return _page("patient_list.html", patients=items, next_cursor=next_cursor, q=typed, hint=hint,
                 can_create=actor.role in access.CAPTURING_ROLES)


def _form(actor: Actor, patient: Any | None) -> tuple[str, int]:
    return _page("patient_edit.html", patient=patient, sexes=SEXES, relationships=RELATIONSHIPS,
                 states=sorted(US_STATES), back=_back_link(), saved=request.args.get("saved") == "1",
                 subscriber=(patient.subscriber if patient is not None else None) or {})


@web.get("/patients/new")
@signed_in_page
def patient_new(user: User, actor: Actor) -> ResponseReturnValue:
    if actor.role not in access.CAPTURING_ROLES or actor.organization_id is None:
        return _not_allowed("Patients are registered by the capturing office's staff and dentists.")
    return _form(actor, None)


@web.get("/patients/<uuid:patient_id>")
@signed_in_page
def patient_edit(user: User, actor: Actor, patient_id: uuid.UUID) -> ResponseReturnValue:
    patient = patients_service.read_patient(db_session(), actor, patient_id)
    if actor.role not in patients_service.EDITING_ROLES:
        return _not_allowed("Your role can see this patient but not change their details.")
    return _form(actor, patient)
