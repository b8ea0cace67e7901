"""Two-step sign-in on the pages (MFA not required, the default outside production): enrolling, the code after
the password, wrong and reused codes, recovery codes, the half-signed-in session, turning it off, and an
administrator's reset."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from referral.models import AuditEvent, User, UserMfa, WebSession
from tests.support.api import new_referral
from tests.support.mfa import Enrolled, enrol, send_code
from tests.support.web import PASSWORD, form_token, sign_in, try_sign_in, user_with_password
from tests.support.world import Practice, World


def _enrolled(app: Flask, world: World, practice: Practice, role: str = "dentist") -> tuple[str, Enrolled]:
    email = user_with_password(world, practice, role)
    client = app.test_client()
    sign_in(client, email)
    return email, enrol(client)


def _half_signed_in(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    response = try_sign_in(client, email, PASSWORD)
    assert response.status_code == 303
    assert response.headers["Location"] == "/login/code"
    return client


def _rows(app: Flask, model: Any, *where: Any) -> list[Any]:
    with app.extensions["referral.sessionmaker"]() as session:
        rows = list(session.scalars(sa.select(model).where(*where)))
        session.expunge_all()
        return rows


def _audit(app: Flask, action: str) -> list[AuditEvent]:
    return sorted(_rows(app, AuditEvent, AuditEvent.action == action), key=lambda e: e.id)


def test_enrolling_shows_the_uri_secret_and_qr_once_then_asks_for_a_code_at_sign_in(
        app: Flask, client: FlaskClient, world: World, riverside: Practice):
    email = user_with_password(world, riverside, "dentist")
    sign_in(client, email)
    page = client.get("/settings/mfa").get_data(as_text=True)
    assert "otpauth://totp/" in page
    assert "<svg" in page
    assert "<script" not in page.split("<main", 1)[1]  # the QR code is markup, no inline script

    enrolled = enrol(client)

    assert enrolled.secret in page
    status = client.get("/settings/mfa").get_data(as_text=True)
    assert "Two-step sign-in is on" in status
    assert enrolled.secret not in status  # never shown again
    assert "otpauth://" not in status
    (row,) = _rows(app, UserMfa)
    assert enrolled.secret not in row.secret_sealed
    assert [e.outcome for e in _audit(app, "mfa.enrol")] == ["success"]

    browser = _half_signed_in(app, email)
    done = send_code(browser, enrolled.code())
    assert done.status_code == 303
    assert done.headers["Location"] == "/"
    assert "Your practice's referrals" in browser.get("/").get_data(as_text=True)
    assert _audit(app, "session.sign_in")[-1].details == {"mfa": "totp"}


def test_a_wrong_code_or_a_code_already_used_is_refused_and_audited(
        app: Flask, world: World, riverside: Practice):
    email, enrolled = _enrolled(app, world, riverside)
    browser = _half_signed_in(app, email)

    wrong = send_code(browser, enrolled.wrong_code())
    reused = send_code(browser, enrolled.code(0))  # the code that confirmed the enrolment

    assert wrong.status_code == 401
    assert "That code is not right" in wrong.get_data(as_text=True)
    assert reused.status_code == 401
    assert "already used" in reused.get_data(as_text=True)
    assert browser.get("/").status_code == 303
    assert [(e.outcome, e.details) for e in _audit(app, "mfa.verify")] == [
        ("failure", {"reason": "wrong", "method": "totp"}), ("failure", {"reason": "reused", "method": "totp"})]
    # The right code still works, once: a second browser cannot replay it.
    assert send_code(browser, enrolled.code()).status_code == 303
    replay = _half_signed_in(app, email)
    assert send_code(replay, enrolled.code()).status_code == 401


def test_a_recovery_code_signs_in_once_only(app: Flask, world: World, riverside: Practice):
    email, enrolled = _enrolled(app, world, riverside)
    browser = _half_signed_in(app, email)

    used = send_code(browser, enrolled.recovery_codes[0])

    assert used.status_code == 303
    assert used.headers["Location"] == "/settings/mfa?used_recovery=1"
    notice = browser.get(used.headers["Location"]).get_data(as_text=True)
    assert "9 recovery codes are left" in notice
    again = send_code(_half_signed_in(app, email), enrolled.recovery_codes[0])
    assert again.status_code == 401
    assert "already used" in again.get_data(as_text=True)
    assert send_code(_half_signed_in(app, email), enrolled.recovery_codes[1]).status_code == 303


def test_a_half_signed_in_session_can_do_nothing_but_the_code_step(app: Flask, world: World, riverside: Practice):
    email, enrolled = _enrolled(app, world, riverside)
    referral_id = new_referral(riverside)
    browser = _half_signed_in(app, email)
    page = browser.get("/login/code").get_data(as_text=True)
    csrf = form_token(page)
    assert "Sign out" not in page.split("<main", 1)[0]  # no page shell: the person is not signed in yet

    for path in ("/", f"/referrals/{referral_id}", "/patients", "/settings/notifications", "/settings/mfa",
                 "/admin", "/denials"):
        response = browser.get(path)
        assert response.status_code == 303, path
        assert response.headers["Location"] == "/login/code", path
    for path in (f"/api/v1/referrals/{referral_id}", "/api/v1/referrals", "/api/v1/me/notifications"):
        response = browser.get(path)
        assert response.status_code == 401, path
        assert "two-step sign-in is not complete" in response.get_json()["message"]
    posted = browser.post("/api/v1/referrals", json={}, headers={"X-CSRF-Token": csrf})
    assert posted.status_code == 401
    assert browser.post("/session/keep-alive", headers={"X-CSRF-Token": csrf}).status_code == 401
    assert browser.get("/session/status").get_json()["signed_in"] is False
    # A form of the code step without the session's token is refused.
    assert browser.post("/login/code", data={"code": enrolled.code()}).status_code == 400

    # Signing out from the code step ends the half session.
    assert browser.post("/logout", data={"csrf_token": csrf}).status_code == 303
    assert browser.get("/login/code").status_code == 303
    assert all(row.revoked_reason == "logout" for row in _rows(app, WebSession, WebSession.mfa_pending.is_not(None)))


def test_the_page_asked_for_is_opened_after_the_code(app: Flask, world: World, riverside: Practice):
    email, enrolled = _enrolled(app, world, riverside)
    referral_id = new_referral(riverside)
    client = app.test_client()
    form = client.get(f"/login?next=/referrals/{referral_id}").get_data(as_text=True)
    response = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": form_token(form),
                                           "next": f"/referrals/{referral_id}"})
    assert response.headers["Location"] == f"/login/code?next=%2Freferrals%2F{referral_id}"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    done = client.post("/login/code", data={"csrf_token": form_token(page), "code": enrolled.code(),
                                            "next": f"/referrals/{referral_id}"})
    assert done.headers["Location"] == f"/referrals/{referral_id}"
    assert client.get(done.headers["Location"]).status_code == 200


def test_wrong_codes_are_throttled_like_passwords(app: Flask, world: World, riverside: Practice):
    email, enrolled = _enrolled(app, world, riverside)
    browser = _half_signed_in(app, email)
    for _ in range(5):
        assert send_code(browser, enrolled.wrong_code()).status_code == 401

    throttled = send_code(browser, enrolled.code())

    assert throttled.status_code == 429
    assert "Too many failed sign-in attempts" in throttled.get_data(as_text=True)
    assert browser.get("/").status_code == 303
    assert try_sign_in(app.test_client(), email, PASSWORD).status_code == 429  # the account is paused


def test_turning_it_off_needs_a_current_code(app: Flask, client: FlaskClient, world: World, riverside: Practice):
    email = user_with_password(world, riverside, "dentist")
    sign_in(client, email)
    enrolled = enrol(client)
    page = client.get("/settings/mfa").get_data(as_text=True)
    csrf = form_token(page)

    wrong = client.post("/settings/mfa", data={"csrf_token": csrf, "action": "disable",
                                               "code": enrolled.wrong_code()})
    assert wrong.status_code == 422
    assert _rows(app, UserMfa)

    off = client.post("/settings/mfa", data={"csrf_token": csrf, "action": "disable", "code": enrolled.code()})

    assert off.status_code == 303
    assert "now off" in client.get(off.headers["Location"]).get_data(as_text=True)
    assert [e.outcome for e in _audit(app, "mfa.disable")] == ["failure", "success"]
    again = app.test_client()
    assert try_sign_in(again, email, PASSWORD).headers["Location"] == "/"  # password alone again


def test_an_org_admin_resets_a_members_mfa_and_the_member_signs_in_with_the_password(
        app: Flask, world: World, riverside: Practice, hillside: Practice):
    email, _ = _enrolled(app, world, riverside)
    member = _rows(app, User, User.email == email)[0]
    signed_in = _half_signed_in(app, email)

    other = hillside.org_admin.delete(f"/api/v1/users/{member.id}/mfa")
    same_role = riverside.billing.delete(f"/api/v1/users/{member.id}/mfa")
    assert other.status_code == 404
    assert same_role.status_code == 403
    assert _rows(app, UserMfa)

    reset = riverside.org_admin.delete(f"/api/v1/users/{member.id}/mfa")

    assert reset.status_code == 200, reset.get_json()
    # Both of the member's sessions end: the one that enrolled, and the one waiting for a code.
    assert reset.get_json() == {"user_id": str(member.id), "mfa_enabled": False, "sessions_ended": 2}
    assert not _rows(app, UserMfa)
    assert signed_in.get("/login/code").status_code == 303  # the half session ended with the reset
    event = _audit(app, "mfa.reset")[-1]
    assert event.object_id == member.id
    assert event.details == {"had_mfa": True, "sessions_ended": 2}
    assert try_sign_in(app.test_client(), email, PASSWORD).headers["Location"] == "/"
    assert riverside.org_admin.delete(f"/api/v1/users/{riverside.users['org_admin']}/mfa").status_code == 403


def test_the_admin_page_shows_who_has_mfa_and_offers_the_reset(app: Flask, world: World, riverside: Practice):
    email, _ = _enrolled(app, world, riverside)
    member = _rows(app, User, User.email == email)[0]
    admin = app.test_client()
    sign_in(admin, user_with_password(world, riverside, "org_admin"))

    page = admin.get(f"/admin/practices/{riverside.id}").get_data(as_text=True)

    assert 'data-testid="mfa-on"' in page
    assert f'data-api="/api/v1/users/{member.id}/mfa"' in page


def test_api_tokens_are_not_affected(app: Flask, world: World, riverside: Practice):
    _enrolled(app, world, riverside, "staff")
    assert riverside.staff.get("/api/v1/referrals").status_code == 200
