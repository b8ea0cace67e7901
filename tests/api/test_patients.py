from __future__ import annotations

from tests.world import PATIENT, Practice


def test_staff_register_a_patient_with_coverage(riverside: Practice):
    response = riverside.staff.post("/api/v1/patients", PATIENT)

    assert response.status_code == 201
    body = riverside.dentist.get(f"/api/v1/patients/{response.get_json()['id']}").get_json()
    assert body["last_name"] == "Doe"
    assert body["coverage"]["payer_id"] == "60054"
    assert body["coverage"]["relationship"] == "self"
    assert body["address"] == {"line1": "12 Oak Street", "line2": None, "city": "Sacramento", "zip": "95816"}


def test_bad_patient_fields_are_refused(riverside: Practice):
    for overrides in ({"birth_date": "2999-01-01"}, {"birth_date": "1800-01-01"}, {"sex": "X"},
                      {"state": "Cali"}, {"first_name": "a" * 101}, {"ssn": "123-45-6789"},
                      {"coverage": {"payer_id": "1"}}, {"address": {"line1": "1 Main", "city": "X", "zip": "1"}},
                      {"address": {"city": "X", "zip": "95816"}}):
        response = riverside.staff.post("/api/v1/patients", {**PATIENT, **overrides})
        assert response.status_code == 422, overrides


def test_patients_are_listed_a_page_at_a_time_within_the_practice(riverside: Practice, hillside: Practice):
    for _ in range(2):
        riverside.staff.post("/api/v1/patients", PATIENT)
    first = riverside.staff.get("/api/v1/patients?limit=2").get_json()
    rest = riverside.staff.get(f"/api/v1/patients?limit=2&cursor={first['next_cursor']}").get_json()
    assert len(first["items"]) == 2
    assert len(rest["items"]) == 1
    assert rest["next_cursor"] is None
    assert hillside.patient_id not in {p["id"] for p in first["items"] + rest["items"]}


def test_another_practice_sees_404_for_a_patient(riverside: Practice, hillside: Practice):
    assert hillside.staff.get(f"/api/v1/patients/{riverside.patient_id}").status_code == 404
    assert hillside.billing.get(f"/api/v1/patients/{riverside.patient_id}").status_code == 404


def test_billing_cannot_register_patients(riverside: Practice):
    assert riverside.billing.post("/api/v1/patients", PATIENT).status_code == 403
