from __future__ import annotations

import sqlalchemy as sa
from flask import Flask

from referral.models import ApiToken, Organization
from tests.support.world import Practice, World, new_npi, organization_body, provider_body


def test_the_platform_admin_registers_a_practice(world: World):
    response = world.admin.post("/api/v1/organizations", organization_body(tax_id="98-7654321"))

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["tax_id"] == "987654321"
    assert body["address"]["state"] == "CA"
    assert world.admin.get(f"/api/v1/organizations/{body['id']}").get_json()["name"] == body["name"]


def test_an_npi_with_a_wrong_check_digit_is_refused(app: Flask, world: World):
    good = new_npi()
    bad = good[:9] + str((int(good[9]) + 1) % 10)
    for npi in (bad, "123456789", "12345678901", "abcdefghij"):
        response = world.admin.post("/api/v1/organizations", organization_body(npi=npi))
        assert response.status_code == 422, npi
        assert "npi" in response.get_json()["errors"]["json"]
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Organization)) == 0


def test_the_documented_example_npi_passes_the_check(world: World):
    # 1234567893 is the example used in CMS's NPI check-digit description
    assert world.admin.post("/api/v1/organizations", organization_body(npi="1234567893")).status_code == 201


def test_bad_organization_fields_are_refused(world: World):
    for overrides in ({"tax_id": "12-345"}, {"address": {"line1": "x", "city": "y", "state": "ZZ", "zip": "95814"}},
                      {"address": {"line1": "x", "city": "y", "state": "CA", "zip": "9581"}},
                      {"name": ""}, {"owner": "someone"}):
        response = world.admin.post("/api/v1/organizations", organization_body(**overrides))
        assert response.status_code == 422, overrides


def test_a_duplicate_organization_npi_is_a_conflict(world: World):
    body = organization_body()
    assert world.admin.post("/api/v1/organizations", body).status_code == 201
    assert world.admin.post("/api/v1/organizations", body).status_code == 409


def test_only_the_platform_admin_registers_practices(riverside: Practice):
    for client in (riverside.org_admin, riverside.staff, riverside.dentist):
        assert client.post("/api/v1/organizations", organization_body()).status_code == 403


def test_providers_are_added_with_valid_npi_taxonomy_and_states(world: World, riverside: Practice):
    path = f"/api/v1/organizations/{riverside.id}/providers"
    ok = riverside.org_admin.post(path, provider_body("endodontics", taxonomy="1223E0200X",
                                                      license_states=["ca", "NV"]))
    assert ok.status_code == 201, ok.get_json()
    assert ok.get_json()["license_states"] == ["CA", "NV"]
    for overrides in ({"taxonomy": "1223E0200"}, {"license_states": ["XX"]}, {"specialty": "dermatology"},
                      {"npi": "1234567890"}):
        response = riverside.org_admin.post(path, provider_body(**overrides))
        assert response.status_code == 422, overrides
    listed = riverside.staff.get(path).get_json()["items"]
    assert len(listed) == 3


def test_a_provider_npi_is_unique_within_the_practice(riverside: Practice):
    path = f"/api/v1/organizations/{riverside.id}/providers"
    body = provider_body()
    assert riverside.org_admin.post(path, body).status_code == 201
    assert riverside.org_admin.post(path, body).status_code == 409


def test_an_org_admin_cannot_touch_another_practice(riverside: Practice, hillside: Practice):
    assert riverside.org_admin.post(f"/api/v1/organizations/{hillside.id}/providers",
                                    provider_body()).status_code == 404
    assert riverside.org_admin.post(f"/api/v1/organizations/{hillside.id}/users",
                                    {"email": "x@example.com", "role": "staff"}).status_code == 404
    assert riverside.staff.get(f"/api/v1/organizations/{hillside.id}").status_code == 404
    assert riverside.staff.get(f"/api/v1/organizations/{hillside.id}/providers").status_code == 404


def test_users_get_a_working_token_that_is_stored_only_as_a_hash(app: Flask, world: World, riverside: Practice):
    created = riverside.org_admin.post(f"/api/v1/organizations/{riverside.id}/users",
                                       {"email": "Front.Desk@Riverside.example.com", "role": "staff",
                                        "provider_id": riverside.hygienist_provider_id})
    assert created.status_code == 201, created.get_json()
    token = created.get_json()["token"]
    assert created.get_json()["email"] == "front.desk@riverside.example.com"
    assert world.as_token(token).get("/api/v1/referrals").status_code == 200

    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        stored = [row.token_hash for row in session.scalars(sa.select(ApiToken))]
    assert token not in stored
    assert all(len(h) == 64 for h in stored)


def test_user_creation_checks_role_and_provider(riverside: Practice, hillside: Practice):
    path = f"/api/v1/organizations/{riverside.id}/users"
    assert riverside.org_admin.post(path, {"email": "a@example.com", "role": "admin"}).status_code == 422
    assert riverside.org_admin.post(path, {"email": "b@example.com", "role": "dentist"}).status_code == 422
    assert riverside.org_admin.post(path, {"email": "c@example.com", "role": "staff",
                                           "provider_id": hillside.dentist_provider_id}).status_code == 422
    assert riverside.org_admin.post(path, {"email": "not-an-email", "role": "staff"}).status_code == 422
    assert riverside.staff.post(path, {"email": "d@example.com", "role": "staff"}).status_code == 403


def test_a_duplicate_email_is_a_conflict(riverside: Practice):
    path = f"/api/v1/organizations/{riverside.id}/users"
    assert riverside.org_admin.post(path, {"email": "e@example.com", "role": "billing"}).status_code == 201
    assert riverside.org_admin.post(path, {"email": "E@example.com", "role": "billing"}).status_code == 409
