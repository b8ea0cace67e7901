"""Every referral has an accession number (unique within its practice) and a Study Instance UID."""

from __future__ import annotations

import re
import sqlite3
import uuid
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from flask import Flask
from pydicom.uid import UID

from referral.cli import alembic_config, upgrade_database
from referral.db import make_engine
from tests.support.api import new_referral
from tests.support.web import sign_in, user_with_password
from tests.support.world import Practice, World


def test_a_referral_carries_its_accession_number_and_study_uid_in_json_and_on_its_page(
        app: Flask, world: World, riverside: Practice):
    referral_id = new_referral(riverside)

    body = riverside.staff.get(f"/api/v1/referrals/{referral_id}").get_json()
    accession = body["accession_number"]
    assert re.fullmatch(r"[0-9A-Z]{1,16}", accession)
    assert UID(body["study_instance_uid"]).is_valid
    assert body["study_instance_uid"].startswith("2.25.")

    listed = riverside.staff.get("/api/v1/referrals").get_json()["items"]
    assert [item["accession_number"] for item in listed] == [accession]

    browser = app.test_client()
    sign_in(browser, user_with_password(world, riverside))
    page = browser.get(f"/referrals/{referral_id}")
    assert page.status_code == 200
    assert accession in page.get_data(as_text=True)


def test_accession_numbers_and_study_uids_differ_between_referrals(riverside: Practice):
    bodies = [riverside.staff.get(f"/api/v1/referrals/{new_referral(riverside)}").get_json() for _ in range(5)]
    assert len({b["accession_number"] for b in bodies}) == 5
    assert len({b["study_instance_uid"] for b in bodies}) == 5


def test_the_migration_gives_existing_referrals_theirs(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'backfill.db'}"
    engine = make_engine(url)
    config = alembic_config(url)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0014")
    org, user, provider, patient = (uuid.uuid4().hex for _ in range(4))
    referrals = [uuid.uuid4().hex for _ in range(3)]
    # Rows as an older release left them; the other rows they name do not matter to this migration.
    with sqlite3.connect(tmp_path / "backfill.db") as raw:
        raw.execute("PRAGMA foreign_keys=OFF")
        for referral_id in referrals:
            raw.execute(
                "INSERT INTO referrals (id, organization_id, patient_id, referring_provider_id, specialty, reason, "
                "teeth, urgency, due_at, mode, scope, place_of_service, status, created_by_user_id, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, 'endodontics', 'pain', '[]', 'routine', "
                "'2026-01-01 00:00:00', 'asynchronous', 'evaluate_only', '11', 'draft', ?, "
                "'2026-01-01 00:00:00', '2026-01-01 00:00:00')",
                (referral_id, org, patient, provider, user))
    upgrade_database(engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT accession_number, study_instance_uid FROM referrals")).all()
    engine.dispose()
    assert len(rows) == 3
    assert all(accession and len(accession) <= 16 for accession, _ in rows)
    assert len({accession for accession, _ in rows}) == 3
    assert all(UID(uid).is_valid for _, uid in rows)
