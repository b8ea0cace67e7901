"""Faults during image intake, on PostgreSQL and S3: a store that refuses writes or deletes, a commit that
fails after the objects were written, and the database going away mid-request. In every case the client is
told the upload failed, no row appears, and whatever the failure left in the store is found by
`storage check` and removed by `--repair`."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy import event
from sqlalchemy.orm import Session

from referral.models import AuditEvent, Image
from tests.support import samples
from tests.support.api import new_referral, upload
from tests.support.faults import (
    ALL_ZERO,
    assert_nothing_lost_and_nothing_extra,
    image_keys,
    storage_check,
    stored_images,
    verdict,
)
from tests.support.settings import POSTGRES_SERVER
from tests.support.store_doubles import FlakyStore
from tests.support.world import Practice


def _content(practice: Practice) -> Any:
    def download(image_id: str) -> bytes:
        response = practice.staff.get(f"/api/v1/images/{image_id}/content")
        assert response.status_code == 200, response.get_json()
        return bytes(response.data)
    return download


def _acknowledged_upload(practice: Practice, referral_id: str, data: bytes, **kwargs: Any) -> dict[str, str]:
    response = upload(practice.staff, practice, referral_id, data, **kwargs)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["sha256"] == hashlib.sha256(data).hexdigest()
    return {response.get_json()["id"]: response.get_json()["sha256"]}


@pytest.fixture
def failing_commit(app: Flask) -> Iterator[dict[str, bool]]:
    """While ``armed``, a commit whose transaction inserted an image fails the way a lost database
    connection does: after the objects were written, before the row exists."""
    factory = app.extensions["referral.sessionmaker"]
    switch = {"armed": False}

    def remember_images(session: Session, _context: Any) -> None:
        if any(isinstance(obj, Image) for obj in session.new):
            session.info["inserted_image"] = True

    def fail(session: Session) -> None:
        if switch["armed"] and session.info.pop("inserted_image", False):
            raise sa.exc.OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))

    event.listen(factory, "after_flush", remember_images)
    event.listen(factory, "before_commit", fail)
    yield switch
    event.remove(factory, "before_commit", fail)
    event.remove(factory, "after_flush", remember_images)


def test_a_store_refusing_writes_answers_503_and_leaves_no_row_and_no_object(
        app: Flask, flaky_store: FlakyStore, riverside: Practice):
    referral_id = new_referral(riverside)
    acknowledged = _acknowledged_upload(riverside, referral_id, samples.dicom_bytes())
    flaky_store.fail_puts = True

    refused = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes(kvp=65.0))

    assert refused.status_code == 503
    assert "nothing was stored" in refused.get_json()["message"]
    flaky_store.fail_puts = False
    assert len(image_keys(app)) == 3, "only the acknowledged image's original, preview and thumbnail"
    assert_nothing_lost_and_nothing_extra(app, acknowledged, _content(riverside))


def test_a_commit_failing_after_the_objects_were_written_leaves_no_row_and_deletes_the_objects(
        app: Flask, riverside: Practice, failing_commit: dict[str, bool]):
    referral_id = new_referral(riverside)
    acknowledged = _acknowledged_upload(riverside, referral_id, samples.dicom_bytes())
    failing_commit["armed"] = True

    failed = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes(kvp=65.0))

    assert failed.status_code == 503
    assert failed.get_json()["message"] == "The database is unavailable; try again shortly."
    assert len(stored_images(app)) == 1
    # The intake's own cleanup removed what it had written: nothing is left for the sweep.
    assert len(image_keys(app)) == 3
    failing_commit["armed"] = False
    assert_nothing_lost_and_nothing_extra(app, acknowledged, _content(riverside))


def test_a_failed_commit_whose_cleanup_the_store_refuses_leaves_orphans_that_repair_removes(
        app: Flask, flaky_store: FlakyStore, riverside: Practice, failing_commit: dict[str, bool]):
    referral_id = new_referral(riverside)
    acknowledged = _acknowledged_upload(riverside, referral_id, samples.dicom_bytes())
    failing_commit["armed"] = True
    flaky_store.fail_deletes = True

    failed = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes(kvp=65.0))

    assert failed.status_code == 503
    failing_commit["armed"] = False
    flaky_store.fail_deletes = False
    orphans = sorted(flaky_store.failed_deletes)
    assert len(orphans) == 3, "the original, preview and thumbnail the cleanup could not delete"
    assert stored_images(app) == acknowledged

    status, found = storage_check(app)
    assert status == 0, "orphans are untidy, not a loss"
    assert verdict(found) == {**ALL_ZERO, "orphan_objects": 3}
    assert sorted(p["key"] for p in found["problems"] if p["problem"] == "orphan") == orphans
    # Within the grace period an orphan may be an upload about to commit: repair leaves it.
    _, young = storage_check(app, "--repair")
    assert (young["orphans_in_grace"], young["orphans_removed"]) == (3, 0)
    assert sorted(image_keys(app)) == sorted([*orphans, *_keys_of(app, acknowledged)])

    _, repaired = storage_check(app, "--repair", "--grace-minutes", "0")

    assert repaired["orphans_removed"] == 3
    assert sorted(image_keys(app)) == sorted(_keys_of(app, acknowledged))
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        removals = session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "storage.orphan_remove")).all()
    assert sorted(row.details["key"] for row in removals) == orphans
    assert {str(row.organization_id) for row in removals} == {riverside.id}
    assert_nothing_lost_and_nothing_extra(app, acknowledged, _content(riverside))


def _keys_of(app: Flask, images: dict[str, str]) -> list[str]:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        rows = session.scalars(sa.select(Image).where(Image.id.in_([uuid.UUID(i) for i in images]))).all()
        return [key for row in rows for key in (row.storage_key, row.preview_key, row.thumbnail_key) if key]


def test_the_database_going_away_after_the_objects_are_written_loses_nothing_acknowledged(
        app: Flask, flaky_store: FlakyStore, riverside: Practice, migrated_postgres: str):
    referral_id = new_referral(riverside)
    acknowledged = _acknowledged_upload(riverside, referral_id, samples.dicom_bytes())
    database = migrated_postgres.rsplit("/", 1)[1]

    def drop_every_connection(key: str) -> None:
        # Every session of the app's database is cut, the request's own included, as a failover would.
        if key.endswith(".thumb.jpg"):
            with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = %s AND pid <> pg_backend_pid()", (database,))

    flaky_store.after_put = drop_every_connection
    failed = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes(kvp=65.0))
    flaky_store.after_put = None

    assert failed.status_code == 503
    assert stored_images(app) == acknowledged
    assert len(image_keys(app)) == 3
    # The server recovers by itself once the database is back: the same upload now succeeds.
    acknowledged |= _acknowledged_upload(riverside, referral_id, samples.dicom_bytes(kvp=65.0))
    assert_nothing_lost_and_nothing_extra(app, acknowledged, _content(riverside))


def test_a_retry_with_the_same_key_after_a_failed_commit_stores_the_image_once(
        app: Flask, riverside: Practice, failing_commit: dict[str, bool]):
    referral_id = new_referral(riverside)
    data = samples.dicom_bytes()
    key = {"Idempotency-Key": "commit-fails-then-retry"}
    failing_commit["armed"] = True
    failed = upload(riverside.staff, riverside, referral_id, data, headers=key)
    failing_commit["armed"] = False

    retried = upload(riverside.staff, riverside, referral_id, data, headers=key)
    replayed = upload(riverside.staff, riverside, referral_id, data, headers=key)

    assert failed.status_code == 503
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried.headers
    assert (replayed.status_code, replayed.get_json()) == (201, retried.get_json())
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert_nothing_lost_and_nothing_extra(app, {retried.get_json()["id"]: hashlib.sha256(data).hexdigest()},
                                          _content(riverside))
