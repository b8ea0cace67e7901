"""`flask storage check`: rows and stored objects agree, and `--repair` makes them agree again; the worker's
periodic sweep. On both backends."""

from __future__ import annotations

import io
import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from referral.db import utcnow
from referral.models import AuditEvent, Image, MaintenanceRun, PendingUpload, Referral
from referral.models.images import ImageDeletionReason
from referral.services import integrity
from storage import Storage
from tests.support import samples
from tests.support.api import new_referral, upload
from tests.support.faults import ALL_ZERO, storage_check, verdict
from tests.support.settings import make_settings
from tests.support.world import Practice

pytestmark = pytest.mark.both_backends  # stored bytes or database behaviour: both set-ups

PHI = ("Jane", "Doe", "1980-01-01", "W123456789")


@pytest.fixture
def image(riverside: Practice) -> dict[str, Any]:
    referral_id = new_referral(riverside)
    response = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes())
    assert response.status_code == 201
    return dict(response.get_json())


def _row(app: Flask, image_id: str) -> Image:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        row = session.get(Image, uuid.UUID(image_id))
        assert row is not None
        return row


def _store(app: Flask) -> Storage:
    return app.extensions["referral.storage"]


def _audit(app: Flask, action: str) -> list[AuditEvent]:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        return list(session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)))


def _replace(store: Storage, key: str, data: bytes) -> None:
    store.delete(key)
    store.put(key, io.BytesIO(data), content_type="application/octet-stream")


def test_a_consistent_store_reports_all_zeros_with_every_checksum_verified(app: Flask, image: dict[str, Any]):
    status, report = storage_check(app)

    assert status == 0
    assert verdict(report) == ALL_ZERO
    assert (report["objects"], report["checksums_verified"], report["problems"]) == (3, 1, [])
    assert "orphans_removed" not in report, "a plain check changes nothing"


def test_an_object_no_row_names_is_an_orphan_removed_by_repair_only_after_the_grace_period(
        app: Flask, image: dict[str, Any], riverside: Practice):
    key = f"images/{riverside.id}/{uuid.uuid4()}/{uuid.uuid4()}"
    _store(app).put(key, io.BytesIO(b"left behind by a crash"), content_type="application/dicom")

    status, found = storage_check(app)
    _, young = storage_check(app, "--repair")
    _, repaired = storage_check(app, "--repair", "--grace-minutes", "0")
    _, after = storage_check(app)

    assert status == 0
    assert verdict(found) == {**ALL_ZERO, "orphan_objects": 1}
    assert found["problems"] == [{"problem": "orphan", "key": key, "in_grace": True, "removed": False}]
    assert (young["orphans_in_grace"], young["orphans_removed"]) == (1, 0)
    assert repaired["orphans_removed"] == 1
    assert not _store(app).exists(key)
    assert verdict(after) == ALL_ZERO
    [removal] = _audit(app, "storage.orphan_remove")
    assert str(removal.organization_id) == riverside.id
    assert removal.actor_user_id is None
    assert removal.details is not None
    assert removal.details["key"] == key
    assert _store(app).exists(_row(app, image["id"]).storage_key), "the image's own objects are untouched"


def test_a_repair_that_would_empty_most_of_the_store_removes_nothing(app: Flask, image: dict[str, Any],
                                                                     riverside: Practice):
    # What a worker pointed at the wrong or an emptied database sees: nearly everything is unnamed.
    strays = [f"images/{riverside.id}/{uuid.uuid4()}/{n}" for n in range(integrity.MASS_REMOVAL_FLOOR + 1)]
    for key in strays:
        _store(app).put(key, io.BytesIO(b"x"), content_type="application/octet-stream")

    status, refused = storage_check(app, "--repair", "--grace-minutes", "0")
    swept = integrity.sweep(app.extensions["referral.sessionmaker"], _store(app), every=timedelta(minutes=60),
                            grace=timedelta(0))
    forced_status, forced = storage_check(app, "--repair", "--grace-minutes", "0", "--allow-mass-removal")

    assert status == 1
    assert (refused["orphan_objects"], refused["orphans_removed"], refused["orphan_removal_refused"]) == (21, 0, True)
    assert swept is not None
    assert (swept.orphan_removal_refused, swept.orphans_removed) == (True, 0)
    assert (forced_status, forced["orphans_removed"]) == (0, 21)
    assert not any(_store(app).exists(key) for key in strays)
    assert _store(app).exists(_row(app, image["id"]).storage_key)


def test_a_missing_original_fails_the_check_is_flagged_by_repair_and_answers_503(
        app: Flask, image: dict[str, Any], riverside: Practice):
    row = _row(app, image["id"])
    with _store(app).open(row.storage_key) as fh:
        original = fh.read()
    _store(app).delete(row.storage_key)

    # Before any check, the lost object answers a clear 503, not a 500.
    unflagged = riverside.staff.get(f"/api/v1/images/{image['id']}/content")
    status, found = storage_check(app)

    assert unflagged.status_code == 503
    assert unflagged.get_json()["errors"] == {"integrity": ["missing"]}
    assert status == 1
    assert verdict(found) == {**ALL_ZERO, "missing_objects": 1}
    assert found["problems"] == [{"problem": "missing", "key": row.storage_key, "object": "original",
                                  "image_id": image["id"], "referral_id": image["referral_id"]}]
    assert _row(app, image["id"]).integrity_problem is None, "a check without --repair changes nothing"

    status, repaired = storage_check(app, "--repair")

    assert (status, repaired["images_flagged"]) == (1, 1)
    metadata = riverside.staff.get(f"/api/v1/images/{image['id']}").get_json()
    assert metadata["integrity_problem"] == "missing"
    assert metadata["integrity_problem_since"] is not None
    case = riverside.staff.get(f"/api/v1/referrals/{image['referral_id']}").get_json()
    assert case["images"][0]["integrity_problem"] == "missing"
    for path in ("content", "content?redirect=true"):
        flagged = riverside.staff.get(f"/api/v1/images/{image['id']}/{path}")
        assert flagged.status_code == 503, path
        assert flagged.get_json()["errors"] == {"integrity": ["missing"]}
        assert "missing" in flagged.get_json()["message"]
    assert riverside.staff.get(f"/api/v1/images/{image['id']}/preview").status_code == 200
    [flag] = _audit(app, "image.integrity_flag")
    assert (str(flag.object_id), flag.details) == (image["id"], {"problem": "missing"})
    assert not any(value in json.dumps(repaired) + json.dumps(flag.details) for value in PHI)
    assert storage_check(app, "--repair")[1]["images_flagged"] == 0, "flagged once"

    # Restored from a backup: the next repair verifies it and lifts the flag.
    _store(app).put(row.storage_key, io.BytesIO(original), content_type="application/dicom")
    status, restored = storage_check(app, "--repair", "--no-checksums")

    assert (status, restored["images_cleared"], verdict(restored)) == (0, 1, ALL_ZERO)
    assert riverside.staff.get(f"/api/v1/images/{image['id']}").get_json()["integrity_problem"] is None
    content = riverside.staff.get(f"/api/v1/images/{image['id']}/content")
    assert (content.status_code, content.data) == (200, original)
    assert [row.details for row in _audit(app, "image.integrity_restored")] == [{"previous": "missing"}]


def test_an_altered_original_is_a_checksum_mismatch_unless_checksums_are_skipped(
        app: Flask, image: dict[str, Any], riverside: Practice):
    key = _row(app, image["id"]).storage_key
    _replace(_store(app), key, samples.dicom_bytes(kvp=99.0))

    status, found = storage_check(app)
    quick_status, quick = storage_check(app, "--no-checksums")
    _, repaired = storage_check(app, "--repair")

    assert status == 1
    assert verdict(found) == {**ALL_ZERO, "checksum_mismatches": 1}
    assert found["problems"][0]["problem"] == "checksum_mismatch"
    assert (quick_status, verdict(quick), quick["checksums_verified"]) == (0, ALL_ZERO, 0)
    assert repaired["images_flagged"] == 1
    refused = riverside.staff.get(f"/api/v1/images/{image['id']}/content")
    assert refused.status_code == 503
    assert refused.get_json()["errors"] == {"integrity": ["checksum_mismatch"]}


def test_a_missing_preview_or_consent_form_is_reported_without_flagging_the_image(
        app: Flask, image: dict[str, Any], riverside: Practice):
    row = _row(app, image["id"])
    form = riverside.staff.client.put(
        f"/api/v1/referrals/{image['referral_id']}/consent/form",
        data={"file": (io.BytesIO(samples.pdf_bytes()), "consent.pdf")}, content_type="multipart/form-data",
        headers={"Authorization": f"Bearer {riverside.staff.token}"})
    assert form.status_code == 200, form.get_json()
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        form_key = session.get(Referral, uuid.UUID(image["referral_id"])).consent_form_key
    assert row.preview_key
    assert form_key
    _store(app).delete(row.preview_key)
    _store(app).delete(form_key)

    status, found = storage_check(app, "--repair")

    assert status == 1
    assert verdict(found) == {**ALL_ZERO, "missing_objects": 2}
    assert sorted((p["object"], p["key"]) for p in found["problems"]) == sorted(
        [("preview", row.preview_key), ("consent_form", form_key)])
    assert found["images_flagged"] == 0
    assert riverside.staff.get(f"/api/v1/images/{image['id']}/preview").status_code == 503
    assert riverside.staff.get(f"/api/v1/images/{image['id']}/content").status_code == 200


def test_live_upload_forms_and_deleted_images_awaiting_removal_are_neither_orphans_nor_missing(
        app: Flask, image: dict[str, Any], riverside: Practice):
    row = _row(app, image["id"])
    upload_key = f"uploads/{riverside.id}/{image['referral_id']}/{uuid.uuid4()}"
    _store(app).put(upload_key, io.BytesIO(b"sent through a form"), content_type="application/octet-stream")
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        session.add(PendingUpload(referral_id=row.referral_id, uploaded_by_user_id=row.uploaded_by_user_id,
                                  storage_key=upload_key, max_bytes=1000,
                                  expires_at=utcnow() + timedelta(minutes=15)))
        tombstone = session.get(Image, row.id)
        assert tombstone is not None
        tombstone.erase(ImageDeletionReason.RETENTION, utcnow())
        session.commit()
    _store(app).delete(row.thumbnail_key or "")  # half removed when the store failed

    status, report = storage_check(app, "--repair", "--grace-minutes", "0")

    assert (status, verdict(report), report["orphans_removed"]) == (0, ALL_ZERO, 0)
    assert _store(app).exists(upload_key)
    assert _store(app).exists(row.storage_key)
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        session.execute(sa.update(PendingUpload).values(swept_at=utcnow()))
        session.commit()
    # Once its form is swept, whatever is left under an upload key is an orphan.
    assert storage_check(app, "--repair", "--grace-minutes", "0")[1]["orphans_removed"] == 1
    assert not _store(app).exists(upload_key)


def test_the_worker_sweeps_orphans_at_most_every_configured_interval(
        tmp_path: Any, database_url: str, store: Storage, riverside: Practice):
    from referral import create_app

    worker_app = create_app(make_settings(tmp_path, database_url, storage_orphan_grace_minutes=0,
                                          storage_sweep_minutes=30), store=store)

    def worker_pass() -> dict[str, int]:
        with worker_app.app_context():
            return dict(json.loads(worker_app.test_cli_runner().invoke(args=["worker", "--once"]).stdout))

    try:
        first = f"images/{riverside.id}/{uuid.uuid4()}/a"
        second = f"images/{riverside.id}/{uuid.uuid4()}/b"
        store.put(first, io.BytesIO(b"x"), content_type="application/octet-stream")

        swept = worker_pass()
        store.put(second, io.BytesIO(b"y"), content_type="application/octet-stream")
        not_due = worker_pass()
        with worker_app.app_context(), worker_app.extensions["referral.sessionmaker"]() as session:
            session.execute(sa.update(MaintenanceRun).values(last_started_at=utcnow() - timedelta(minutes=31)))
            session.commit()
        due_again = worker_pass()
    finally:
        worker_app.extensions["referral.engine"].dispose()

    assert swept == {"delivered": 0, "failed": 0, "dead": 0, "orphans_removed": 1}
    assert not_due == {"delivered": 0, "failed": 0, "dead": 0}
    assert due_again == {"delivered": 0, "failed": 0, "dead": 0, "orphans_removed": 1}
    assert not store.exists(first)
    assert not store.exists(second)


def test_the_worker_leaves_young_orphans_and_flags_missing_originals(
        app: Flask, image: dict[str, Any], riverside: Practice):
    young = f"images/{riverside.id}/{uuid.uuid4()}/in-flight"
    _store(app).put(young, io.BytesIO(b"commit still in flight"), content_type="application/octet-stream")
    _store(app).delete(_row(app, image["id"]).storage_key)

    result = app.test_cli_runner().invoke(args=["worker", "--once"])

    assert json.loads(result.stdout) == {"delivered": 0, "failed": 0, "dead": 0, "missing_objects": 1,
                                         "images_flagged": 1}
    assert _store(app).exists(young), "younger than the default 60-minute grace period"
    assert _row(app, image["id"]).integrity_problem == "missing"


def test_only_one_of_several_workers_claims_a_due_sweep(app: Flask):
    factory = app.extensions["referral.sessionmaker"]
    every = timedelta(minutes=60)
    now = utcnow()

    claims = [integrity.claim_periodic_run(factory, "storage_sweep", every, now) for _ in range(3)]
    later = integrity.claim_periodic_run(factory, "storage_sweep", every, now + every)

    assert claims == [True, False, False]
    assert later is True


def test_the_sweep_settings_come_from_the_environment(tmp_path: Any):
    from referral.config import ConfigError, load_settings

    base = {"APP_ENV": "test", "INSTANCE_PATH": str(tmp_path)}
    defaults = load_settings(base).to_flask_config()
    assert (defaults["STORAGE_SWEEP_MINUTES"], defaults["STORAGE_ORPHAN_GRACE_MINUTES"]) == (60, 60)
    configured = load_settings({**base, "STORAGE_SWEEP_MINUTES": "15", "STORAGE_ORPHAN_GRACE_MINUTES": "240"})
    assert (configured.storage_sweep_minutes, configured.storage_orphan_grace_minutes) == (15, 240)
    with pytest.raises(ConfigError, match="STORAGE_ORPHAN_GRACE_MINUTES"):
        load_settings({**base, "STORAGE_ORPHAN_GRACE_MINUTES": "0"})
