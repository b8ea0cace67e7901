"""A patient's deletion on request: identity erased, images and consent forms gone, cases still readable."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from referral.models import AuditEvent, ClaimExport, Image, Patient
from referral.models.patients import ERASED_BIRTH_DATE
from storage import StorageUnavailable
from tests.support.api import (
    PDF,
    delete_patient,
    draft_body,
    images_of,
    put_form,
    ready_referral,
    run_retention,
    signed_case,
    submit,
)
from tests.support.world import Practice, Reader, World

pytestmark = pytest.mark.both_backends  # stored bytes or database behaviour: both set-ups

# Everything world.PATIENT and the sample DICOM header say about Jane Doe.
PHI = ("Jane", "Doe", "1980-01-01", "19800101", "12 Oak Street", "W123456789", "P-1")


def assert_no_phi(text: str) -> None:
    leaked = [value for value in PHI if value in text]
    assert leaked == [], f"{leaked} still shown"


def patient_row(app: Flask, patient_id: str) -> Patient:
    with app.app_context():
        factory = app.extensions["referral.sessionmaker"]
        with factory() as session:
            patient = session.get(Patient, uuid.UUID(patient_id))
            assert patient is not None
            return patient


def all_keys(app: Flask, practice: Practice) -> list[str]:
    store = app.extensions["referral.storage"]
    return sorted([*store.keys(f"images/{practice.id}/"), *store.keys(f"consent/{practice.id}/")])


def count(app: Flask, model: Any, *where: Any) -> int:
    with app.app_context():
        factory = app.extensions["referral.sessionmaker"]
        with factory() as session:
            return int(session.scalar(sa.select(sa.func.count()).select_from(model).where(*where)) or 0)


@pytest.fixture
def reader(world: World) -> Reader:
    return world.reader(world.reader_practice("Coastal Endodontics"))


@pytest.fixture
def closed_cases(riverside: Practice, world: World, reader: Reader) -> tuple[str, str]:
    """Jane Doe's two finished cases: one reported (with a consent form on file), one cancelled."""
    reported = ready_referral(riverside)
    assert put_form(riverside.staff, reported, PDF).status_code == 200
    assert submit(riverside, reported).get_json()["assigned_provider_id"] == reader.provider_id
    assert reader.client.post(f"/api/v1/referrals/{reported}/accept").status_code == 200
    images = [i["id"] for i in riverside.staff.get(f"/api/v1/referrals/{reported}").get_json()["images"]]
    assert reader.client.put(f"/api/v1/referrals/{reported}/report", draft_body(images)).status_code == 200
    assert reader.client.post(f"/api/v1/referrals/{reported}/report/sign").status_code == 200
    cancelled = ready_referral(riverside)
    assert riverside.staff.post(f"/api/v1/referrals/{cancelled}/cancel", {"reason": "moved"}).status_code == 200
    return reported, cancelled


def test_deleting_a_patient_erases_their_identity_and_their_images(
        app: Flask, world: World, riverside: Practice, reader: Reader, closed_cases: tuple[str, str]):
    reported, cancelled = closed_cases
    image_ids = [str(image.id) for referral_id in closed_cases for image in images_of(app, referral_id)]
    before = all_keys(app, riverside)

    response = delete_patient(riverside.org_admin, riverside.patient_id)

    assert response.status_code == 204
    assert response.data == b""
    assert len(before) == 7  # two images with preview and thumbnail, one consent form
    assert all_keys(app, riverside) == []
    row = patient_row(app, riverside.patient_id)
    assert row.deleted_at is not None
    assert (row.first_name, row.last_name, row.birth_date) == ("", "", ERASED_BIRTH_DATE)
    assert (row.address, row.coverage, row.sex.value) == (None, None, "U")
    for image in images_of(app, reported) + images_of(app, cancelled):
        assert (image.deleted_reason, image.original_filename) == ("patient_deleted", None)
        assert image.objects_removed_at is not None
        assert_no_phi(json.dumps(image.dicom or {}))
    assert sorted(e.object_id.hex for e in _events(app, "image.patient_delete")) == sorted(
        uuid.UUID(i).hex for i in image_ids)
    deleted = _events(app, "patient.delete")
    assert [(e.object_id.hex, e.details) for e in deleted] == [
        (uuid.UUID(riverside.patient_id).hex, {"referrals": 2, "images": 2, "consent_forms": 1})]
    assert len(_events(app, "referral.consent_form_delete")) == 1


def test_afterwards_the_patient_is_gone_but_the_cases_still_read(
        app: Flask, world: World, riverside: Practice, reader: Reader, closed_cases: tuple[str, str]):
    reported, _ = closed_cases
    image_id = str(images_of(app, reported)[0].id)
    assert delete_patient(riverside.org_admin, riverside.patient_id).status_code == 204

    patient = riverside.staff.get(f"/api/v1/patients/{riverside.patient_id}")
    listed = riverside.staff.get("/api/v1/patients").get_json()["items"]
    found = riverside.staff.get("/api/v1/patients?q=Doe").get_json()["items"]
    again = delete_patient(riverside.org_admin, riverside.patient_id)
    new_case = riverside.staff.post("/api/v1/referrals", {
        "patient_id": riverside.patient_id, "referring_provider_id": riverside.dentist_provider_id,
        "specialty": "endodontics", "reason": "Pain", "teeth": ["19"], "urgency": "routine",
        "mode": "asynchronous"})
    content = {name: riverside.staff.get(f"/api/v1/images/{image_id}/{name}").status_code
               for name in ("content", "preview", "thumbnail")}
    consent_form = riverside.staff.get(f"/api/v1/referrals/{reported}/consent/form")
    case = riverside.staff.get(f"/api/v1/referrals/{reported}")
    readers_case = reader.client.get(f"/api/v1/referrals/{reported}")
    documents = {name: riverside.dentist.get(f"/api/v1/referrals/{reported}/documents/{name}")
                 for name in ("capture-note.html", "report.html", "capture-note.pdf")}
    fhir = reader.client.get(f"/api/v1/referrals/{reported}/fhir")
    audit = riverside.org_admin.get("/api/v1/audit-events?limit=100")
    image = riverside.staff.get(f"/api/v1/images/{image_id}")

    assert patient.status_code == 410
    assert riverside.patient_id not in [p["id"] for p in listed]
    assert found == []
    assert again.status_code == 410
    assert new_case.status_code == 422
    assert "patient_id" in new_case.get_json()["errors"]
    assert content == {"content": 410, "preview": 410, "thumbnail": 410}
    assert consent_form.status_code == 404
    for response in (case, readers_case):
        assert response.status_code == 200
        body = response.get_json()
        assert body["patient"]["id"] == riverside.patient_id
        assert body["patient"]["deleted_at"]
        assert (body["patient"]["first_name"], body["patient"]["last_name"], body["patient"]["birth_date"]) == (
            None, None, None)
        assert body["status"] == "reported"
        assert body["consent"]["form_on_file"] is False
        assert_no_phi(response.get_data(as_text=True))
    assert all(response.status_code == 200 for response in documents.values())
    assert_no_phi(documents["capture-note.html"].get_data(as_text=True))
    assert_no_phi(documents["report.html"].get_data(as_text=True))
    assert "patient record deleted" in documents["report.html"].get_data(as_text=True)
    assert fhir.status_code == 200
    assert_no_phi(fhir.get_data(as_text=True))
    resources = [entry["resource"] for entry in fhir.get_json()["entry"]]
    fhir_patient = next(r for r in resources if r["resourceType"] == "Patient")
    assert fhir_patient["active"] is False
    # US Core wants a name: the erased one says only that it is withheld.
    assert fhir_patient["name"] == [{"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
                                                    "valueCode": "masked"}]}]
    assert "birthDate" not in fhir_patient
    assert all("url" not in r["content"] for r in resources if r["resourceType"] == "Media")
    assert audit.status_code == 200
    assert_no_phi(audit.get_data(as_text=True))
    assert image.status_code == 200
    assert image.get_json()["deleted_reason"] == "patient_deleted"
    assert_no_phi(image.get_data(as_text=True))


def test_claims_of_a_deleted_patient_stay_readable_but_are_not_exported(
        app: Flask, world: World, riverside: Practice, reader: Reader):
    referral_id = signed_case(world, riverside, reader)
    claim_id = riverside.billing.get(f"/api/v1/referrals/{referral_id}/claims").get_json()["claims"][0]["id"]
    exports_before = count(app, ClaimExport)
    assert delete_patient(riverside.org_admin, riverside.patient_id).status_code == 204

    claims = riverside.billing.get(f"/api/v1/referrals/{referral_id}/claims")
    x12 = riverside.billing.get(f"/api/v1/claims/{claim_id}/x12")
    fhir_claim = riverside.billing.get(f"/api/v1/claims/{claim_id}/fhir")
    addendum = reader.client.post(f"/api/v1/referrals/{referral_id}/report/addenda", {"text": "Also tooth 18"})

    assert claims.status_code == 200
    assert [line["code"] for line in claims.get_json()["claims"][0]["lines"]] == ["D0707"]
    assert (x12.status_code, fhir_claim.status_code) == (409, 409)
    assert "deleted" in x12.get_json()["message"]
    assert_no_phi(x12.get_data(as_text=True))
    assert count(app, ClaimExport) == exports_before
    assert addendum.status_code == 409


def test_an_unreachable_store_fails_the_deletion_before_anything_changes(
        app: Flask, riverside: Practice, closed_cases: tuple[str, str], monkeypatch: pytest.MonkeyPatch):
    before = all_keys(app, riverside)

    with monkeypatch.context() as patched:
        patched.setattr(app.extensions["referral.storage"], "delete", _unavailable)
        response = delete_patient(riverside.org_admin, riverside.patient_id)

    assert response.status_code == 503
    assert riverside.staff.get(f"/api/v1/patients/{riverside.patient_id}").get_json()["last_name"] == "Doe"
    assert all_keys(app, riverside) == before
    assert count(app, Image, Image.deleted_at.is_not(None)) == 0
    assert _events(app, "patient.delete") == []


def test_image_objects_the_store_could_not_remove_are_removed_by_the_next_retention_run(
        app: Flask, riverside: Practice, closed_cases: tuple[str, str], monkeypatch: pytest.MonkeyPatch):
    store = app.extensions["referral.storage"]
    delete_object = store.delete

    def images_unavailable(key: str) -> None:
        if key.startswith("images/"):
            _unavailable(key)
        delete_object(key)

    with monkeypatch.context() as patched:
        patched.setattr(store, "delete", images_unavailable)
        response = delete_patient(riverside.org_admin, riverside.patient_id)
    left = all_keys(app, riverside)
    pending = count(app, Image, Image.deleted_at.is_not(None), Image.objects_removed_at.is_(None))
    code, counts = run_retention(app)

    assert response.status_code == 204
    assert riverside.staff.get(f"/api/v1/patients/{riverside.patient_id}").status_code == 410
    assert len(left) == 6
    assert all(key.startswith("images/") for key in left)
    assert pending == 2
    assert code == 0
    assert (counts["images_deleted"], counts["objects_removed"]) == (0, 6)
    assert all_keys(app, riverside) == []


def _unavailable(_key: str) -> None:
    raise StorageUnavailable("store down")


def test_a_platform_admin_may_delete_a_patient(app: Flask, world: World, riverside: Practice):
    response = delete_patient(world.admin, riverside.patient_id)

    assert response.status_code == 204
    assert patient_row(app, riverside.patient_id).deleted_at is not None
    assert _events(app, "patient.delete")[0].actor_user_id.hex == uuid.UUID(world.admin_id).hex


def test_only_the_patients_own_admins_delete_it(app: Flask, world: World, riverside: Practice,
                                                hillside: Practice, reader: Reader):
    refused = {role: delete_patient(getattr(riverside, role), riverside.patient_id).status_code
               for role in ("staff", "dentist", "billing")}
    by_reader = delete_patient(reader.client, riverside.patient_id)
    other_admin = delete_patient(hillside.org_admin, riverside.patient_id)
    unknown = delete_patient(riverside.org_admin, str(uuid.uuid4()))
    anonymous = delete_patient(world.anonymous, riverside.patient_id)

    assert refused == {"staff": 403, "dentist": 403, "billing": 403}
    # A reader of another practice is an outsider to the patient: not found, like any other practice.
    assert by_reader.status_code == 404
    assert other_admin.status_code == 404
    assert unknown.status_code == 404
    assert anonymous.status_code == 401
    assert riverside.staff.get(f"/api/v1/patients/{riverside.patient_id}").get_json()["last_name"] == "Doe"
    # The two outsiders and the unknown id: a refusal is recorded whether or not the patient exists.
    denied = [e for e in _events(app, "patient.access") if e.outcome == "denied"]
    assert len(denied) == 3
    assert _events(app, "patient.delete") == []


def test_a_patient_with_a_case_under_way_is_not_deleted(app: Flask, riverside: Practice, reader: Reader):
    draft = ready_referral(riverside)
    routed = ready_referral(riverside)
    submit(riverside, routed)
    before = all_keys(app, riverside)

    response = delete_patient(riverside.org_admin, riverside.patient_id)

    assert response.status_code == 409
    assert sorted(response.get_json()["errors"]["referral_ids"]) == sorted([draft, routed])
    assert "cancel" in response.get_json()["message"]
    assert patient_row(app, riverside.patient_id).deleted_at is None
    assert all_keys(app, riverside) == before
    assert count(app, Image, Image.deleted_at.is_not(None)) == 0
    assert riverside.staff.get(f"/api/v1/patients/{riverside.patient_id}").status_code == 200


def test_a_patient_without_cases_is_deleted_and_stays_deleted(app: Flask, riverside: Practice):
    first = delete_patient(riverside.org_admin, riverside.patient_id)
    second = delete_patient(riverside.org_admin, riverside.patient_id)

    assert first.status_code == 204
    assert second.status_code == 410
    assert len(_events(app, "patient.delete")) == 1
    assert run_retention(app) == (0, {"dry_run": False, "organizations": 0, "images_expired": 0,
                                      "images_deleted": 0, "objects_removed": 0, "removals_failed": 0})


def _events(app: Flask, action: str) -> list[AuditEvent]:
    with app.app_context():
        factory = app.extensions["referral.sessionmaker"]
        with factory() as session:
            return list(session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)
                                        .order_by(AuditEvent.id)))
