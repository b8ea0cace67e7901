"""`flask demo`: on a fresh SQLite database it loads two practices, their sign-ins, patients and cases in
several states; it refuses a second run and refuses production outright."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import Result
from flask import Flask

from referral import create_app
from referral.cli import upgrade_database
from referral.models import Claim, Organization, Patient, Referral, User
from referral.models.enums import ReferralStatus, SubscriberRelationship
from storage import LocalStorage
from tests.support.settings import make_settings
from tests.support.web import form_token

pytestmark = pytest.mark.slow


def _fresh_app(tmp_path: Path, **overrides: object):
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'fresh.db'}", **overrides)
    app = create_app(settings, store=LocalStorage(tmp_path / "objects"))
    upgrade_database(app.extensions["referral.engine"])
    return app


def _run(app: Flask, *args: str) -> Result:
    with app.app_context():
        return app.test_cli_runner().invoke(args=list(args))


def test_the_demo_loads_on_a_fresh_database_and_its_sign_ins_work(tmp_path: Path):
    app = _fresh_app(tmp_path)
    result = _run(app, "demo")

    assert result.exit_code == 0, result.output
    people = dict(re.findall(r"^\s+(\S+@\S+)\s+(\S+)\s", result.stdout, re.MULTILINE))
    assert {"admin@riverside.example.com", "hygienist@riverside.example.com", "dentist@riverside.example.com",
            "reader@summit.example.com", "demo-admin@example.com"} <= set(people)
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Organization)) == 2
        statuses = {r.status for r in session.scalars(sa.select(Referral))}
        assert {ReferralStatus.DRAFT, ReferralStatus.ROUTED, ReferralStatus.ACCEPTED} <= statuses
        assert len(statuses) >= 4
        assert session.scalar(sa.select(sa.func.count()).select_from(Claim)) == 2
        patients = list(session.scalars(sa.select(Patient)))
        child = next(p for p in patients if p.first_name == "Liam")
        assert child.coverage_relationship == SubscriberRelationship.CHILD
        assert child.coverage_subscriber_first_name == "Jane"
        assert any(p.coverage_payer_id is None for p in patients)
        assert all(u.password_hash for u in session.scalars(sa.select(User)))

    client = app.test_client()
    token = form_token(client.get("/login").get_data(as_text=True))
    signed_in = client.post("/login", data={"email": "reader@summit.example.com",
                                            "password": people["reader@summit.example.com"], "csrf_token": token})
    assert signed_in.status_code == 303

    again = _run(app, "demo")
    assert again.exit_code != 0
    assert "already loaded" in again.output


def test_the_demo_is_refused_in_production(tmp_path: Path):
    app = _fresh_app(tmp_path)
    app.extensions["referral.settings"] = dataclasses.replace(app.extensions["referral.settings"], env="production")

    result = _run(app, "demo")

    assert result.exit_code != 0
    assert "never loaded in production" in result.output
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(User)) == 0
