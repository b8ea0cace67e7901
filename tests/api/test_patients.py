from __future__ import annotations

import pytest

from tests.support.world import PATIENT, Practice


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


def _names(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return sorted(f"{p['last_name']}, {p['first_name']}" for p in response.get_json()["items"])


def test_patients_are_found_by_name_start_or_birth_date_within_the_practice(riverside: Practice,
                                                                           hillside: Practice):
    for first, last, born in (("Ana", "Cruz", "2011-04-02"), ("Ben", "Cruzado", "1975-09-30"),
                              ("Cruz", "Alvarez", "1990-01-15"), ("Dee", "100%_Sure", "1990-01-15")):
        created = riverside.staff.post("/api/v1/patients", {"first_name": first, "last_name": last,
                                                            "birth_date": born, "sex": "F", "state": "CA"})
        assert created.status_code == 201, created.get_json()

    assert _names(riverside.staff.get("/api/v1/patients?q=cRuZ")) == ["Alvarez, Cruz", "Cruz, Ana", "Cruzado, Ben"]
    assert _names(riverside.staff.get("/api/v1/patients?q=1990-01-15")) == ["100%_Sure, Dee", "Alvarez, Cruz"]
    assert _names(riverside.staff.get("/api/v1/patients?q=100%25_")) == ["100%_Sure, Dee"]
    assert _names(riverside.staff.get("/api/v1/patients?q=1_0")) == [], "_ and % are matched literally"
    assert _names(hillside.staff.get("/api/v1/patients?q=Cruz")) == [], "another practice's patients are not found"


@pytest.mark.parametrize("query", ["q=a", "q=" + "x" * 101])
def test_a_patient_search_that_is_too_short_or_too_long_is_refused(riverside: Practice, query: str):
    response = riverside.staff.get(f"/api/v1/patients?{query}")
    assert response.status_code == 422
    assert "q" in str(response.get_json()["errors"])
