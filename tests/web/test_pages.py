"""The role pages and the pages' own calls to the API, through the Flask test client."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from referral.db import utcnow
from referral.models import Image, Patient, Referral, User, WebSession
from referral.services.web_auth import hash_password
from tests.support import samples
from tests.support.api import delete_patient, new_referral, ready_referral, signed_case, submit, upload
from tests.support.web import PASSWORD, sign_in, user_with_password
from tests.support.world import Practice, Reader, World


def _password_for(app: Flask, provider_id: str) -> str:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        user = session.scalar(sa.select(User).where(User.provider_id == uuid.UUID(provider_id)))
        assert user is not None
        user.password_hash = hash_password(PASSWORD)
        session.commit()
        return user.email


@pytest.fixture
def endo_reader(world: World) -> Reader:
    return world.reader(world.reader_practice("Endo Readers"))


def _page(client: FlaskClient, path: str) -> tuple[int, str]:
    response = client.get(path)
    return response.status_code, response.get_data(as_text=True)


def _count(app: Flask, model: type) -> int:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


# -- the pages' calls to the API with the session cookie ------------------------------------------------


def test_the_session_cookie_reads_the_api_but_a_write_needs_the_csrf_header(
        app: Flask, client: FlaskClient, world: World, riverside: Practice):
    csrf = sign_in(client, user_with_password(world, riverside))
    body = json.dumps({"first_name": "Ana", "last_name": "Cruz", "birth_date": "2011-04-02", "sex": "F",
                       "state": "CA"})
    before = _count(app, Patient)

    listed = client.get("/api/v1/patients")
    no_header = client.post("/api/v1/patients", data=body, content_type="application/json")
    wrong_header = client.post("/api/v1/patients", data=body, content_type="application/json",
                               headers={"X-CSRF-Token": "not-the-token"})

    assert listed.status_code == 200
    assert no_header.status_code == wrong_header.status_code == 403
    assert "X-CSRF-Token" in no_header.get_json()["message"]
    assert _count(app, Patient) == before, "a refused write stores nothing"
    created = client.post("/api/v1/patients", data=body, content_type="application/json",
                          headers={"X-CSRF-Token": csrf})
    assert created.status_code == 201, created.get_json()


def test_an_idle_session_cookie_gets_401_from_the_api(app: Flask, client: FlaskClient, world: World,
                                                     riverside: Practice):
    sign_in(client, user_with_password(world, riverside))
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        session.execute(sa.update(WebSession).values(last_seen_at=utcnow() - timedelta(minutes=16)))
        session.commit()

    response = client.get("/api/v1/patients")

    assert response.status_code == 401
    assert "sign in again" in response.get_json()["message"]


def test_a_bad_or_unknown_session_cookie_is_not_a_login(client: FlaskClient, world: World, riverside: Practice):
    client.set_cookie("referral_session", "forged-value")
    assert client.get("/api/v1/patients").status_code == 401
    client.set_cookie("referral_session", "x" * 500)
    assert client.get("/api/v1/patients").status_code == 401


# -- sign-in is needed, and each page keeps to its role and organization ------------------------------------


@pytest.mark.parametrize("path", ["/referrals/new", "/referrals/01a20000-0000-7000-8000-000000000001",
                                  "/claims/01a20000-0000-7000-8000-000000000002"])
def test_pages_send_a_visitor_without_a_session_to_sign_in(client: FlaskClient, path: str):
    response = client.get(path)
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/login")


def test_only_a_capturing_office_gets_the_new_referral_form(app: Flask, world: World, riverside: Practice,
                                                            endo_reader: Reader):
    office, billing, reader = app.test_client(), app.test_client(), app.test_client()
    sign_in(office, user_with_password(world, riverside))
    sign_in(billing, user_with_password(world, riverside, "billing"))
    sign_in(reader, _password_for(app, endo_reader.provider_id))

    status, page = _page(office, "/referrals/new")
    assert status == 200
    assert 'data-tooth="32"' in page, "permanent teeth"
    assert 'data-tooth="T"' in page, "primary teeth"
    assert "Doe" not in page, "patients are searched, not listed"
    assert f'<option value="{riverside.dentist_provider_id}" selected>' in page, \
        "a hygienist refers under the practice's dentist"
    assert _page(billing, "/referrals/new")[0] == 403
    assert _page(reader, "/referrals/new")[0] == 403


def test_a_case_page_is_404_for_another_practice_and_an_unassigned_reader(
        app: Flask, world: World, riverside: Practice, hillside: Practice, endo_reader: Reader):
    referral_id = new_referral(riverside)
    other_office, other_reader = app.test_client(), app.test_client()
    sign_in(other_office, user_with_password(world, hillside))
    sign_in(other_reader, _password_for(app, endo_reader.provider_id))

    assert _page(other_office, f"/referrals/{referral_id}")[0] == 404
    assert _page(other_reader, f"/referrals/{referral_id}")[0] == 404, "not routed to this reader"
    assert _page(other_office, f"/referrals/{uuid.uuid4()}")[0] == 404
    assert _page(other_office, "/referrals/not-a-uuid")[0] == 404


def test_the_office_case_page_offers_upload_and_send_while_a_draft(
        client: FlaskClient, world: World, riverside: Practice):
    referral_id = new_referral(riverside)
    sign_in(client, user_with_password(world, riverside))

    status, page = _page(client, f"/referrals/{referral_id}")

    assert status == 200
    assert f'data-url="/api/v1/referrals/{referral_id}/images"' in page
    assert f'data-url="/api/v1/referrals/{referral_id}/submit"' in page
    assert "Still needed before sending" in page
    assert "Accept case" not in page, "only the assigned reader answers a case"


def test_the_reader_sees_overdue_cases_marked_and_can_accept_or_decline(
        app: Flask, client: FlaskClient, world: World, riverside: Practice, endo_reader: Reader):
    late_id, on_time_id = ready_referral(riverside), ready_referral(riverside)
    submit(riverside, late_id)
    submit(riverside, on_time_id)
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        session.execute(sa.update(Referral).where(Referral.id == uuid.UUID(late_id))
                        .values(due_at=utcnow() - timedelta(hours=2)))
        session.commit()
    sign_in(client, _password_for(app, endo_reader.provider_id))

    status, inbox = _page(client, "/")
    case_status, case = _page(client, f"/referrals/{late_id}")

    assert status == 200
    assert inbox.count('class="overdue"') == 1
    assert "1 overdue" in inbox
    assert inbox.index(late_id) < inbox.index(on_time_id), "soonest due first"
    assert case_status == 200
    assert "Accept case" in case
    assert f'data-url="/api/v1/referrals/{late_id}/decline"' in case
    assert "data-viewer" in case


def test_billing_pages_list_claims_by_status_and_show_lines_with_explanations(
        app: Flask, world: World, riverside: Practice, hillside: Practice, endo_reader: Reader):
    referral_id = signed_case(world, riverside, endo_reader)
    claim = riverside.billing.get(f"/api/v1/referrals/{referral_id}/claims").get_json()["claims"][0]
    clerk, outsider = app.test_client(), app.test_client()
    sign_in(clerk, user_with_password(world, riverside, "billing"))
    sign_in(outsider, user_with_password(world, hillside, "billing"))

    status, listing = _page(clerk, "/")
    _, filtered_out = _page(clerk, "/?status=ready" if claim["status"] == "hold" else "/?status=hold")
    claim_status, claim_page = _page(clerk, f"/claims/{claim['id']}")

    assert status == 200
    assert f"/claims/{claim['id']}" in listing
    assert "D0707" in listing
    assert f"/claims/{claim['id']}" not in filtered_out
    assert claim_status == 200
    for line in claim["lines"]:
        assert line["code"] in claim_page
        assert line["explanation"].replace("'", "&#39;") in claim_page
    assert f'data-url="/api/v1/claims/{claim["id"]}/x12"' in claim_page
    assert _page(outsider, f"/claims/{claim['id']}")[0] == 404
    assert _page(outsider, "/")[1].count("/claims/") == 0


def test_a_deleted_patient_and_their_images_are_not_shown(client: FlaskClient, world: World, riverside: Practice):
    referral_id = ready_referral(riverside)
    assert riverside.staff.post(f"/api/v1/referrals/{referral_id}/cancel", {"reason": "moved"}).status_code == 200
    assert delete_patient(riverside.org_admin, riverside.patient_id).status_code == 204
    sign_in(client, user_with_password(world, riverside))

    _, listing = _page(client, "/")
    status, case = _page(client, f"/referrals/{referral_id}")

    assert "Patient record deleted" in listing
    assert status == 200
    assert "Patient record deleted" in case
    assert "Doe" not in listing + case
    assert "/thumbnail" not in case, "deleted images are not offered"
    assert "/preview" not in case


def test_the_viewer_says_when_an_image_has_no_preview_instead_of_showing_an_empty_picture(
        app: Flask, client: FlaskClient, world: World, riverside: Practice, endo_reader: Reader):
    referral_id = ready_referral(riverside)
    shown = riverside.staff.get(f"/api/v1/referrals/{referral_id}/images").get_json()["items"][0]
    legacy = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes(kvp=60.0)).get_json()
    assert submit(riverside, referral_id).status_code == 200
    with app.app_context(), app.extensions["referral.engine"].begin() as conn:
        # As for an image stored before previews existed; a plain UPDATE gets past the ORM's immutability guard.
        conn.execute(sa.update(Image.__table__).where(Image.__table__.c.id == uuid.UUID(legacy["id"]))
                     .values(preview_key=None, thumbnail_key=None))
    sign_in(client, user_with_password(world, riverside))

    status, case = _page(client, f"/referrals/{referral_id}")

    assert status == 200
    assert f"/api/v1/images/{shown['id']}/preview" in case
    assert f"/api/v1/images/{legacy['id']}/preview" not in case
    assert f"/api/v1/images/{legacy['id']}/thumbnail" not in case
    assert 'data-preview-status="unavailable"' in case
    assert "1 more image: preview not available; download the original to view it." in case
