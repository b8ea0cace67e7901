"""Sign-in, sessions, CSRF and security headers of the web pages, through the Flask test client."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from referral.db import utcnow
from referral.models import AuditEvent, User, WebSession
from tests.support.api import new_referral
from tests.support.web import PASSWORD, sign_in, try_sign_in, user_with_password
from tests.support.world import Practice, World

CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def _sessions(app: Flask) -> list[WebSession]:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        rows = list(session.scalars(sa.select(WebSession)))
        session.expunge_all()
        return rows


def test_signing_in_sets_an_httponly_samesite_cookie_and_lands_on_the_role_page(
        app: Flask, client: FlaskClient, world: World, riverside: Practice):
    email = user_with_password(world, riverside)

    response = try_sign_in(client, email, PASSWORD)

    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("referral_session="))
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP in the test; Secure over HTTPS and always in production
    page = client.get("/").get_data(as_text=True)
    assert "Your practice's referrals" in page
    assert "Riverside Family Dental" in page
    assert email in page
    token = response.headers["Set-Cookie"]
    assert _sessions(app)[0].id not in token  # the database keeps only the hash of the cookie token


def test_the_cookie_is_secure_over_https(world: World, riverside: Practice, app: Flask):
    email = user_with_password(world, riverside)
    client = app.test_client()
    response = try_sign_in(client, email, PASSWORD, base_url="https://localhost")
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("referral_session="))
    assert "Secure" in cookie


def test_each_role_sees_its_own_landing_page(app: Flask, world: World, riverside: Practice):
    reader_org = world.reader_practice("Endo Readers")
    reader = world.reader(reader_org)
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        from referral.services.web_auth import hash_password

        specialist = session.scalar(sa.select(User).where(User.provider_id == uuid.UUID(reader.provider_id)))
        assert specialist is not None
        specialist.password_hash = hash_password(PASSWORD)
        specialist_email = specialist.email
        session.commit()
    billing = user_with_password(world, riverside, "billing")
    admin = user_with_password(world, riverside, "org_admin")

    for email, heading in ((specialist_email, "Your inbox"), (billing, "Your organization's claims"),
                           (admin, "Your practice's referrals")):
        client = app.test_client()
        sign_in(client, email)
        assert heading in client.get("/").get_data(as_text=True)


def test_the_staff_page_lists_referrals_with_status_urgency_and_due_time(
        client: FlaskClient, world: World, riverside: Practice):
    new_referral(riverside)
    sign_in(client, user_with_password(world, riverside))
    page = client.get("/").get_data(as_text=True)
    assert "draft" in page
    assert "urgent" in page
    # Riverside is in California: times are shown in the practice's zone, and the zone is named.
    assert re.search(r"<time datetime=\"[^\"]+\">[^<]+ P[SD]T</time>", page)


def test_a_wrong_password_and_an_unknown_email_get_the_same_generic_message(
        client: FlaskClient, world: World, riverside: Practice):
    email = user_with_password(world, riverside)

    wrong = try_sign_in(client, email, "not the password at all")
    unknown = try_sign_in(client, "nobody@example.com", PASSWORD)

    assert wrong.status_code == unknown.status_code == 401
    message = "The email or password is not correct."
    assert message in wrong.get_data(as_text=True)
    assert message in unknown.get_data(as_text=True)
    assert "referral_session=" not in " ".join(wrong.headers.getlist("Set-Cookie"))


def test_sign_in_is_throttled_after_five_failures_even_for_the_right_password(
        app: Flask, client: FlaskClient, world: World, riverside: Practice):
    email = user_with_password(world, riverside)
    for _ in range(5):
        assert try_sign_in(client, email, "wrong password here").status_code == 401

    throttled = try_sign_in(client, email, PASSWORD)

    assert throttled.status_code == 429
    assert "Too many failed sign-in attempts" in throttled.get_data(as_text=True)
    assert _sessions(app) == []


def test_one_address_is_throttled_after_many_failures_across_accounts(client: FlaskClient, world: World):
    for n in range(20):
        assert try_sign_in(client, f"guess{n}@example.com", "wrong password here").status_code == 401
    assert try_sign_in(client, "guess-last@example.com", "wrong password here").status_code == 429


def test_sign_in_success_failure_and_logout_are_audited_without_the_password(
        app: Flask, client: FlaskClient, world: World, riverside: Practice):
    email = user_with_password(world, riverside)
    try_sign_in(client, email, "a wrong password value")
    csrf = sign_in(client, email)
    client.post("/logout", data={"csrf_token": csrf})

    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        events = list(session.scalars(sa.select(AuditEvent).where(AuditEvent.action.like("session.%"))
                                      .order_by(AuditEvent.id)))
        seen = [(e.action, e.outcome) for e in events]
        dumped = repr([(e.details, e.user_agent) for e in events])
    assert seen == [("session.sign_in", "failure"), ("session.sign_in", "success"), ("session.sign_out", "success")]
    assert "a wrong password value" not in dumped
    assert PASSWORD not in dumped


def test_the_sign_in_form_needs_its_csrf_token(client: FlaskClient, world: World, riverside: Practice):
    email = user_with_password(world, riverside)
    client.get("/login")
    assert client.post("/login", data={"email": email, "password": PASSWORD}).status_code == 400
    assert client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": "forged"}).status_code == 400


def test_logout_and_other_posts_without_or_with_a_wrong_csrf_token_are_refused(
        app: Flask, client: FlaskClient, world: World, riverside: Practice):
    sign_in(client, user_with_password(world, riverside))

    assert client.post("/logout").status_code == 400
    assert client.post("/logout", data={"csrf_token": "not-the-token"}).status_code == 400
    assert "Request refused" in client.post("/logout").get_data(as_text=True)
    assert _sessions(app)[0].revoked_at is None
    assert client.get("/").status_code == 200


def test_logout_revokes_the_session_on_the_server(app: Flask, client: FlaskClient, world: World,
                                                   riverside: Practice):
    csrf = sign_in(client, user_with_password(world, riverside))
    old_cookie = client.get_cookie("referral_session")
    assert old_cookie is not None

    response = client.post("/logout", data={"csrf_token": csrf})

    assert response.status_code == 303
    assert response.headers["Location"] == "/login"
    assert _sessions(app)[0].revoked_reason == "logout"
    replay = app.test_client()
    replay.set_cookie("referral_session", old_cookie.value)
    assert replay.get("/").headers["Location"].startswith("/login")


def test_an_idle_session_is_revoked_and_the_next_request_goes_to_login(
        app: Flask, client: FlaskClient, world: World, riverside: Practice):
    sign_in(client, user_with_password(world, riverside))
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        session.execute(sa.update(WebSession).values(last_seen_at=utcnow() - timedelta(minutes=16)))
        session.commit()

    response = client.get("/")

    assert response.status_code == 303
    assert response.headers["Location"] == "/login?ended=idle"
    row = _sessions(app)[0]
    assert row.revoked_at is not None
    assert row.revoked_reason == "idle"
    assert "without activity" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert client.get("/").headers["Location"].startswith("/login")


def test_a_session_ends_after_its_absolute_lifetime(app: Flask, client: FlaskClient, world: World,
                                                    riverside: Practice):
    sign_in(client, user_with_password(world, riverside))
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        session.execute(sa.update(WebSession).values(expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()
    assert client.get("/").headers["Location"] == "/login?ended=expired"


def test_the_start_page_sends_a_visitor_without_a_session_to_login(client: FlaskClient):
    response = client.get("/")
    assert response.status_code == 303
    assert response.headers["Location"] == "/login"


def test_security_headers_are_on_pages_api_responses_and_healthz(client: FlaskClient, world: World):
    for response in (client.get("/login"), world.anonymous.get("/api/v1/referrals"), client.get("/healthz")):
        assert response.headers["Content-Security-Policy"] == CSP
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "Strict-Transport-Security" not in response.headers


def test_hsts_is_sent_only_over_https(client: FlaskClient):
    secure = client.get("/healthz", base_url="https://localhost")
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert "Strict-Transport-Security" not in client.get("/healthz").headers


def test_the_password_is_stored_as_an_argon2_hash_and_never_returned(app: Flask, world: World,
                                                                     riverside: Practice):
    email = user_with_password(world, riverside)
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        user = session.scalar(sa.select(User).where(User.email == email))
        assert user is not None
        assert user.password_hash is not None
        assert user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash
    listed = world.admin.get(f"/api/v1/organizations/{riverside.id}").get_data(as_text=True)
    assert "password" not in listed


def test_a_short_password_is_refused_by_the_api(world: World, riverside: Practice):
    response = world.admin.post(f"/api/v1/organizations/{riverside.id}/users",
                                {"email": "short@example.com", "role": "billing", "password": "too-short"})
    assert response.status_code == 422
    assert "password" in response.get_json()["message"]


def test_create_admin_can_read_a_password_from_stdin_and_sign_in(app: Flask, client: FlaskClient):
    result = app.test_cli_runner().invoke(args=["create-admin", "ops@example.com", "--password-stdin"],
                                          input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    sign_in(client, "ops@example.com")
    assert "Add a practice" in client.get("/", follow_redirects=True).get_data(as_text=True)


def test_the_api_docs_page_still_renders_with_a_policy_for_its_own_script(client: FlaskClient):
    response = client.get("/api/docs")
    assert response.status_code == 200
    assert "swagger-ui" in response.get_data(as_text=True)
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self' 'sha256-" in policy
    assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";", 1)[0]
    stylesheet = client.get("/web/static/site.css")
    stylesheet.close()
    assert stylesheet.status_code == 200
