"""Every new login, role change and provider-link change in a practice is audited and told to the practice's OTHER
org admins (notices; email when on), so that no admin can quietly give a login (their own second one included)
more than it had (issue 20, item 6; docs/security.md, What an org admin can do)."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import pytest
from flask import Flask

from referral.services import mail
from tests.support.world import Client, Practice, World, provider_body


def _notices(client: Client) -> list[dict[str, Any]]:
    response = client.get("/api/v1/me/notices?limit=100")
    assert response.status_code == 200, response.get_json()
    return list(response.get_json()["items"])


@pytest.fixture
def second_admin(world: World, riverside: Practice) -> tuple[Client, str]:
    created = world.admin.post(f"/api/v1/organizations/{riverside.id}/users",
                               {"email": "second-admin@riverside.example.com", "role": "org_admin"})
    assert created.status_code == 201, created.get_json()
    return world.as_token(created.get_json()["token"]), str(created.get_json()["id"])


def test_a_new_admin_made_by_the_platform_admin_is_told_to_the_practices_admin(
        riverside: Practice, second_admin: tuple[Client, str]) -> None:
    _, admin_id = second_admin
    told = [n for n in _notices(riverside.org_admin) if n["subject_user_id"] == admin_id]
    assert [(n["kind"], n["details"]["role"]) for n in told] == [("user_created", "org_admin")]


def test_a_login_made_by_one_admin_is_told_to_the_other_not_to_the_maker(
        riverside: Practice, hillside: Practice, second_admin: tuple[Client, str]) -> None:
    other, _ = second_admin
    before = len(_notices(riverside.org_admin))
    created = riverside.org_admin.post(f"/api/v1/organizations/{riverside.id}/users",
                                       {"email": "new-staff@riverside.example.com", "role": "staff"})
    assert created.status_code == 201, created.get_json()
    new_id = created.get_json()["id"]

    told = [n for n in _notices(other) if n["subject_user_id"] == new_id]
    assert [(n["kind"], n["details"]["role"]) for n in told] == [("user_created", "staff")]
    assert told[0]["actor_user_id"] == riverside.users["org_admin"]
    assert len(_notices(riverside.org_admin)) == before
    assert not [n for n in _notices(hillside.org_admin) if n["subject_user_id"] == new_id]


def test_role_and_provider_link_changes_are_audited_and_told_to_the_other_admins(
        world: World, riverside: Practice, second_admin: tuple[Client, str]) -> None:
    other, _ = second_admin
    staff_id = riverside.users["staff"]
    changed = riverside.org_admin.patch(f"/api/v1/users/{staff_id}", {"role": "billing", "provider_id": None})
    assert changed.status_code == 200, changed.get_json()
    provider = riverside.org_admin.post(f"/api/v1/organizations/{riverside.id}/providers",
                                        provider_body("general", last_name="Newhire"))
    assert provider.status_code == 201, provider.get_json()
    provider_id = provider.get_json()["id"]
    linked = riverside.org_admin.patch(f"/api/v1/users/{staff_id}", {"role": "dentist", "provider_id": provider_id})
    assert linked.status_code == 200, linked.get_json()

    told = [n for n in _notices(other) if n["subject_user_id"] == staff_id]
    assert [n["kind"] for n in told] == ["access_change", "access_change"]
    newest, first = told
    assert first["details"]["changes"]["role"] == {"from": "staff", "to": "billing"}
    assert first["details"]["changes"]["provider_id"]["to"] is None
    assert newest["details"]["changes"]["role"] == {"from": "billing", "to": "dentist"}
    assert newest["details"]["changes"]["provider_id"] == {"from": None, "to": provider_id}
    assert all(n["actor_user_id"] == riverside.users["org_admin"] for n in told)

    audited = other.get(f"/api/v1/audit-events?user_id={riverside.users['org_admin']}&limit=100").get_json()["items"]
    updates = [row for row in audited if row["action"] == "user.update" and row["object_id"] == staff_id]
    assert len(updates) == 2
    assert not [n for n in _notices(riverside.org_admin) if n["subject_user_id"] == staff_id]


def test_a_change_that_leaves_role_and_link_alone_is_not_an_access_notice(
        riverside: Practice, second_admin: tuple[Client, str]) -> None:
    other, _ = second_admin
    before = len(_notices(other))
    assert riverside.org_admin.patch(f"/api/v1/users/{riverside.users['billing']}",
                                     {"active": False}).status_code == 200
    assert riverside.org_admin.patch(f"/api/v1/users/{riverside.users['billing']}",
                                     {"role": "billing"}).status_code == 200
    assert len(_notices(other)) == before


def test_a_second_reading_login_for_a_provider_stays_the_platform_admins(
        world: World, riverside: Practice, second_admin: tuple[Client, str]) -> None:
    """The org admin's way to a reader's cases stays shut (409, nothing made); the platform admin may do it, and
    the practice's admins are told."""
    other, _ = second_admin
    body = {"email": "second-login@riverside.example.com", "role": "dentist",
            "provider_id": riverside.dentist_provider_id}
    refused = riverside.org_admin.post(f"/api/v1/organizations/{riverside.id}/users", body)
    assert refused.status_code == 409, refused.get_json()
    made = world.admin.post(f"/api/v1/organizations/{riverside.id}/users", body)
    assert made.status_code == 201, made.get_json()
    for admin in (riverside.org_admin, other):
        told = [n for n in _notices(admin) if n["subject_user_id"] == made.get_json()["id"]]
        assert len(told) == 1
        assert told[0]["details"]["provider_other_logins"] == [riverside.users["dentist"]]


def test_access_change_alerts_are_emailed_without_names(app: Flask, riverside: Practice,
                                                        second_admin: tuple[Client, str]) -> None:
    assert riverside.org_admin.patch(f"/api/v1/users/{riverside.users['staff']}",
                                     {"role": "billing", "provider_id": None}).status_code == 200
    sent: list[EmailMessage] = []
    with app.app_context():
        mail.notify_notices(app.extensions["referral.sessionmaker"], smtp_url="smtp://127.0.0.1:2525",
                            base_url="https://referrals.example.com",
                            send=lambda _target, messages: sent.extend(messages))
    changes = [m for m in sent if "role or provider link" in m.get_content()]
    assert {str(m["To"]) for m in changes} == {"second-admin@riverside.example.com"}
    text = changes[0].get_content()
    assert "https://referrals.example.com/notices" in text
    assert "staff@" not in text
    assert riverside.users["staff"] not in text


def test_only_org_admins_have_notices(riverside: Practice) -> None:
    for client in (riverside.staff, riverside.dentist, riverside.billing):
        assert client.get("/api/v1/me/notices").status_code == 403
        assert client.post("/api/v1/me/notices/read").status_code == 403
    assert riverside.org_admin.get("/api/v1/me/notices?unread=maybe").status_code == 422
