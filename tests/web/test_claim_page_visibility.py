"""The claim page names the patient only to whom the claim JSON and the case allow it: the billing practice's
billing staff and admins, and a reader while the case is theirs. A reader of the billing practice who declined the
case, or was never assigned it, sees the claim without the patient's name, as the JSON shows it."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.support.api import draft_body, ready_referral, submit
from tests.support.lifecycle import reading_practice
from tests.support.web import PASSWORD, sign_in, user_with_password
from tests.support.world import Practice, World

NAME = "Doe, Jane"


def _signed_in(app: Flask, world: World, practice: Practice, role: str, provider_id: str,
               email: str) -> FlaskClient:
    body = {"email": email, "role": role, "password": PASSWORD, "provider_id": provider_id}
    created = world.admin.post(f"/api/v1/organizations/{practice.id}/users", body)
    assert created.status_code == 201, created.get_json()
    client = app.test_client()
    sign_in(client, email)
    return client


def test_a_reader_who_declined_or_was_never_assigned_does_not_see_the_patient_on_the_claim_page(
        app: Flask, world: World, riverside: Practice):
    first, coastal = reading_practice(world)
    # A second reader of the same practice, not yet taking cases: the case goes to the first reader.
    second = world.reader(coastal.id, accepting=False, last_name="Second")
    referral_id = ready_referral(riverside)
    assert submit(riverside, referral_id).get_json()["assigned_provider_id"] == first.provider_id
    opened = world.admin.patch(f"/api/v1/providers/{second.provider_id}", {"accepting_referrals": True})
    assert opened.status_code == 200, opened.get_json()
    declined = first.client.post(f"/api/v1/referrals/{referral_id}/decline", {"reason": "Out of office this week"})
    assert declined.status_code == 200, declined.get_json()
    assert riverside.staff.get(f"/api/v1/referrals/{referral_id}").get_json()["assigned_provider_id"] == \
        second.provider_id
    assert second.client.post(f"/api/v1/referrals/{referral_id}/accept").status_code == 200
    images = [i["id"] for i in riverside.staff.get(f"/api/v1/referrals/{referral_id}").get_json()["images"]]
    assert second.client.put(f"/api/v1/referrals/{referral_id}/report", draft_body(images)).status_code == 200
    assert second.client.post(f"/api/v1/referrals/{referral_id}/report/sign").status_code == 200
    claims = coastal.billing.get(f"/api/v1/referrals/{referral_id}/claims").get_json()["claims"]
    assert len(claims) == 1
    claim_id = claims[0]["id"]
    never = world.reader(coastal.id, role=None, last_name="Never")

    # Page logins for the reader who declined, one who was never assigned, the reader who signed, and billing.
    declined_page = _signed_in(app, world, coastal, "specialist", first.provider_id, "declined@coastal.example.com")
    never_page = _signed_in(app, world, coastal, "specialist", never.provider_id, "never@coastal.example.com")
    signer_page = _signed_in(app, world, coastal, "specialist", second.provider_id, "signer@coastal.example.com")
    clerk = app.test_client()
    sign_in(clerk, user_with_password(world, coastal, "billing"))

    for client in (declined_page, never_page):
        response = client.get(f"/claims/{claim_id}")
        html = response.get_data(as_text=True)
        assert response.status_code == 200
        assert "Doe" not in html
        assert "Jane" not in html
    for client in (signer_page, clerk):
        html = client.get(f"/claims/{claim_id}").get_data(as_text=True)
        assert NAME in html
    # What the claim JSON shows the reader who declined: the claim, with no patient details in it.
    as_json = first.client.get(f"/api/v1/claims/{claim_id}")
    assert as_json.status_code == 200, as_json.get_json()
    assert "Doe" not in str(as_json.get_json())
    assert "Jane" not in str(as_json.get_json())
