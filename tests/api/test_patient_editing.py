"""Patients' address and insurance: a dependant names the subscriber, PATCH corrects a patient, and a minor's
consent is given by a guardian."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from flask import Flask

from referral.models import AuditEvent, Patient, Referral
from tests.support.api import delete_patient, new_referral
from tests.support.world import PATIENT, Practice, World

SUBSCRIBER = {"first_name": "Maria", "last_name": "Rivera", "birth_date": "1984-03-09", "sex": "F",
              "address": {"line1": "12 Oak Street", "city": "Sacramento", "state": "CA", "zip": "95816-4321"}}
CHILD = {"first_name": "Ava", "last_name": "Rivera", "birth_date": "2016-05-14", "sex": "F", "state": "CA",
         "address": {"line1": "12 Oak Street", "city": "Sacramento", "zip": "95816"},
         "coverage": {"payer_id": "60054", "payer_name": "Example Dental Plan", "member_id": "W123456789",
                      "group_number": "55001", "relationship": "child", "subscriber": SUBSCRIBER}}
CONSENT = {"method": "verbal", "given_at": "2026-01-05T09:00:00Z"}


def _patients(app: Flask) -> list[tuple[str, str]]:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        return sorted((p.last_name, p.first_name) for p in session.scalars(sa.select(Patient)))


def _snapshot(app: Flask, patient_id: str) -> dict[str, Any]:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        patient = session.get(Patient, uuid.UUID(patient_id))
        assert patient is not None
        return {column.key: getattr(patient, column.key) for column in Patient.__table__.columns}


def _audit(app: Flask, action: str) -> list[dict[str, Any]]:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        return [row.details for row in session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action))]


def test_a_child_is_registered_on_a_parents_insurance(riverside: Practice):
    created = riverside.staff.post("/api/v1/patients", CHILD)

    assert created.status_code == 201, created.get_json()
    coverage = riverside.dentist.get(f"/api/v1/patients/{created.get_json()['id']}").get_json()["coverage"]
    assert coverage["relationship"] == "child"
    assert coverage["member_id"] == "W123456789"
    assert coverage["subscriber"] == {
        "first_name": "Maria", "last_name": "Rivera", "birth_date": "1984-03-09", "sex": "F",
        "address": {"line1": "12 Oak Street", "line2": None, "city": "Sacramento", "state": "CA", "zip": "958164321"}}


def test_a_patient_who_is_the_subscriber_names_no_other(riverside: Practice):
    body = riverside.dentist.get(f"/api/v1/patients/{riverside.patient_id}").get_json()

    assert body["coverage"]["relationship"] == "self"
    assert body["coverage"]["subscriber"] is None


def test_a_dependant_without_a_subscriber_is_refused_in_plain_words_and_nothing_is_stored(app: Flask,
                                                                                         riverside: Practice):
    before = _patients(app)
    coverage = {key: value for key, value in CHILD["coverage"].items() if key != "subscriber"}

    response = riverside.staff.post("/api/v1/patients", {**CHILD, "coverage": coverage})

    assert response.status_code == 422
    body = response.get_json()
    assert "subscriber" in str(body["errors"])
    assert "child" in str(body["errors"])
    assert "insured person" in str(body["errors"])
    assert "_" not in body["message"], "the message names fields in words"
    assert _patients(app) == before


def test_bad_coverage_and_subscriber_fields_are_refused(app: Flask, riverside: Practice):
    before = _patients(app)
    no_state = {**SUBSCRIBER, "address": {"line1": "1 Main", "city": "Davis", "zip": "95616"}}
    for coverage in ({**CHILD["coverage"], "relationship": "cousin"},
                     {**CHILD["coverage"], "relationship": "self"},
                     {**CHILD["coverage"], "subscriber": {**SUBSCRIBER, "sex": "X"}},
                     {**CHILD["coverage"], "subscriber": {**SUBSCRIBER, "birth_date": "2999-01-01"}},
                     {**CHILD["coverage"], "subscriber": {**SUBSCRIBER, "last_name": ""}},
                     {**CHILD["coverage"], "subscriber": {**SUBSCRIBER, "ssn": "123-45-6789"}},
                     {**CHILD["coverage"], "subscriber": no_state}):
        response = riverside.staff.post("/api/v1/patients", {**CHILD, "coverage": coverage})
        assert response.status_code == 422, coverage
    assert _patients(app) == before


def test_a_patient_is_corrected_with_patch_and_the_change_is_audited(app: Flask, riverside: Practice):
    path = f"/api/v1/patients/{riverside.patient_id}"

    changed = riverside.staff.patch(path, {"first_name": "Janet", "address": {
        "line1": "9 Elm Road", "line2": "Apt 2", "city": "Davis", "zip": "95616-1234"}})

    assert changed.status_code == 200, changed.get_json()
    body = riverside.dentist.get(path).get_json()
    assert (body["first_name"], body["last_name"]) == ("Janet", "Doe")
    assert body["address"] == {"line1": "9 Elm Road", "line2": "Apt 2", "city": "Davis", "zip": "956161234"}
    assert body["coverage"]["member_id"] == "W123456789", "fields not sent are kept"
    assert _audit(app, "patient.update") == [{"fields": ["address", "first_name"], "claims_rechecked": 0}]


def test_patch_puts_a_patient_on_a_parents_plan_and_back(riverside: Practice):
    path = f"/api/v1/patients/{riverside.patient_id}"

    as_child = riverside.billing.patch(path, {"coverage": CHILD["coverage"]})
    as_self = riverside.staff.patch(path, {"coverage": {**PATIENT["coverage"], "relationship": "self"}})
    uninsured = riverside.staff.patch(path, {"coverage": None})

    assert as_child.status_code == 200, as_child.get_json()
    assert as_child.get_json()["coverage"]["subscriber"]["last_name"] == "Rivera"
    assert as_self.get_json()["coverage"]["subscriber"] is None
    assert uninsured.get_json()["coverage"] is None


def test_a_refused_patch_changes_nothing(app: Flask, riverside: Practice):
    path = f"/api/v1/patients/{riverside.patient_id}"
    before = _snapshot(app, riverside.patient_id)
    no_subscriber = {key: value for key, value in CHILD["coverage"].items() if key != "subscriber"}
    for body in ({}, {"coverage": no_subscriber}, {"first_name": "Ok", "sex": "X"}, {"birth_date": "2999-01-01"},
                 {"address": {"line1": "1 Main", "city": "X", "zip": "1"}}, {"first_name": None},
                 {"organization_id": str(uuid.uuid4())}, {"id": str(uuid.uuid4())}):
        response = riverside.staff.patch(path, body)
        assert response.status_code == 422, body
        assert response.get_json()["message"]
    assert _snapshot(app, riverside.patient_id) == before
    assert _audit(app, "patient.update") == []


def test_outsiders_readers_and_platform_admins_cannot_patch(app: Flask, world: World, riverside: Practice,
                                                            hillside: Practice):
    path = f"/api/v1/patients/{riverside.patient_id}"
    before = _snapshot(app, riverside.patient_id)
    reader = world.reader(world.reader_practice("Coastal Endodontics"))

    assert hillside.staff.patch(path, {"first_name": "X"}).status_code == 404
    assert hillside.billing.patch(path, {"first_name": "X"}).status_code == 404
    assert reader.client.patch(path, {"first_name": "X"}).status_code == 404
    assert world.admin.patch(path, {"first_name": "X"}).status_code == 403
    assert world.anonymous.patch(path, {"first_name": "X"}).status_code == 401
    assert riverside.staff.patch(f"/api/v1/patients/{uuid.uuid4()}", {"first_name": "X"}).status_code == 404
    assert _snapshot(app, riverside.patient_id) == before


def test_a_deleted_patient_cannot_be_edited(riverside: Practice):
    assert delete_patient(riverside.org_admin, riverside.patient_id).status_code == 204

    response = riverside.staff.patch(f"/api/v1/patients/{riverside.patient_id}", {"first_name": "X"})

    assert response.status_code == 410


def test_a_minor_cannot_consent_alone(app: Flask, riverside: Practice):
    child = riverside.staff.post("/api/v1/patients", CHILD).get_json()["id"]
    referral_body = {"patient_id": child, "referring_provider_id": riverside.dentist_provider_id,
                     "specialty": "endodontics", "reason": "Pain", "teeth": ["19"], "urgency": "urgent",
                     "mode": "asynchronous"}

    refused = riverside.staff.post("/api/v1/referrals", {**referral_body, "consent": {"given_by": "patient",
                                                                                     **CONSENT}})
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Referral)) == 0
    accepted = riverside.staff.post("/api/v1/referrals", {**referral_body, "consent": {"given_by": "guardian",
                                                                                      **CONSENT}})
    referral_id = accepted.get_json()["id"]
    changed = riverside.staff.put(f"/api/v1/referrals/{referral_id}/consent", {"given_by": "patient", **CONSENT})

    assert refused.status_code == 422
    assert "9 years old" in refused.get_json()["message"]
    assert "guardian" in refused.get_json()["message"]
    assert "given_by" not in refused.get_json()["message"]
    assert accepted.status_code == 201
    assert changed.status_code == 422
    shown = riverside.staff.get(f"/api/v1/referrals/{referral_id}").get_json()["consent"]
    assert shown["given_by"] == "guardian", "the refused change left the guardian's consent in place"


def test_an_adult_consents_for_themselves_and_an_eighteenth_birthday_counts(riverside: Practice):
    adult = riverside.staff.post("/api/v1/patients", {**PATIENT, "birth_date": "2008-01-05"}).get_json()["id"]
    referral_id = new_referral(riverside, patient_id=adult)

    on_the_day = riverside.staff.put(f"/api/v1/referrals/{referral_id}/consent",
                                     {"given_by": "patient", **CONSENT, "given_at": "2026-01-05T09:00:00Z"})
    the_day_before = riverside.staff.put(f"/api/v1/referrals/{referral_id}/consent",
                                         {"given_by": "patient", **CONSENT, "given_at": "2026-01-04T09:00:00Z"})

    assert on_the_day.status_code == 200
    assert the_day_before.status_code == 422
    assert "17 years old" in the_day_before.get_json()["message"]
