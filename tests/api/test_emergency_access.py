"""Emergency (break-glass) access: a specialist covering for the colleague a case is routed to opens it, stating why;
the grant is time-limited, every read during it is audited and flagged, and the admins of both practices are
told. Everyone else keeps the answers they had: 404 outside the practice's reach, 403 for a role that cannot hold a
grant on a case it sees, 409 for a dentist who already sees the case (docs/security.md, Emergency access)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from referral.db import utcnow
from referral.models import AdminNotice, AuditEvent, EmergencyAccess
from referral.services import access, mail
from tests.support.api import signed_case
from tests.support.world import Client, Practice, Reader, World

REASON = "Dr Assigned is in surgery; the patient is in my chair with acute swelling"


@dataclass
class Setting:
    case: str
    image: str
    reader: Reader  # the assigned reader R, of reader practice E
    colleague: Client  # specialist C of E, not assigned
    colleague_id: str
    reader_admin: Client  # org admin of E
    reader_admin_id: str
    reader_billing: Client  # billing of E
    stranger: Client  # specialist of another reader practice F


def _user(world: World, organization_id: str, role: str, provider_id: str | None = None) -> tuple[Client, str]:
    body: dict[str, Any] = {"email": f"{role}-{uuid.uuid4().hex[:8]}@reader-e.example.com", "role": role}
    if provider_id:
        body["provider_id"] = provider_id
    created = world.admin.post(f"/api/v1/organizations/{organization_id}/users", body)
    assert created.status_code == 201, created.get_json()
    return world.as_token(created.get_json()["token"]), str(created.get_json()["id"])


@pytest.fixture
def setting(world: World, riverside: Practice) -> Setting:
    practice_e = world.reader_practice("Reader Practice E")
    reader = world.reader(practice_e, last_name="Assigned")
    covering = world.reader(practice_e, last_name="Covering", accepting=False, role=None)
    colleague, colleague_id = _user(world, practice_e, "specialist", covering.provider_id)
    reader_admin, reader_admin_id = _user(world, practice_e, "org_admin")
    reader_billing, _ = _user(world, practice_e, "billing")
    stranger = world.reader(world.reader_practice("Reader Practice F"), last_name="Stranger", accepting=False)
    case = signed_case(world, riverside, reader, target_provider_id=reader.provider_id)
    image = riverside.staff.get(f"/api/v1/referrals/{case}").get_json()["images"][0]["id"]
    return Setting(case=case, image=image, reader=reader, colleague=colleague, colleague_id=colleague_id,
                   reader_admin=reader_admin, reader_admin_id=reader_admin_id, reader_billing=reader_billing,
                   stranger=stranger.client)


def _open(client: Client, case: str, reason: Any = REASON) -> Any:
    return client.post(f"/api/v1/referrals/{case}/emergency-access", {} if reason is None else {"reason": reason})


def _grants(app: Flask) -> int:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        return int(session.scalar(sa.select(sa.func.count()).select_from(EmergencyAccess)) or 0)


def _reads(client: Client, s: Setting) -> list[int]:
    return [client.get(path).status_code for path in (
        f"/api/v1/referrals/{s.case}", f"/api/v1/images/{s.image}/content", f"/api/v1/images/{s.image}/preview",
        f"/api/v1/referrals/{s.case}/report", f"/api/v1/referrals/{s.case}/messages")]


def test_a_colleague_opens_the_case_with_a_reason_and_reads_it_through_the_usual_routes(
        app: Flask, riverside: Practice, setting: Setting) -> None:
    s = setting
    assert _reads(s.colleague, s) == [404] * 5

    response = _open(s.colleague, s.case)

    assert response.status_code == 201, response.get_json()
    grant = response.get_json()
    assert grant["referral_id"] == s.case
    assert grant["user_id"] == s.colleague_id
    assert grant["reason"] == REASON
    assert grant["active"] is True
    assert {"id", "starts_at", "expires_at"} <= set(grant)
    lasted = access.now().fromisoformat(grant["expires_at"]) - access.now().fromisoformat(grant["starts_at"])
    assert lasted == timedelta(minutes=60)
    assert _reads(s.colleague, s) == [200] * 5
    # Reading, not acting: the conversation and the report stay the assigned reader's and the office's.
    posted = s.colleague.post(f"/api/v1/referrals/{s.case}/messages", {"body": "Seen in emergency"})
    assert posted.status_code == 403, posted.get_json()
    assert s.colleague.post(f"/api/v1/referrals/{s.case}/accept").status_code in (403, 409)


def test_every_read_during_the_grant_is_audited_and_flagged_and_queryable(
        riverside: Practice, setting: Setting) -> None:
    s = setting
    grant_id = _open(s.colleague, s.case).get_json()["id"]
    assert _reads(s.colleague, s) == [200] * 5
    assert s.reader.client.get(f"/api/v1/referrals/{s.case}").status_code == 200  # the assigned reader: not flagged

    for admin in (s.reader_admin, riverside.org_admin):
        flagged = admin.get(f"/api/v1/audit-events?referral_id={s.case}&emergency=true&limit=100").get_json()["items"]
        actions = {row["action"] for row in flagged}
        assert {"emergency_access.grant", "referral.read", "image.download", "image.preview", "report.read",
                "message.read"} <= actions, actions
        assert {row["emergency_access_id"] for row in flagged} == {grant_id}
        assert {row["actor_user_id"] for row in flagged} == {s.colleague_id}
        assert all(REASON not in str(row["details"]) for row in flagged)
        others = admin.get(f"/api/v1/audit-events?referral_id={s.case}&emergency=false&limit=100").get_json()["items"]
        assert others
        assert all(row["emergency_access_id"] is None for row in others)


def test_a_reason_is_required_and_nothing_is_stored_without_one(app: Flask, setting: Setting) -> None:
    for reason in (None, "", "   ", "urgent", "x" * 1001):
        response = _open(setting.colleague, setting.case, reason)
        assert response.status_code == 422, (reason, response.get_json())
        assert "reason" in str(response.get_json())
    assert _grants(app) == 0
    assert setting.colleague.get(f"/api/v1/referrals/{setting.case}").status_code == 404


def test_outside_the_practices_reach_the_case_is_not_found_and_the_attempt_is_audited(
        app: Flask, riverside: Practice, hillside: Practice, setting: Setting) -> None:
    s = setting
    outsiders = [hillside.dentist, hillside.staff, hillside.org_admin, s.stranger, s.reader_billing]
    for client in outsiders:
        response = _open(client, s.case)
        assert response.status_code == 404, response.get_json()
        assert _open(client, str(uuid.uuid4())).status_code == 404
    # A case of the practice never routed to E: E's people cannot break into it either.
    from tests.support.api import new_referral
    never_routed = new_referral(riverside)
    assert _open(s.colleague, never_routed).status_code == 404
    assert _grants(app) == 0
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        denied = session.scalars(sa.select(AuditEvent).where(AuditEvent.outcome == "denied",
                                                             AuditEvent.object_id == uuid.UUID(s.case))).all()
        assert len(denied) >= len(outsiders)
        # The refusal names only what was sent and the actor's own practice.
        assert all(row.organization_id == row.actor_organization_id for row in denied)


def test_roles_that_see_the_case_already_or_cannot_hold_a_grant(app: Flask, riverside: Practice,
                                                                setting: Setting) -> None:
    for client in (riverside.staff, riverside.billing, riverside.org_admin):
        response = _open(client, setting.case)
        assert response.status_code == 403, response.get_json()
    assert _open(riverside.dentist, setting.case).status_code == 409  # sees all of the practice's cases already
    assert _open(setting.reader.client, setting.case).status_code == 409  # the assigned reader
    assert _grants(app) == 0


def test_an_expired_grant_answers_404_again(monkeypatch: pytest.MonkeyPatch, riverside: Practice,
                                            setting: Setting) -> None:
    s = setting
    grant_id = _open(s.colleague, s.case).get_json()["id"]
    assert _reads(s.colleague, s) == [200] * 5
    start = utcnow()

    monkeypatch.setattr(access, "now", lambda: start + timedelta(minutes=59))
    assert s.colleague.get(f"/api/v1/referrals/{s.case}").status_code == 200
    monkeypatch.setattr(access, "now", lambda: start + timedelta(minutes=61))
    assert _reads(s.colleague, s) == [404] * 5
    assert s.reader_admin.get("/api/v1/emergency-access").get_json()["items"] == []
    listed = s.reader_admin.get("/api/v1/emergency-access?active=false").get_json()["items"]
    assert [(g["id"], g["active"]) for g in listed] == [(grant_id, False)]


def test_the_admins_of_both_practices_are_notified_without_the_reason(
        app: Flask, riverside: Practice, hillside: Practice, setting: Setting) -> None:
    s = setting
    grant = _open(s.colleague, s.case).get_json()

    for admin in (s.reader_admin, riverside.org_admin):
        items = admin.get("/api/v1/me/notices?unread=true").get_json()["items"]
        alerts = [n for n in items if n["kind"] == "emergency_access"]
        assert len(alerts) == 1, items
        assert alerts[0]["grant_id"] == grant["id"]
        assert alerts[0]["referral_id"] == s.case
        assert alerts[0]["subject_user_id"] == s.colleague_id
        assert alerts[0]["read_at"] is None
        assert REASON not in str(alerts[0])
        assert admin.post("/api/v1/me/notices/read").get_json()["marked"] >= 1
        assert admin.get("/api/v1/me/notices?unread=true").get_json()["items"] == []
    assert not [n for n in hillside.org_admin.get("/api/v1/me/notices").get_json()["items"]
                if n["kind"] == "emergency_access"]
    assert s.colleague.get("/api/v1/me/notices").status_code == 403

    # The optional email: one per admin told, with no patient detail and no reason.
    sent: list[EmailMessage] = []
    factory = app.extensions["referral.sessionmaker"]
    with app.app_context():
        count = mail.notify_notices(factory, smtp_url="smtp://127.0.0.1:2525",
                                    send=lambda _target, messages: sent.extend(messages))
        again = mail.notify_notices(factory, smtp_url="smtp://127.0.0.1:2525",
                                    send=lambda _target, messages: sent.extend(messages))
    assert again == 0
    alerts_to = {str(m["To"]) for m in sent if "emergency access" in m.get_content()}
    assert len(alerts_to) == 2
    assert count >= 2
    for message in sent:
        text = message.get_content()
        assert REASON not in text
        assert "Jane" not in text
        assert "Doe" not in text
        assert s.case not in text
    with app.app_context(), factory() as session:
        statuses = set(session.scalars(sa.select(AdminNotice.email_status)
                                       .where(AdminNotice.kind == "emergency_access")))
    assert statuses == {"sent"}


def test_an_admin_who_turned_access_alerts_off_gets_no_email(app: Flask, riverside: Practice,
                                                             setting: Setting) -> None:
    turned = riverside.org_admin.put("/api/v1/me/notifications", {"access_alerts": False})
    assert turned.status_code == 200
    assert turned.get_json()["email"]["access_alerts"] is False
    _open(setting.colleague, setting.case)
    sent: list[EmailMessage] = []
    with app.app_context():
        mail.notify_notices(app.extensions["referral.sessionmaker"], smtp_url="smtp://127.0.0.1:2525",
                            send=lambda _target, messages: sent.extend(messages))
    assert "org_admin@riverside-family-dental.example.com" not in {str(m["To"]) for m in sent}
    assert sent  # E's admin still gets theirs


def test_grants_are_listed_for_the_admins_and_the_holder_only(riverside: Practice, hillside: Practice,
                                                              setting: Setting) -> None:
    s = setting
    grant_id = _open(s.colleague, s.case).get_json()["id"]

    for client in (s.reader_admin, riverside.org_admin, s.colleague):
        items = client.get("/api/v1/emergency-access").get_json()["items"]
        assert [g["id"] for g in items] == [grant_id], items
        assert items[0]["reason"] == REASON
    assert s.reader_admin.get(f"/api/v1/emergency-access?referral_id={s.case}").get_json()["items"]
    assert hillside.org_admin.get("/api/v1/emergency-access").get_json()["items"] == []
    assert s.reader.client.get("/api/v1/emergency-access").get_json()["items"] == []
    for client in (riverside.staff, riverside.billing):
        assert client.get("/api/v1/emergency-access").status_code == 403
    assert s.reader_admin.get("/api/v1/emergency-access?active=maybe").status_code == 422
    listed = riverside.org_admin.get("/api/v1/audit-events?limit=100").get_json()["items"]
    assert any(row["action"] == "emergency_access.list" for row in listed)


def test_a_login_whose_role_changes_loses_its_grant(world: World, riverside: Practice, setting: Setting) -> None:
    s = setting
    assert _open(s.colleague, s.case).status_code == 201
    changed = world.admin.patch(f"/api/v1/users/{s.colleague_id}", {"role": "billing", "provider_id": None})
    assert changed.status_code == 200, changed.get_json()
    assert s.colleague.get(f"/api/v1/referrals/{s.case}").status_code == 404
