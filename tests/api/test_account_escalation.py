"""What an org admin can do with logins, and what it cannot: an email used in another practice gets the same
neutral answer however it is used and nothing is made or changed; a provider who already has a login gets another
reading login only from a platform admin; every change is in the practice's audit trail."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from flask import Flask

from referral.models import ApiToken, AuditEvent, PasswordLink, User
from tests.support.world import Practice, World, provider_body

OTHER_EMAIL = "dentist@hillside-dental-group.example.com"


def _count(app: Flask, model: Any, *where: Any) -> int:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(model).where(*where)) or 0)


def _user(app: Flask, user_id: str) -> dict[str, Any]:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        row = session.get(User, uuid.UUID(user_id))
        assert row is not None
        return {c.name: getattr(row, c.key) for c in sa.inspect(User).columns}


def _audit(app: Flask, action: str) -> list[AuditEvent]:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        rows = list(session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)))
        session.expunge_all()
        return rows


def _stored(app: Flask) -> tuple[int, int, int]:
    return _count(app, User), _count(app, ApiToken), _count(app, PasswordLink)


def test_an_email_used_in_another_practice_gets_a_neutral_answer_and_nothing_is_made(
        app: Flask, world: World, riverside: Practice, hillside: Practice):
    path = f"/api/v1/organizations/{riverside.id}/users"
    other_id = hillside.users["dentist"]
    before_other, before = _user(app, other_id), _stored(app)

    answers = [riverside.org_admin.post(path, body) for body in (
        {"email": OTHER_EMAIL, "role": "staff"},
        {"email": OTHER_EMAIL.upper(), "role": "billing", "invite": True},
        {"email": "operator@example.com", "role": "staff"},  # a platform admin's address: the same answer
    )]

    for answer in answers:
        assert answer.status_code == 202, answer.get_json()
        body = answer.get_json()
        assert set(body) == {"status", "message"}
        assert "exist" not in body["message"].lower()
        assert "hillside" not in body["message"].lower()
        assert "token" not in body
        assert "id" not in body
    assert answers[0].get_json() == answers[1].get_json() == answers[2].get_json()
    assert _stored(app) == before
    assert _user(app, other_id) == before_other
    assert hillside.dentist.get("/api/v1/referrals").status_code == 200
    listed = riverside.org_admin.get(path).get_json()["items"]
    assert OTHER_EMAIL not in {u["email"] for u in listed}
    rows = _audit(app, "user.create_withheld")
    assert len(rows) == 3
    assert {row.organization_id for row in rows} == {uuid.UUID(riverside.id)}
    assert all(row.object_id is None and "hillside" not in str(row.details).lower() and other_id not in str(row.details)
               for row in rows)


def test_an_email_already_in_the_own_practice_is_still_a_conflict(app: Flask, riverside: Practice):
    path = f"/api/v1/organizations/{riverside.id}/users"
    own_id = riverside.users["billing"]
    before_own, before = _user(app, own_id), _stored(app)
    response = riverside.org_admin.post(path, {"email": "billing@riverside-family-dental.example.com",
                                               "role": "staff"})
    assert response.status_code == 409
    assert "already" in response.get_json()["message"].lower()
    assert (_user(app, own_id), _stored(app)) == (before_own, before)


def test_a_platform_admin_is_told_plainly_that_an_email_is_taken(app: Flask, world: World, riverside: Practice,
                                                                 hillside: Practice):
    before = _stored(app)
    response = world.admin.post(f"/api/v1/organizations/{riverside.id}/users", {"email": OTHER_EMAIL,
                                                                                "role": "staff"})
    assert response.status_code == 409
    assert _stored(app) == before


def test_an_org_admin_cannot_give_a_provider_with_a_login_a_second_reading_login(
        app: Flask, world: World, riverside: Practice):
    path = f"/api/v1/organizations/{riverside.id}/users"
    staff_id, dentist_id = riverside.users["staff"], riverside.users["dentist"]
    before, staff_before, dentist_before = _stored(app), _user(app, staff_id), _user(app, dentist_id)

    created = riverside.org_admin.post(path, {"email": "second@riverside.example.com", "role": "dentist",
                                              "provider_id": riverside.dentist_provider_id})
    linked = riverside.org_admin.patch(f"/api/v1/users/{staff_id}",
                                       {"role": "dentist", "provider_id": riverside.dentist_provider_id})

    assert created.status_code == 409, created.get_json()
    assert "platform administrator" in created.get_json()["message"]
    assert linked.status_code == 409, linked.get_json()
    assert _stored(app) == before
    assert (_user(app, staff_id), _user(app, dentist_id)) == (staff_before, dentist_before)

    # A staff login linked to that provider reads nothing more, so it is allowed; making it a reader is not.
    staff_login = riverside.org_admin.post(path, {"email": "desk@riverside.example.com", "role": "staff",
                                                  "provider_id": riverside.dentist_provider_id})
    assert staff_login.status_code == 201, staff_login.get_json()
    desk_id = staff_login.get_json()["id"]
    desk_before = _user(app, desk_id)
    promoted = riverside.org_admin.patch(f"/api/v1/users/{desk_id}", {"role": "dentist"})
    assert promoted.status_code == 409, promoted.get_json()
    assert _user(app, desk_id) == desk_before


def test_a_platform_admin_may_link_a_second_login_and_the_audit_row_names_the_first(
        app: Flask, world: World, riverside: Practice):
    dentist_id = riverside.users["dentist"]
    created = world.admin.post(f"/api/v1/organizations/{riverside.id}/users", {
        "email": "locum@riverside.example.com", "role": "dentist", "provider_id": riverside.dentist_provider_id})
    assert created.status_code == 201, created.get_json()
    row = next(r for r in _audit(app, "user.create") if r.object_id == uuid.UUID(created.get_json()["id"]))
    assert row.details["provider_other_logins"] == [dentist_id]
    assert row.details["provider_id"] == riverside.dentist_provider_id

    staff_id = riverside.users["staff"]
    linked = world.admin.patch(f"/api/v1/users/{staff_id}", {"role": "dentist",
                                                            "provider_id": riverside.dentist_provider_id})
    assert linked.status_code == 200, linked.get_json()
    update = [r for r in _audit(app, "user.update") if r.object_id == uuid.UUID(staff_id)][-1]
    assert update.details["changes"]["role"] == {"from": "staff", "to": "dentist"}
    assert update.details["changes"]["provider_id"]["to"] == riverside.dentist_provider_id
    assert dentist_id in update.details["provider_other_logins"]


def test_org_admin_role_and_link_changes_are_audited_in_the_practice(app: Flask, riverside: Practice):
    provider = riverside.org_admin.post(f"/api/v1/organizations/{riverside.id}/providers",
                                        provider_body(first_name="Ana", last_name="Ruiz")).get_json()["id"]
    billing_id = riverside.users["billing"]
    changed = riverside.org_admin.patch(f"/api/v1/users/{billing_id}", {"role": "dentist", "provider_id": provider})
    assert changed.status_code == 200, changed.get_json()
    row = [r for r in _audit(app, "user.update") if r.object_id == uuid.UUID(billing_id)][-1]
    assert row.organization_id == uuid.UUID(riverside.id)
    assert row.actor_user_id == uuid.UUID(riverside.users["org_admin"])
    assert row.details["changes"] == {"role": {"from": "billing", "to": "dentist"},
                                      "provider_id": {"from": None, "to": provider}}
    # The practice's admins read the row through the audit API.
    events = riverside.org_admin.get(f"/api/v1/audit-events?user_id={riverside.users['org_admin']}")
    assert events.status_code == 200, events.get_json()
    assert any(e["action"] == "user.update" and e["object_id"] == billing_id for e in events.get_json()["items"])


def test_the_neutral_answer_is_in_the_openapi_document(client: Any):
    document = client.get("/api/openapi.json").get_json()
    responses = document["paths"]["/api/v1/organizations/{organization_id}/users"]["post"]["responses"]
    assert {"201", "202"} <= set(responses)
