"""A second reading login for a provider, with the provider's own confirmation (issue 20, item 6).

Without ``request_link_confirmation`` an org admin still gets 409. With it, the login is made inactive and
linked to no provider, and a pending request waits for a dentist or specialist login already linked to that
provider: confirming links and activates the new login, refusing changes nothing. Requests expire after seven
days. Every step is audited and told to the practice's other org admins; everyone else gets 404."""

from __future__ import annotations

import uuid
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from referral.db import utcnow
from referral.models import AuditEvent, ProviderLinkRequest, User
from referral.services import mail
from tests.support.api import ready_referral, submit
from tests.support.web import sign_in, user_with_password
from tests.support.world import Client, Practice, World, provider_body

NEW_EMAIL = "second-login@riverside.example.com"


def _session(app: Flask) -> Any:
    return app.extensions["referral.sessionmaker"]()


def _user(app: Flask, user_id: str) -> dict[str, Any]:
    with app.app_context(), _session(app) as session:
        row = session.get(User, uuid.UUID(user_id))
        assert row is not None
        return {c.name: getattr(row, c.key) for c in sa.inspect(User).columns}


def _request_row(app: Flask, request_id: str) -> dict[str, Any]:
    with app.app_context(), _session(app) as session:
        row = session.get(ProviderLinkRequest, uuid.UUID(request_id))
        assert row is not None
        return {c.name: getattr(row, c.key) for c in sa.inspect(ProviderLinkRequest).columns}


def _audit(app: Flask, action: str) -> list[dict[str, Any]]:
    with app.app_context(), _session(app) as session:
        return [{"actor": row.actor_user_id, "object_id": row.object_id, "organization_id": row.organization_id,
                 "details": row.details}
                for row in session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)
                                           .order_by(AuditEvent.at, AuditEvent.id))]


def _notices(client: Client) -> list[dict[str, Any]]:
    response = client.get("/api/v1/me/notices?limit=100")
    assert response.status_code == 200, response.get_json()
    return list(response.get_json()["items"])


def _pending_for(client: Client) -> list[dict[str, Any]]:
    response = client.get("/api/v1/me/link-requests")
    assert response.status_code == 200, response.get_json()
    return list(response.get_json()["items"])


@pytest.fixture
def second_admin(world: World, riverside: Practice) -> Client:
    created = world.admin.post(f"/api/v1/organizations/{riverside.id}/users",
                               {"email": "second-admin@riverside.example.com", "role": "org_admin"})
    assert created.status_code == 201, created.get_json()
    return world.as_token(created.get_json()["token"])


def _ask(practice: Practice, provider_id: str, email: str = NEW_EMAIL, admin: Client | None = None,
         **extra: Any) -> Any:
    body = {"email": email, "role": "dentist", "provider_id": provider_id, "request_link_confirmation": True,
            **extra}
    return (admin or practice.org_admin).post(f"/api/v1/organizations/{practice.id}/users", body)


@pytest.fixture
def pending(riverside: Practice, second_admin: Client) -> dict[str, Any]:
    """An org admin's request for a second dentist login of the practice's dentist provider."""
    response = _ask(riverside, riverside.dentist_provider_id)
    assert response.status_code == 202, response.get_json()
    return dict(response.get_json())


def test_without_the_flag_an_org_admin_still_gets_409_and_nothing_is_made(app: Flask, riverside: Practice) -> None:
    body = {"email": NEW_EMAIL, "role": "dentist", "provider_id": riverside.dentist_provider_id}
    for extra in ({}, {"request_link_confirmation": False}):
        refused = riverside.org_admin.post(f"/api/v1/organizations/{riverside.id}/users", {**body, **extra})
        assert refused.status_code == 409, refused.get_json()
        assert "request_link_confirmation" in refused.get_json()["message"]
    with app.app_context(), _session(app) as session:
        assert session.scalar(sa.select(User).where(User.email == NEW_EMAIL)) is None
        assert session.scalar(sa.select(sa.func.count()).select_from(ProviderLinkRequest)) == 0


def test_with_the_flag_the_login_is_made_inactive_and_unlinked_and_the_provider_is_asked(
        app: Flask, world: World, riverside: Practice, hillside: Practice, second_admin: Client,
        pending: dict[str, Any]) -> None:
    assert pending["status"] == "pending_confirmation"
    assert pending["active"] is False
    assert pending["provider_id"] is None
    assert pending["requested_provider_id"] == riverside.dentist_provider_id
    assert pending["role"] == "dentist"
    assert pending["token"]
    expires = pending["link_request_expires_at"]
    row = _request_row(app, pending["link_request_id"])
    assert row["status"] == "pending"
    assert timedelta(days=6, hours=23) < row["expires_at"] - row["created_at"] <= timedelta(days=7, minutes=1)
    assert expires.startswith(row["expires_at"].isoformat()[:16])
    stored = _user(app, pending["id"])
    assert (stored["active"], stored["provider_id"]) == (False, None)
    # The new login cannot be used yet: not with its token, so not for the provider's cases either.
    assert world.as_token(pending["token"]).get("/api/v1/referrals").status_code == 401

    # Audited: the login made (unlinked, what it waits for) and the request.
    made = [r for r in _audit(app, "user.create") if r["object_id"] == uuid.UUID(pending["id"])]
    assert len(made) == 1
    assert made[0]["details"]["provider_id"] is None
    assert made[0]["details"]["awaiting_provider_id"] == riverside.dentist_provider_id
    asked = _audit(app, "provider_link.request")
    assert [(r["object_id"], r["actor"]) for r in asked] == [(uuid.UUID(pending["link_request_id"]),
                                                             uuid.UUID(riverside.users["org_admin"]))]
    assert asked[0]["details"]["provider_other_logins"] == [riverside.users["dentist"]]
    # The other admin is told (once, of the request), the one who asked is not.
    told = [n for n in _notices(second_admin) if n["subject_user_id"] == pending["id"]]
    assert [n["kind"] for n in told] == ["link_requested"]
    assert told[0]["details"]["link_request_id"] == pending["link_request_id"]
    assert not [n for n in _notices(riverside.org_admin) if n["subject_user_id"] == pending["id"]]

    # The provider's login sees the request; nobody else does.
    [seen] = _pending_for(riverside.dentist)
    assert seen["id"] == pending["link_request_id"]
    assert (seen["user_email"], seen["status"], seen["role"]) == (NEW_EMAIL, "pending", "dentist")
    assert seen["requested_by_user_id"] == riverside.users["org_admin"]
    for other in (riverside.staff, riverside.billing, riverside.org_admin, hillside.dentist, hillside.org_admin):
        assert _pending_for(other) == []
    assert _pending_for(world.admin) == []


def test_the_provider_confirms_and_the_new_login_reads_the_providers_routed_case(
        app: Flask, world: World, riverside: Practice) -> None:
    reader_org = world.reader_practice("Endo Readers")
    reader = world.reader(reader_org)
    admins = [world.admin.post(f"/api/v1/organizations/{reader_org}/users",
                               {"email": f"admin{n}@endo-readers.example.com", "role": "org_admin"}).get_json()
              for n in (1, 2)]
    asker, other_admin = (world.as_token(a["token"]) for a in admins)
    case_id = ready_referral(riverside, target_provider_id=reader.provider_id)
    assert submit(riverside, case_id).get_json()["assigned_provider_id"] == reader.provider_id
    assert reader.client.get(f"/api/v1/referrals/{case_id}").status_code == 200

    asked = asker.post(f"/api/v1/organizations/{reader_org}/users",
                       {"email": "covering@endo-readers.example.com", "role": "specialist",
                        "provider_id": reader.provider_id, "request_link_confirmation": True})
    assert asked.status_code == 202, asked.get_json()
    new_login = world.as_token(asked.get_json()["token"])
    request_id = asked.get_json()["link_request_id"]
    assert new_login.get(f"/api/v1/referrals/{case_id}").status_code == 401

    confirmed = reader.client.post(f"/api/v1/link-requests/{request_id}/confirm")
    assert confirmed.status_code == 200, confirmed.get_json()
    assert confirmed.get_json()["status"] == "confirmed"
    assert confirmed.get_json()["answered_at"]
    stored = _user(app, asked.get_json()["id"])
    assert (stored["active"], str(stored["provider_id"])) == (True, reader.provider_id)
    assert new_login.get(f"/api/v1/referrals/{case_id}").status_code == 200
    row = _request_row(app, request_id)
    assert (row["status"], str(row["answered_by_user_id"])) == ("confirmed", _first_login(app, reader.provider_id))

    [audited] = _audit(app, "provider_link.confirm")
    assert audited["object_id"] == uuid.UUID(request_id)
    assert audited["organization_id"] == uuid.UUID(reader_org)
    linked = [r for r in _audit(app, "user.update") if r["object_id"] == uuid.UUID(asked.get_json()["id"])]
    assert linked[-1]["details"]["changes"]["provider_id"]["to"] == reader.provider_id
    # Both admins are told of the answer (the one who asked included: they did not answer).
    for admin in (asker, other_admin):
        kinds = [n["kind"] for n in _notices(admin) if n["subject_user_id"] == asked.get_json()["id"]]
        assert "link_confirmed" in kinds
    assert _pending_for(reader.client) == []

    # Answered once: a second answer, either way, is 409 and changes nothing.
    for verb in ("confirm", "refuse"):
        again = reader.client.post(f"/api/v1/link-requests/{request_id}/{verb}")
        assert again.status_code == 409, again.get_json()
    assert _request_row(app, request_id)["status"] == "confirmed"


def _first_login(app: Flask, provider_id: str) -> str:
    with app.app_context(), _session(app) as session:
        return str(session.scalar(sa.select(User.id).where(User.provider_id == uuid.UUID(provider_id))
                                  .order_by(User.created_at)))


def test_a_refused_request_changes_nothing(app: Flask, world: World, riverside: Practice, second_admin: Client,
                                           pending: dict[str, Any]) -> None:
    request_id = pending["link_request_id"]
    before = _user(app, pending["id"])

    refused = riverside.dentist.post(f"/api/v1/link-requests/{request_id}/refuse")
    assert refused.status_code == 200, refused.get_json()
    assert refused.get_json()["status"] == "refused"
    assert _user(app, pending["id"]) == before
    assert world.as_token(pending["token"]).get("/api/v1/referrals").status_code == 401
    assert _pending_for(riverside.dentist) == []
    # A refused request cannot be confirmed afterwards, or refused twice.
    for verb in ("confirm", "refuse"):
        again = riverside.dentist.post(f"/api/v1/link-requests/{request_id}/{verb}")
        assert again.status_code == 409, again.get_json()
    assert _user(app, pending["id"]) == before
    # Nor can the org admin make the unlinked dentist login usable by activating it.
    activated = riverside.org_admin.patch(f"/api/v1/users/{pending['id']}", {"active": True})
    assert activated.status_code == 422, activated.get_json()
    linked = riverside.org_admin.patch(f"/api/v1/users/{pending['id']}",
                                       {"provider_id": riverside.dentist_provider_id, "active": True})
    assert linked.status_code == 409, linked.get_json()
    assert _user(app, pending["id"]) == before

    [audited] = _audit(app, "provider_link.refuse")
    assert (audited["object_id"], audited["actor"]) == (uuid.UUID(request_id), uuid.UUID(riverside.users["dentist"]))
    for admin in (riverside.org_admin, second_admin):
        kinds = [n["kind"] for n in _notices(admin) if n["subject_user_id"] == pending["id"]]
        assert "link_refused" in kinds


def test_only_a_reading_login_of_the_provider_may_answer_everyone_else_gets_404(
        app: Flask, world: World, riverside: Practice, hillside: Practice, pending: dict[str, Any]) -> None:
    request_id = pending["link_request_id"]
    # A staff login linked to the same provider is allowed to be made, but does not read as the provider.
    staff_link = riverside.org_admin.post(f"/api/v1/organizations/{riverside.id}/users",
                                          {"email": "linked-staff@riverside.example.com", "role": "staff",
                                           "provider_id": riverside.dentist_provider_id})
    assert staff_link.status_code == 201, staff_link.get_json()
    wrong = [riverside.org_admin, riverside.staff, riverside.billing, world.admin, hillside.dentist,
             hillside.org_admin, hillside.staff, world.as_token(staff_link.get_json()["token"])]
    before = _request_row(app, request_id), _user(app, pending["id"])
    for answerer in wrong:
        for verb in ("confirm", "refuse"):
            response = answerer.post(f"/api/v1/link-requests/{request_id}/{verb}")
            assert response.status_code == 404, (verb, response.get_json())
    # An id that does not exist is the same 404, for the right answerer too.
    for verb in ("confirm", "refuse"):
        assert riverside.dentist.post(f"/api/v1/link-requests/{uuid.uuid4()}/{verb}").status_code == 404
    assert riverside.dentist.post("/api/v1/link-requests/not-a-uuid/confirm").status_code == 404
    assert (_request_row(app, request_id), _user(app, pending["id"])) == before
    assert _audit(app, "provider_link.confirm") == _audit(app, "provider_link.refuse") == []


def test_an_expired_request_cannot_be_answered_and_is_not_listed(app: Flask, riverside: Practice,
                                                                pending: dict[str, Any]) -> None:
    request_id = pending["link_request_id"]
    with app.app_context(), _session(app) as session:
        row = session.get(ProviderLinkRequest, uuid.UUID(request_id))
        row.expires_at = utcnow() - timedelta(minutes=1)
        session.commit()
    before = _request_row(app, request_id), _user(app, pending["id"])

    assert _pending_for(riverside.dentist) == []
    for verb in ("confirm", "refuse"):
        response = riverside.dentist.post(f"/api/v1/link-requests/{request_id}/{verb}")
        assert response.status_code == 409, response.get_json()
        assert "expired" in response.get_json()["message"]
    assert (_request_row(app, request_id), _user(app, pending["id"])) == before


def test_a_login_changed_since_the_request_cannot_be_confirmed(app: Flask, riverside: Practice,
                                                               pending: dict[str, Any]) -> None:
    changed = riverside.org_admin.patch(f"/api/v1/users/{pending['id']}", {"role": "billing"})
    assert changed.status_code == 200, changed.get_json()
    response = riverside.dentist.post(f"/api/v1/link-requests/{pending['link_request_id']}/confirm")
    assert response.status_code == 409, response.get_json()
    stored = _user(app, pending["id"])
    assert (stored["provider_id"], stored["active"]) == (None, False)
    assert _request_row(app, pending["link_request_id"])["status"] == "pending"


def test_the_flag_changes_nothing_when_no_confirmation_is_needed(app: Flask, world: World,
                                                                riverside: Practice) -> None:
    # A provider with no login yet: the org admin links directly.
    provider = riverside.org_admin.post(f"/api/v1/organizations/{riverside.id}/providers", provider_body())
    assert provider.status_code == 201, provider.get_json()
    free = _ask(riverside, provider.get_json()["id"], email="free@riverside.example.com")
    assert free.status_code == 201, free.get_json()
    assert free.get_json()["provider_id"] == provider.get_json()["id"]
    # A platform admin needs nobody's confirmation.
    admin_made = _ask(riverside, riverside.dentist_provider_id, email="by-admin@riverside.example.com",
                      admin=world.admin)
    assert admin_made.status_code == 201, admin_made.get_json()
    assert admin_made.get_json()["provider_id"] == riverside.dentist_provider_id
    with app.app_context(), _session(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(ProviderLinkRequest)) == 0


def test_bad_input_on_the_flag_is_422_and_nothing_is_made(app: Flask, riverside: Practice) -> None:
    response = _ask(riverside, riverside.dentist_provider_id, request_link_confirmation="maybe")
    assert response.status_code == 422, response.get_json()
    with app.app_context(), _session(app) as session:
        assert session.scalar(sa.select(User).where(User.email == NEW_EMAIL)) is None


def test_the_other_admin_reads_the_request_and_its_answer_on_the_notices_page(world: World,
                                                                             riverside: Practice) -> None:
    email = user_with_password(world, riverside, "org_admin", email="web-admin@riverside.example.com")
    browser = world.app.test_client()
    sign_in(browser, email)
    asked = _ask(riverside, riverside.dentist_provider_id)
    assert asked.status_code == 202, asked.get_json()
    assert riverside.dentist.post(f"/api/v1/link-requests/{asked.get_json()['link_request_id']}/refuse").status_code \
        == 200

    html = browser.get("/notices").get_data(as_text=True).replace("&#39;", "'")
    assert "New login waiting for a provider's confirmation" in html
    assert "made inactive and unlinked until the provider confirms" in html
    assert "Provider refused a new login" in html
    assert NEW_EMAIL in html
    assert riverside.dentist_provider_id in html


def test_the_request_and_its_answer_are_emailed_to_the_admins_without_names(app: Flask, riverside: Practice,
                                                                           second_admin: Client,
                                                                           pending: dict[str, Any]) -> None:
    assert riverside.dentist.post(f"/api/v1/link-requests/{pending['link_request_id']}/confirm").status_code == 200
    sent: list[EmailMessage] = []
    with app.app_context():
        mail.notify_notices(app.extensions["referral.sessionmaker"], smtp_url="smtp://127.0.0.1:2525",
                            base_url="https://referrals.example.com",
                            send=lambda _target, messages: sent.extend(messages))
    asked = [m for m in sent if "waiting for a provider to confirm" in m.get_content()]
    confirmed = [m for m in sent if "provider confirmed a new login" in m.get_content().lower()]
    assert {str(m["To"]) for m in asked} == {"second-admin@riverside.example.com"}
    assert {str(m["To"]) for m in confirmed} == {"second-admin@riverside.example.com",
                                                 "org_admin@riverside-family-dental.example.com"}
    for message in asked + confirmed:
        text = message.get_content()
        assert NEW_EMAIL not in text
        assert pending["id"] not in text
        assert riverside.dentist_provider_id not in text
