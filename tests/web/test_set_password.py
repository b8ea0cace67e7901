"""The first sign-in: `create-admin` prints a one-time link, the link's page sets a password and signs in;
the link works once and only until it expires. Also the set-up pages' access rules."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from referral.db import utcnow
from referral.models import AuditEvent, PasswordLink, User, WebSession
from tests.support.web import form_token, sign_in, try_sign_in, user_with_password
from tests.support.world import Practice, World

NEW_PASSWORD = "plum kettle harbour lantern"


def _create_admin(app: Flask, email: str = "first.admin@example.com") -> tuple[str, dict[str, Any]]:
    result = app.test_cli_runner().invoke(args=["create-admin", email])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    [url] = [line.strip() for line in result.stderr.splitlines() if "/set-password/" in line]
    return url, printed


def _path(url: str) -> str:
    return "/set-password/" + url.rsplit("/set-password/", 1)[1]


def _set_password(client: FlaskClient, path: str, password: str, confirm: str | None = None) -> Any:
    page = client.get(path)
    assert page.status_code == 200, page.get_data(as_text=True)
    return client.post(path, data={"password": password, "confirm": password if confirm is None else confirm,
                                   "csrf_token": form_token(page.get_data(as_text=True))})


def _links(app: Flask) -> list[PasswordLink]:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        rows = list(session.scalars(sa.select(PasswordLink).order_by(PasswordLink.created_at)))
        session.expunge_all()
        return rows


def test_create_admin_prints_a_link_that_sets_a_password_and_signs_in(app: Flask, client: FlaskClient):
    url, printed = _create_admin(app)
    assert url.startswith("http://127.0.0.1:5000/set-password/")
    assert set(printed) == {"user_id", "token"}
    path = _path(url)
    [link] = _links(app)
    assert path.rsplit("/", 1)[1] not in link.token_hash
    assert link.purpose == "first_sign_in"

    page = client.get(path)
    assert page.status_code == 200
    assert "first.admin@example.com" in page.get_data(as_text=True)
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Cache-Control"] == "no-store"
    response = _set_password(client, path, NEW_PASSWORD)

    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    home = client.get("/", follow_redirects=True)
    assert "Add a practice" in home.get_data(as_text=True)
    assert _links(app)[0].used_at is not None
    # The password works on the sign-in form too, from another browser.
    assert try_sign_in(app.test_client(), "first.admin@example.com", NEW_PASSWORD).status_code == 303
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        actions = set(session.scalars(sa.select(AuditEvent.action)))
    assert {"user.password_set", "session.sign_in"} <= actions


def test_a_link_works_once(app: Flask, client: FlaskClient):
    url, _ = _create_admin(app)
    path = _path(url)
    assert _set_password(client, path, NEW_PASSWORD).status_code == 303

    again = app.test_client()
    assert again.get(path).status_code == 410
    assert "expired or was already used" in again.get(path).get_data(as_text=True)
    assert again.post(path, data={"password": "another good passphrase", "confirm": "another good passphrase",
                                  "csrf_token": "x"}).status_code == 410
    assert try_sign_in(app.test_client(), "first.admin@example.com", NEW_PASSWORD).status_code == 303


def test_an_expired_link_is_refused(app: Flask, client: FlaskClient):
    url, _ = _create_admin(app)
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        session.execute(sa.update(PasswordLink).values(expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()
    assert client.get(_path(url)).status_code == 410
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        assert session.scalar(sa.select(User.password_hash).where(User.email == "first.admin@example.com")) is None


def test_unknown_or_malformed_links_are_refused_alike(client: FlaskClient):
    for token in ("nope", "A" * 43, "x" * 200):
        response = client.get(f"/set-password/{token}")
        assert response.status_code == 410
        assert "expired or was already used" in response.get_data(as_text=True)


def test_weak_or_mismatched_passwords_are_refused_and_the_link_still_works(app: Flask, client: FlaskClient):
    url, _ = _create_admin(app)
    path = _path(url)
    for password, confirm, words in (
        ("short", None, "12 to 128"),
        ("aaaaaaaaaaaaaaaa", None, "too few different characters"),
        ("Password2026!", None, "easy to guess"),
        ("123456789012", None, "easy to guess"),
        ("abcdefghijklmnop", None, "simple sequence"),
        ("first.admin-is-me", None, "email name"),
        ("plum kettle harbour lantern", "plum kettle harbour", "not the same"),
    ):
        response = _set_password(client, path, password, confirm)
        assert response.status_code == 422, password
        assert words in response.get_data(as_text=True), (password, response.get_data(as_text=True))
    assert _links(app)[0].used_at is None
    assert _set_password(client, path, NEW_PASSWORD).status_code == 303


def test_the_form_needs_its_own_token_and_cookie(app: Flask, client: FlaskClient):
    url, _ = _create_admin(app)
    path = _path(url)
    token = form_token(client.get(path).get_data(as_text=True))
    other = app.test_client()  # has no matching cookie: a cross-site post looks like this
    refused = other.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD, "csrf_token": token})
    assert refused.status_code == 400
    assert client.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}).status_code == 400
    assert _links(app)[0].used_at is None


def test_a_newer_link_replaces_the_older_one(app: Flask, client: FlaskClient):
    first, _ = _create_admin(app)
    result = app.test_cli_runner().invoke(args=["password-link", "first.admin@example.com"])
    assert result.exit_code == 0, result.output
    [second] = [line.strip() for line in result.stderr.splitlines() if "/set-password/" in line]
    assert client.get(_path(first)).status_code == 410
    assert _set_password(client, _path(second), NEW_PASSWORD).status_code == 303
    assert app.test_cli_runner().invoke(args=["password-link", "nobody@example.com"]).exit_code != 0


def test_a_reset_ends_the_members_sessions_and_the_link_signs_them_back_in(
        app: Flask, client: FlaskClient, world: World, riverside: Practice):
    email = user_with_password(world, riverside, "billing", "clerk@riverside.example.com")
    sign_in(client, email)
    user_id = next(
        u["id"] for u in riverside.org_admin.get(f"/api/v1/organizations/{riverside.id}/users").get_json()["items"]
        if u["email"] == email)
    link = riverside.org_admin.post(f"/api/v1/users/{user_id}/password-link").get_json()["set_password_url"]

    assert client.get("/", follow_redirects=False).status_code == 303  # signed out by the reset
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        reasons = set(session.scalars(sa.select(WebSession.revoked_reason)))
    assert "password_reset" in reasons
    assert try_sign_in(app.test_client(), email, "correct horse battery staple").status_code == 401
    assert _set_password(client, _path(link), NEW_PASSWORD).status_code == 303
    assert client.get("/").status_code == 200


def test_the_set_up_pages_follow_the_roles(app: Flask, world: World, riverside: Practice, hillside: Practice):
    admin_browser = app.test_client()
    sign_in(admin_browser, user_with_password(world, riverside, "org_admin", "boss@riverside.example.com"))
    assert admin_browser.get("/admin").headers["Location"] == f"/admin/practices/{riverside.id}"
    page = admin_browser.get(f"/admin/practices/{riverside.id}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    for words in ("Riverside Family Dental", "Add a provider", "Invite a user", "Fee schedule", "rfl_"):
        assert words in text, words
    assert admin_browser.get(f"/admin/practices/{hillside.id}").status_code == 404

    staff_browser = app.test_client()
    sign_in(staff_browser, user_with_password(world, riverside, "staff", "capture@riverside.example.com"))
    assert staff_browser.get("/admin").status_code == 403
    assert staff_browser.get(f"/admin/practices/{riverside.id}").status_code == 403

    assert app.test_client().get("/admin").status_code == 303  # signed out: to the sign-in page
