"""MFA_REQUIRED on (the production default): a user without an authenticator is sent to enrol right after the
password, and can do nothing else until enrolled; nobody can turn it off."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from referral.config import Settings, load_settings
from referral.models import AuditEvent, User
from tests.support.mfa import enrol, send_code
from tests.support.settings import make_settings
from tests.support.web import PASSWORD, form_token, try_sign_in, user_with_password
from tests.support.world import Practice, World


@pytest.fixture
def app_settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, mfa_required=True)


def test_mfa_is_required_by_default_in_production_only(tmp_path: Path):
    base = {"INSTANCE_PATH": str(tmp_path)}
    production = {**base, "APP_ENV": "production", "SECRET_KEY": "k" * 40, "DATABASE_URL": "sqlite:///x.db",
                  "STORAGE_URL": "file:///tmp/x"}
    assert load_settings(production).mfa_required is True
    assert load_settings({**production, "MFA_REQUIRED": "0"}).mfa_required is False
    assert load_settings({**base, "APP_ENV": "development"}).mfa_required is False
    assert load_settings({**base, "APP_ENV": "test"}).mfa_required is False
    assert load_settings({**base, "APP_ENV": "test", "MFA_REQUIRED": "1"}).mfa_required is True


def test_a_user_without_mfa_must_enrol_before_anything_else(app: Flask, world: World, riverside: Practice):
    email = user_with_password(world, riverside, "staff")
    client = app.test_client()

    response = try_sign_in(client, email, PASSWORD)

    assert response.status_code == 303
    assert response.headers["Location"] == "/settings/mfa"
    for path in ("/", "/patients", "/referrals/new", "/login/code"):
        blocked = client.get(path)
        assert blocked.status_code == 303, path
        assert blocked.headers["Location"] == "/settings/mfa", path
    assert client.get("/api/v1/referrals").status_code == 401
    page = client.get("/settings/mfa").get_data(as_text=True)
    assert 'data-testid="mfa-required"' in page
    assert "nothing else opens until you do" in page
    assert "Cancel and sign out" in page

    enrolled = enrol(client)

    assert client.get("/").status_code == 200
    assert client.get("/api/v1/referrals").status_code == 200
    with app.extensions["referral.sessionmaker"]() as session:
        user = session.scalar(sa.select(User).where(User.email == email))
        assert user is not None
        actions = list(session.scalars(sa.select(AuditEvent.action).where(AuditEvent.object_id == user.id)
                                       .order_by(AuditEvent.id)))
    # One request each for the password and the page; confirming writes its two rows in one transaction.
    assert actions[-4:-2] == ["session.password", "mfa.enrol_start"]
    assert sorted(actions[-2:]) == ["mfa.enrol", "session.sign_in"]

    # Next time: password, then the code.
    again = app.test_client()
    assert try_sign_in(again, email, PASSWORD).headers["Location"] == "/login/code"
    assert again.get("/settings/mfa").headers["Location"] == "/login/code"  # no enrolling over it
    assert send_code(again, enrolled.code()).status_code == 303
    assert again.get("/").status_code == 200

    # Where it is required, it cannot be turned off.
    status = again.get("/settings/mfa").get_data(as_text=True)
    assert "cannot be turned off" in status
    refused = again.post("/settings/mfa", data={"csrf_token": form_token(status), "action": "disable",
                                                "code": enrolled.code(2)})
    assert refused.status_code == 403


def test_a_wrong_code_at_enrolment_is_refused_and_audited(app: Flask, world: World, riverside: Practice):
    email = user_with_password(world, riverside, "billing")
    client = app.test_client()
    try_sign_in(client, email, PASSWORD)
    page = client.get("/settings/mfa").get_data(as_text=True)

    refused = client.post("/settings/mfa", data={"csrf_token": form_token(page), "action": "confirm",
                                                 "code": "12345"})

    assert refused.status_code == 422
    assert "That code is not right" in refused.get_data(as_text=True)
    assert client.get("/").headers["Location"] == "/settings/mfa"
    with app.extensions["referral.sessionmaker"]() as session:
        outcomes = list(session.scalars(sa.select(AuditEvent.outcome).where(AuditEvent.action == "mfa.enrol")))
    assert outcomes == ["failure"]


def test_a_password_link_leads_to_enrolment_too(app: Flask, world: World, riverside: Practice):
    created = world.admin.post(f"/api/v1/organizations/{riverside.id}/users",
                               {"email": "invited@riverside.example.com", "role": "billing", "invite": True,
                                "issue_token": False})
    assert created.status_code == 201, created.get_json()
    path = "/set-password/" + created.get_json()["set_password_url"].rsplit("/", 1)[1]
    client = app.test_client()
    form = client.get(path).get_data(as_text=True)

    response = client.post(path, data={"csrf_token": form_token(form), "password": "harbour lantern plum kettle",
                                       "confirm": "harbour lantern plum kettle"})

    assert response.status_code == 303
    assert response.headers["Location"] == "/settings/mfa"
    assert client.get("/").headers["Location"] == "/settings/mfa"
