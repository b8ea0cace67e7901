"""Practice set-up over the API: a practice's details, providers, users, password links, API tokens
(expiry and revocation) and the fee schedule as CSV. Every refusal leaves the data as it was."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask

from referral.db import utcnow
from referral.models import ApiToken, AuditEvent, FeeScheduleEntry, Organization, PasswordLink, Provider, User
from tests.support.api import new_referral
from tests.support.world import Client, Practice, World, new_npi, provider_body


def _row(app: Flask, model: Any, row_id: str) -> Any:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        row = session.get(model, uuid.UUID(row_id))
        session.expunge_all()
        return row


def _snapshot(app: Flask, model: Any, row_id: str) -> dict[str, Any]:
    row = _row(app, model, row_id)
    return {c.name: getattr(row, c.key) for c in sa.inspect(model).columns}


def _count(app: Flask, model: Any, *where: Any) -> int:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(model).where(*where)) or 0)


def _set(app: Flask, model: Any, row_id: str, **values: Any) -> None:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        session.execute(sa.update(model).where(model.id == uuid.UUID(row_id)).values(**values))
        session.commit()


def _bad_check_digit() -> str:
    good = new_npi()
    return good[:9] + str((int(good[9]) + 1) % 10)


# -- the practice ------------------------------------------------------------------------------------------


def test_the_org_admin_edits_the_practice_and_new_referrals_start_at_its_place_of_service(
        app: Flask, riverside: Practice):
    body = {"name": "Riverside Family & School Dental", "tax_id": "98-7654321", "phone": "916-555-0123",
            "address": {"line1": "200 K Street", "line2": "Suite 5", "city": "Sacramento", "state": "CA",
                        "zip": "95814-2903"},
            "time_zone": "America/Los_Angeles", "default_place_of_service": "03"}
    response = riverside.org_admin.patch(f"/api/v1/organizations/{riverside.id}", body)

    assert response.status_code == 200, response.get_json()
    org = response.get_json()
    assert org["name"] == "Riverside Family & School Dental"
    assert org["tax_id"] == "987654321"
    assert org["address"] == {"line1": "200 K Street", "line2": "Suite 5", "city": "Sacramento", "state": "CA",
                              "zip": "958142903"}
    assert org["default_place_of_service"] == "03"
    referral_id = new_referral(riverside)
    assert riverside.staff.get(f"/api/v1/referrals/{referral_id}").get_json()["place_of_service"] == "03"
    assert _count(app, AuditEvent, AuditEvent.action == "organization.update") == 1


def test_bad_practice_changes_are_refused_and_change_nothing(app: Flask, riverside: Practice, hillside: Practice):
    before = _snapshot(app, Organization, riverside.id)
    address = {"line1": "1 Main St", "city": "Sacramento", "state": "CA"}
    refusals = [
        ({"address": {**address, "zip": "95814-0000"}}, 422, "ZIP+4"),
        ({"address": {**address, "zip": "00000"}}, 422, "ZIP"),
        ({"address": {**address, "zip": "9581"}}, 422, "zip"),
        ({"npi": _bad_check_digit()}, 422, "npi"),
        ({"tax_id": "12-34"}, 422, "tax"),
        ({"default_place_of_service": "02"}, 422, "place"),
        ({"time_zone": "Mars/Olympus"}, 422, "zone"),
        ({}, 422, "at least one"),
        ({"npi": hillside.npi}, 409, "NPI"),
    ]
    for body, status, words in refusals:
        response = riverside.org_admin.patch(f"/api/v1/organizations/{riverside.id}", body)
        assert response.status_code == status, (body, response.get_json())
        assert words.lower() in str(response.get_json()).lower(), (body, response.get_json())
    for client, status in ((riverside.staff, 403), (riverside.billing, 403), (hillside.org_admin, 404)):
        assert client.patch(f"/api/v1/organizations/{riverside.id}", {"name": "Taken over"}).status_code == status
    assert _snapshot(app, Organization, riverside.id) == before


def test_the_platform_admin_edits_any_practice(world: World, riverside: Practice):
    response = world.admin.patch(f"/api/v1/organizations/{riverside.id}", {"name": "Renamed by the platform"})
    assert response.status_code == 200
    assert response.get_json()["name"] == "Renamed by the platform"


# -- providers ------------------------------------------------------------------------------------------------


def test_the_org_admin_edits_a_provider(app: Flask, riverside: Practice):
    npi = new_npi()
    response = riverside.org_admin.patch(f"/api/v1/providers/{riverside.dentist_provider_id}", {
        "npi": npi, "taxonomy": "1223P0221X", "specialty": "pediatric", "license_states": ["NV", "CA", "CA"],
        "accepting_referrals": False, "credentials": None})

    assert response.status_code == 200, response.get_json()
    provider = response.get_json()
    assert (provider["npi"], provider["taxonomy"], provider["specialty"]) == (npi, "1223P0221X", "pediatric")
    assert provider["license_states"] == ["CA", "NV"]
    assert provider["accepting_referrals"] is False
    assert provider["credentials"] is None
    assert _count(app, AuditEvent, AuditEvent.action == "provider.update") == 1


def test_bad_provider_changes_are_refused_and_change_nothing(app: Flask, riverside: Practice, hillside: Practice):
    path = f"/api/v1/providers/{riverside.dentist_provider_id}"
    before = _snapshot(app, Provider, riverside.dentist_provider_id)
    bad_check_digit = _bad_check_digit()
    hygienist_npi = riverside.staff.get(f"/api/v1/organizations/{riverside.id}/providers").get_json()["items"]
    taken = next(p["npi"] for p in hygienist_npi if p["id"] == riverside.hygienist_provider_id)
    for body, status in (({"npi": bad_check_digit}, 422), ({"taxonomy": "12345"}, 422),
                         ({"specialty": "astrology"}, 422), ({"license_states": ["ZZ"]}, 422), ({}, 422),
                         ({"npi": taken}, 409)):
        response = riverside.org_admin.patch(path, body)
        assert response.status_code == status, (body, response.get_json())
    assert riverside.staff.patch(path, {"accepting_referrals": False}).status_code == 403
    assert hillside.org_admin.patch(path, {"accepting_referrals": False}).status_code == 404
    assert riverside.org_admin.patch(f"/api/v1/providers/{uuid.uuid4()}", {"first_name": "X"}).status_code == 404
    assert _snapshot(app, Provider, riverside.dentist_provider_id) == before


# -- users -------------------------------------------------------------------------------------------------


def test_the_org_admin_lists_and_invites_users(app: Flask, riverside: Practice, hillside: Practice):
    listed = riverside.org_admin.get(f"/api/v1/organizations/{riverside.id}/users")
    assert listed.status_code == 200
    emails = {u["email"] for u in listed.get_json()["items"]}
    assert "dentist@riverside-family-dental.example.com" in emails
    assert not any("hillside" in e for e in emails)
    assert all("password_hash" not in u and "token" not in u for u in listed.get_json()["items"])

    invited = riverside.org_admin.post(f"/api/v1/organizations/{riverside.id}/users", {
        "email": "New.Hygienist@Riverside.example.com", "role": "staff",
        "provider_id": riverside.hygienist_provider_id, "invite": True, "issue_token": False})

    assert invited.status_code == 201, invited.get_json()
    body = invited.get_json()
    assert body["email"] == "new.hygienist@riverside.example.com"
    assert body["token"] is None
    assert body["password_set"] is False
    assert body["set_password_url"].startswith("http://127.0.0.1:5000/set-password/")
    token = body["set_password_url"].rsplit("/", 1)[1]
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        link = session.scalar(sa.select(PasswordLink).where(PasswordLink.user_id == uuid.UUID(body["id"])))
        assert link is not None
        assert link.purpose == "invite"
        assert token not in link.token_hash  # only the hash is kept
        assert timedelta(hours=71) < link.expires_at - utcnow() <= timedelta(hours=72)
    assert _count(app, ApiToken, ApiToken.user_id == uuid.UUID(body["id"])) == 0


def test_users_are_refused_to_outsiders_and_members(riverside: Practice, hillside: Practice):
    path = f"/api/v1/organizations/{riverside.id}/users"
    assert hillside.org_admin.get(path).status_code == 404
    assert riverside.staff.get(path).status_code == 403
    assert riverside.billing.get(path).status_code == 403


def test_bad_invitations_store_nothing(app: Flask, world: World, riverside: Practice, hillside: Practice):
    path = f"/api/v1/organizations/{riverside.id}/users"
    before = _count(app, User), _count(app, PasswordLink), _count(app, ApiToken)
    for body, status in (
        ({"email": "dentist@riverside-family-dental.example.com", "role": "staff", "invite": True}, 409),
        ({"email": "d2@riverside.example.com", "role": "dentist", "invite": True}, 422),
        ({"email": "d3@riverside.example.com", "role": "dentist", "invite": True,
          "provider_id": hillside.dentist_provider_id}, 422),
        ({"email": "a@riverside.example.com", "role": "admin", "invite": True}, 422),
        ({"email": "p@riverside.example.com", "role": "staff", "invite": True,
          "password": "a long enough password"}, 422),
        ({"email": "not-an-email", "role": "staff", "invite": True}, 422),
    ):
        response = riverside.org_admin.post(path, body)
        assert response.status_code == status, (body, response.get_json())
    assert hillside.org_admin.post(path, {"email": "x@hillside.example.com", "role": "staff"}).status_code == 404
    assert riverside.staff.post(path, {"email": "y@riverside.example.com", "role": "staff"}).status_code == 403
    assert (_count(app, User), _count(app, PasswordLink), _count(app, ApiToken)) == before


def test_the_org_admin_changes_a_role_and_provider_link_and_deactivates(
        app: Flask, world: World, riverside: Practice):
    staff_id = riverside.users["staff"]
    path = f"/api/v1/users/{staff_id}"
    # A provider with no login yet (a provider who has one gets another reading login only from a platform admin).
    newcomer = riverside.org_admin.post(f"/api/v1/organizations/{riverside.id}/providers",
                                        provider_body(first_name="Ana", last_name="Ruiz")).get_json()["id"]
    response = riverside.org_admin.patch(path, {"role": "dentist", "provider_id": newcomer})
    assert response.status_code == 200, response.get_json()
    assert (response.get_json()["role"], response.get_json()["provider_id"]) == ("dentist", newcomer)
    assert riverside.org_admin.get(path).get_json()["role"] == "dentist"

    assert riverside.staff.get("/api/v1/referrals").status_code == 200
    deactivated = riverside.org_admin.patch(path, {"active": False})
    assert deactivated.status_code == 200
    assert deactivated.get_json()["active"] is False
    assert riverside.staff.get("/api/v1/referrals").status_code == 401
    assert riverside.org_admin.patch(path, {"active": True}).get_json()["active"] is True
    assert riverside.staff.get("/api/v1/referrals").status_code == 200
    events = _count(app, AuditEvent, AuditEvent.action == "user.update", AuditEvent.object_id == uuid.UUID(staff_id))
    assert events == 3


def test_bad_user_changes_are_refused_and_change_nothing(app: Flask, world: World, riverside: Practice,
                                                         hillside: Practice):
    staff_id, admin_id = riverside.users["staff"], riverside.users["org_admin"]
    before = _snapshot(app, User, staff_id), _snapshot(app, User, admin_id)
    for user_id, body, status in (
        (staff_id, {"role": "dentist", "provider_id": None}, 422),
        (staff_id, {"provider_id": hillside.dentist_provider_id}, 422),
        (staff_id, {"role": "admin"}, 422),
        (staff_id, {}, 422),
        (admin_id, {"role": "staff"}, 403),
        (admin_id, {"active": False}, 403),
    ):
        response = riverside.org_admin.patch(f"/api/v1/users/{user_id}", body)
        assert response.status_code == status, (body, response.get_json())
    assert riverside.staff.patch(f"/api/v1/users/{staff_id}", {"active": False}).status_code == 403
    assert hillside.org_admin.patch(f"/api/v1/users/{staff_id}", {"active": False}).status_code == 404
    assert hillside.org_admin.get(f"/api/v1/users/{staff_id}").status_code == 404
    assert riverside.org_admin.patch(f"/api/v1/users/{world.admin_id}", {"active": False}).status_code == 404
    assert riverside.org_admin.patch(f"/api/v1/users/{uuid.uuid4()}", {"active": False}).status_code == 404
    assert (_snapshot(app, User, staff_id), _snapshot(app, User, admin_id)) == before


def test_a_password_reset_ends_the_old_password_and_returns_a_link(app: Flask, world: World, riverside: Practice,
                                                                   hillside: Practice):
    staff_id = riverside.users["staff"]
    _set(app, User, staff_id, password_hash="$argon2id$placeholder")
    assert hillside.org_admin.post(f"/api/v1/users/{staff_id}/password-link").status_code == 404
    assert riverside.staff.post(f"/api/v1/users/{staff_id}/password-link").status_code == 403
    assert _row(app, User, staff_id).password_hash == "$argon2id$placeholder"

    first = riverside.org_admin.post(f"/api/v1/users/{staff_id}/password-link")
    second = world.admin.post(f"/api/v1/users/{staff_id}/password-link")

    assert first.status_code == second.status_code == 201, first.get_json()
    assert second.get_json()["user_id"] == staff_id
    assert "/set-password/" in second.get_json()["set_password_url"]
    assert _row(app, User, staff_id).password_hash is None
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        links = list(session.scalars(sa.select(PasswordLink).where(PasswordLink.user_id == uuid.UUID(staff_id))
                                     .order_by(PasswordLink.created_at)))
        assert [link.voided_at is not None for link in links] == [True, False]  # the newer link replaces the older

    _set(app, User, staff_id, active=False)
    assert riverside.org_admin.post(f"/api/v1/users/{staff_id}/password-link").status_code == 409


# -- API tokens ----------------------------------------------------------------------------------------------


def _tokens(client: Client, user_id: str) -> Any:
    return client.get(f"/api/v1/users/{user_id}/tokens")


def test_tokens_expire_after_api_token_days(app: Flask, riverside: Practice):
    own = riverside.staff.get("/api/v1/tokens")
    assert own.status_code == 200
    [token] = own.get_json()["items"]
    assert token["status"] == "active"
    assert token["prefix"].startswith("rfl_")
    assert "token_hash" not in token
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        row = session.get(ApiToken, uuid.UUID(token["id"]))
        assert row is not None
        assert row.expires_at is not None
        assert timedelta(days=89) < row.expires_at - utcnow() <= timedelta(days=90)

    _set(app, ApiToken, token["id"], expires_at=utcnow() - timedelta(seconds=1))

    response = riverside.staff.get("/api/v1/referrals")
    assert response.status_code == 401
    assert "expired" in response.get_json()["message"]
    assert _tokens(riverside.org_admin, riverside.users["staff"]).get_json()["items"][0]["status"] == "expired"


def test_the_token_lifetime_follows_the_setting(app: Flask, world: World, riverside: Practice):
    import dataclasses

    app.extensions["referral.settings"] = dataclasses.replace(app.extensions["referral.settings"], api_token_days=7)
    created = world.admin.post(f"/api/v1/organizations/{riverside.id}/users",
                               {"email": "short-lived@riverside.example.com", "role": "billing"})
    assert created.status_code == 201
    [token] = _tokens(world.admin, created.get_json()["id"]).get_json()["items"]
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        row = session.get(ApiToken, uuid.UUID(token["id"]))
        assert row is not None
        assert row.expires_at is not None
        assert timedelta(days=6) < row.expires_at - utcnow() <= timedelta(days=7)


def test_who_sees_a_users_tokens(world: World, riverside: Practice, hillside: Practice):
    staff_id = riverside.users["staff"]
    assert _tokens(riverside.staff, staff_id).status_code == 200  # their own
    assert _tokens(riverside.org_admin, staff_id).status_code == 200
    assert _tokens(world.admin, staff_id).status_code == 200
    assert _tokens(riverside.dentist, staff_id).status_code == 404  # a colleague
    assert _tokens(hillside.org_admin, staff_id).status_code == 404
    assert _tokens(riverside.org_admin, str(uuid.uuid4())).status_code == 404


def test_the_owner_revokes_their_token_and_it_stops_working_at_once(app: Flask, riverside: Practice):
    [token] = riverside.billing.get("/api/v1/tokens").get_json()["items"]
    response = riverside.billing.delete(f"/api/v1/tokens/{token['id']}")
    assert response.status_code == 200
    assert response.get_json()["status"] == "revoked"
    assert riverside.billing.get("/api/v1/claims").status_code == 401
    assert _tokens(riverside.org_admin, riverside.users["billing"]).get_json()["items"][0]["revoked_at"]
    assert riverside.org_admin.delete(f"/api/v1/tokens/{token['id']}").status_code == 200  # again: no change
    assert _count(app, AuditEvent, AuditEvent.action == "token.revoke") == 1


def test_admins_revoke_members_tokens_and_outsiders_cannot(app: Flask, world: World, riverside: Practice,
                                                           hillside: Practice):
    [staff_token] = _tokens(riverside.org_admin, riverside.users["staff"]).get_json()["items"]
    [dentist_token] = _tokens(world.admin, riverside.users["dentist"]).get_json()["items"]
    for client in (hillside.org_admin, riverside.billing, riverside.dentist):
        assert client.delete(f"/api/v1/tokens/{staff_token['id']}").status_code == 404
    assert riverside.org_admin.delete(f"/api/v1/tokens/{uuid.uuid4()}").status_code == 404
    assert riverside.staff.get("/api/v1/referrals").status_code == 200
    assert _count(app, ApiToken, ApiToken.revoked_at.is_not(None)) == 0

    assert riverside.org_admin.delete(f"/api/v1/tokens/{staff_token['id']}").status_code == 200
    assert world.admin.delete(f"/api/v1/tokens/{dentist_token['id']}").status_code == 200
    assert riverside.staff.get("/api/v1/referrals").status_code == 401
    assert riverside.dentist.get("/api/v1/referrals").status_code == 401
    assert riverside.org_admin.get("/api/v1/referrals").status_code == 200


# -- fee schedule as CSV -----------------------------------------------------------------------------------


def _put_csv(client: Client, practice: Practice, text: str, content_type: str = "text/csv") -> Any:
    return client.client.put(f"/api/v1/organizations/{practice.id}/fee-schedule.csv", data=text.encode(),
                             content_type=content_type, headers={"Authorization": f"Bearer {client.token}"})


def test_the_fee_schedule_round_trips_as_csv(riverside: Practice):
    text = "\ufeffCode,Fee\r\nD0140,65\nd0350,$45.50\n\nD9996,\"1,030.00\"\n"
    imported = _put_csv(riverside.org_admin, riverside, text)
    assert imported.status_code == 200, imported.get_json()
    assert imported.get_json() == {"D0140": "65.00", "D0350": "45.50", "D9996": "1030.00"}

    exported = riverside.billing.get(f"/api/v1/organizations/{riverside.id}/fee-schedule.csv")
    assert exported.status_code == 200
    assert exported.mimetype == "text/csv"
    assert "attachment" in exported.headers["Content-Disposition"]
    assert exported.get_data(as_text=True) == "code,fee\r\nD0140,65.00\r\nD0350,45.50\r\nD9996,1030.00\r\n"
    assert _put_csv(riverside.billing, riverside, exported.get_data(as_text=True)).status_code == 200


def test_a_bad_fee_file_changes_nothing(app: Flask, riverside: Practice, hillside: Practice):
    assert riverside.org_admin.put(f"/api/v1/organizations/{riverside.id}/fee-schedule",
                                   {"D0140": 65}).status_code == 200
    for text in ("code,fee\nD0140,70\nX0140,10\n", "D0140,-1\n", "D0140,ten\n", "D0140,1.005\n", "D0140\n",
                 "D0140,70\nD0140,71\n"):
        response = _put_csv(riverside.org_admin, riverside, text)
        assert response.status_code == 422, text
        assert response.get_json()["errors"]["csv"][0].startswith("Line ")
    assert _put_csv(riverside.org_admin, riverside, "D0140,70\n", "application/json").status_code == 415
    assert _put_csv(riverside.org_admin, riverside, "D0140,70\n" * 20_000).status_code == 413
    assert _put_csv(riverside.staff, riverside, "D0140,70\n").status_code == 403
    assert _put_csv(hillside.org_admin, riverside, "D0140,70\n").status_code == 404
    assert hillside.org_admin.get(f"/api/v1/organizations/{riverside.id}/fee-schedule.csv").status_code == 404
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        fees = {row.code: str(row.amount) for row in session.scalars(
            sa.select(FeeScheduleEntry).where(FeeScheduleEntry.organization_id == uuid.UUID(riverside.id)))}
    assert fees == {"D0140": "65.00"}

