"""The patient pages: the list with its search, the form with address and insurance, and the claim page's links
from a hold to the page that fixes it."""

from __future__ import annotations

import uuid

from flask.testing import FlaskClient

from tests.support.api import draft_body, ready_referral, submit
from tests.support.web import sign_in, user_with_password
from tests.support.world import PATIENT, Practice, World


def _page(client: FlaskClient, path: str) -> tuple[int, str]:
    response = client.get(path)
    return response.status_code, response.get_data(as_text=True)


def test_the_list_finds_patients_by_name_or_birth_date(client: FlaskClient, world: World, riverside: Practice,
                                                       hillside: Practice):
    riverside.staff.post("/api/v1/patients", {**PATIENT, "first_name": "Ava", "last_name": "Rivera",
                                              "birth_date": "2016-05-14"})
    hillside.staff.post("/api/v1/patients", {**PATIENT, "first_name": "Ava", "last_name": "Rivkin"})
    sign_in(client, user_with_password(world, riverside))

    _, everyone = _page(client, "/patients")
    _, by_name = _page(client, "/patients?q=riv")
    _, by_birth = _page(client, "/patients?q=2016-05-14")
    _, too_short = _page(client, "/patients?q=r")

    assert "Doe, Jane" in everyone
    assert "Rivera, Ava" in everyone
    assert "Rivera, Ava" in by_name
    assert "Doe, Jane" not in by_name
    assert "Rivkin" not in by_name, "another practice's patient is never listed"
    assert "Rivera, Ava" in by_birth
    assert "Type at least two letters" in too_short
    assert 'href="/patients/new"' in everyone


def test_the_form_shows_the_address_insurance_and_a_dependants_subscriber(client: FlaskClient, world: World,
                                                                          riverside: Practice):
    child = riverside.staff.post("/api/v1/patients", {
        **PATIENT, "first_name": "Ava", "last_name": "Rivera", "birth_date": "2016-05-14",
        "coverage": {**PATIENT["coverage"], "relationship": "child",
                     "subscriber": {"first_name": "Maria", "last_name": "Rivera"}}}).get_json()["id"]
    sign_in(client, user_with_password(world, riverside, "billing"))

    status, adult = _page(client, f"/patients/{riverside.patient_id}")
    _, dependant = _page(client, f"/patients/{child}")

    assert status == 200
    assert 'value="12 Oak Street"' in adult
    assert 'value="W123456789"' in adult
    assert "data-subscriber hidden" in adult, "no subscriber part for a patient who is the subscriber"
    assert "data-subscriber hidden" not in dependant
    assert 'value="Maria"' in dependant
    assert 'value="child" selected' in dependant


def test_outsiders_get_404_and_roles_without_the_page_are_told_why(client: FlaskClient, world: World,
                                                                   riverside: Practice, hillside: Practice):
    sign_in(client, user_with_password(world, hillside))

    assert _page(client, f"/patients/{riverside.patient_id}")[0] == 404
    assert _page(client, f"/patients/{uuid.uuid4()}")[0] == 404
    status, listed = _page(client, "/patients")
    assert status == 200
    assert "Doe, Jane" in listed, "its own patient"


def test_billing_cannot_open_the_new_patient_form(client: FlaskClient, world: World, riverside: Practice):
    sign_in(client, user_with_password(world, riverside, "billing"))

    status, body = _page(client, "/patients/new")

    assert status == 403
    assert "registered by" in body


def test_a_held_claim_links_to_the_patient_page_that_fixes_it(client: FlaskClient, world: World,
                                                              riverside: Practice):
    patient = riverside.staff.post("/api/v1/patients", {**PATIENT, "address": None}).get_json()["id"]
    referral_id = ready_referral(riverside, specialty="general", patient_id=patient)
    submit(riverside, referral_id)
    riverside.dentist.post(f"/api/v1/referrals/{referral_id}/accept")
    images = [i["id"] for i in riverside.staff.get(f"/api/v1/referrals/{referral_id}").get_json()["images"]]
    riverside.dentist.put(f"/api/v1/referrals/{referral_id}/report", draft_body(images))
    riverside.dentist.post(f"/api/v1/referrals/{referral_id}/report/sign")
    [claim] = riverside.billing.get(f"/api/v1/referrals/{referral_id}/claims").get_json()["claims"]
    sign_in(client, user_with_password(world, riverside, "billing"))

    _, page = _page(client, f"/claims/{claim['id']}")

    assert "street address is missing" in page
    assert f'href="/patients/{patient}?next=/claims/{claim["id"]}"' in page
    _, form = _page(client, f"/patients/{patient}?next=/claims/{claim['id']}")
    assert f'href="/claims/{claim["id"]}" data-back' in form
    _, elsewhere = _page(client, f"/patients/{patient}?next=https://example.com/")
    assert "data-back" not in elsewhere
