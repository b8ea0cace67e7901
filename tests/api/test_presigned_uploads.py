"""Large files go from the client straight to S3 with a presigned POST, and completion checks them
exactly as a direct upload is checked. The form is sent the way a browser sends it: a real
multipart POST over HTTP to the moto server."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from flask import Flask

from referral.config import Settings
from referral.models import AuditEvent, Image, PendingUpload, PendingUploadStatus
from referral.services import direct_uploads, renditions
from storage import ObjectHead, StorageUnavailable
from tests.support import samples
from tests.support.api import CAPTURED_AT, new_referral, upload
from tests.support.settings import make_settings
from tests.support.world import Client, Practice

pytestmark = pytest.mark.both_backends  # stored bytes or database behaviour: both set-ups

MAX_BYTES = 1024 * 1024


@pytest.fixture(params=["postgres-s3"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def app_settings(tmp_path: Path, database_url: str) -> Settings:
    # A small limit, so an oversize file is quick to send.
    return make_settings(tmp_path, database_url, max_upload_bytes=MAX_BYTES)


def start(client: Client, referral_id: str) -> Any:
    return client.post(f"/api/v1/referrals/{referral_id}/images/uploads")


def started(client: Client, referral_id: str) -> dict[str, Any]:
    response = start(client, referral_id)
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def post_form(form: dict[str, Any], data: bytes, filename: str = "scan.dcm") -> None:
    """What a browser does with the form: the fields, then the file, as multipart/form-data."""
    with requests.post(form["url"], data=form["fields"], files={"file": (filename, data, "application/octet-stream")},
                       timeout=30) as response:
        assert response.status_code in (200, 201, 204), response.text


def complete(client: Client, practice: Practice, form: dict[str, Any], data: bytes,
             headers: dict[str, str] | None = None, **overrides: Any) -> Any:
    body: dict[str, Any] = {
        "kind": "periapical",
        "teeth": ["19"],
        "reason": "Pain to cold, lower left",
        "captured_at": CAPTURED_AT,
        "captured_by_provider_id": practice.hygienist_provider_id,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    body.update(overrides)
    return client.post(form["complete_url"], {k: v for k, v in body.items() if v is not None}, headers=headers)


def objects(app: Flask, prefix: str) -> list[str]:
    return list(app.extensions["referral.storage"].keys(prefix))


def pending_row(app: Flask, upload_id: str) -> PendingUpload:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        row = session.get(PendingUpload, uuid.UUID(upload_id))
        assert row is not None
        return row


def image_rows(app: Flask) -> int:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(Image)) or 0


def move_expiry(app: Flask, upload_id: str, expires_at: datetime) -> None:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        session.execute(sa.update(PendingUpload).where(PendingUpload.id == uuid.UUID(upload_id))
                        .values(expires_at=expires_at))
        session.commit()


def assert_spent(app: Flask, upload_id: str, status: PendingUploadStatus, reason: str) -> None:
    row = pending_row(app, upload_id)
    assert row.status == status
    assert row.failure_reason == reason
    assert row.image_id is None
    assert objects(app, "uploads/") == [], "the uploaded object was not deleted"
    assert objects(app, "images/") == []
    assert image_rows(app) == 0


def test_a_file_posted_to_the_form_becomes_an_image_that_downloads_byte_for_byte(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    data = samples.dicom_bytes(rows=256, columns=256, kvp=65.0)
    form = started(riverside.staff, referral_id)

    post_form(form, data, filename="../../evil name.dcm")
    response = complete(riverside.staff, riverside, form, data, filename="scan.dcm")

    assert response.status_code == 201, response.get_json()
    image = response.get_json()
    assert image["sha256"] == hashlib.sha256(data).hexdigest()
    assert image["size"] == len(data)
    assert image["content_type"] == "application/dicom"
    assert image["dicom"]["kvp"] == 65.0
    assert image["original_filename"] == "scan.dcm"
    download = riverside.dentist.get(f"/api/v1/images/{image['id']}/content")
    assert download.status_code == 200
    assert hashlib.sha256(download.data).hexdigest() == hashlib.sha256(data).hexdigest()
    # The bytes never passed through the app servers: the worker draws the previews, not the answering process.
    assert image["preview_status"] == "pending"
    assert objects(app, "images/") == [f"images/{riverside.id}/{referral_id}/{image['id']}"]
    drawn = renditions.draw_pending_images(app.extensions["referral.sessionmaker"], app.extensions["referral.storage"])
    assert drawn.ids == [uuid.UUID(image["id"])]
    assert drawn.drawn == 1
    preview = riverside.dentist.get(image["preview_url"])
    assert preview.status_code == 200
    assert preview.headers["Content-Type"] == "image/jpeg"
    assert riverside.dentist.get(f"/api/v1/images/{image['id']}").get_json()["preview_status"] == "ready"
    # The original, its preview and its thumbnail at the image's own keys; the upload key is cleared.
    original = f"images/{riverside.id}/{referral_id}/{image['id']}"
    keys = sorted(objects(app, "images/"))
    assert keys[0] == original
    assert [re.fullmatch(re.escape(original) + r"\.[0-9a-f]{12}\.(preview|thumb)\.jpg", key) is not None
            for key in keys[1:]] == [True, True]
    assert objects(app, "uploads/") == []
    row = pending_row(app, form["upload_id"])
    assert row.status == PendingUploadStatus.COMPLETED
    assert str(row.image_id) == image["id"]
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        actions = [e.action for e in session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id))
                   if e.actor_user_id == uuid.UUID(riverside.users["staff"])]
    assert {"image_upload.start", "image.create", "image_upload.complete"} <= set(actions)


def test_the_form_is_signed_for_a_server_made_key_a_size_range_a_fixed_type_and_fifteen_minutes(
        app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    before = datetime.now(UTC).replace(microsecond=0)

    form = started(riverside.staff, referral_id)

    fields = form["fields"]
    policy = json.loads(base64.b64decode(fields["policy"]))
    expiration = datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert timedelta(0) < expiration - before <= timedelta(minutes=15)
    assert datetime.fromisoformat(form["expires_at"]) <= expiration
    assert ["content-length-range", 1, MAX_BYTES] in policy["conditions"]
    assert {"Content-Type": "application/octet-stream"} in policy["conditions"]
    assert fields["Content-Type"] == "application/octet-stream"
    assert {"key": fields["key"]} in policy["conditions"]
    assert fields["key"] == f"referral/uploads/{riverside.id}/{referral_id}/{form['upload_id']}"
    assert form["max_bytes"] == MAX_BYTES
    assert form["complete_url"] == f"/api/v1/referrals/{referral_id}/images/uploads/{form['upload_id']}/complete"
    assert datetime.fromisoformat(form["complete_by"]) > datetime.fromisoformat(form["expires_at"])
    assert pending_row(app, form["upload_id"]).status == PendingUploadStatus.PENDING


def test_an_object_over_the_size_limit_is_refused_with_413_and_deleted(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    too_big = samples.dicom_bytes(rows=800, columns=800)
    assert len(too_big) > MAX_BYTES
    form = started(riverside.staff, referral_id)

    # S3 refuses this POST by the policy's content-length-range; moto does not enforce POST policy
    # conditions at all, so the object arrives and this checks the server's own refusal at completion.
    post_form(form, too_big)
    response = complete(riverside.staff, riverside, form, too_big)

    assert response.status_code == 413
    assert "limit" in response.get_json()["message"]
    assert_spent(app, form["upload_id"], PendingUploadStatus.FAILED, "too_large")


@pytest.mark.parametrize(
    ("declared", "field", "reason"),
    [({"sha256": "0" * 64}, "sha256", "checksum_mismatch"), ({"size": 1234}, "size", "size_mismatch")],
    ids=["checksum", "size"],
)
def test_a_file_that_differs_from_what_was_declared_is_refused_and_deleted(
        app: Flask, riverside: Practice, declared: dict[str, Any], field: str, reason: str):
    referral_id = new_referral(riverside)
    data = samples.dicom_bytes()
    form = started(riverside.staff, referral_id)
    post_form(form, data)

    response = complete(riverside.staff, riverside, form, data, **declared)

    assert response.status_code == 422
    assert field in response.get_json()["errors"]
    assert "nothing was stored" in response.get_json()["message"]
    assert_spent(app, form["upload_id"], PendingUploadStatus.FAILED, reason)
    again = complete(riverside.staff, riverside, form, data)
    assert again.status_code == 409
    assert "refused" in again.get_json()["message"]


@pytest.mark.parametrize(
    ("data", "status", "reason"),
    [
        (samples.html_bytes(), 415, "unsupported_type"),
        (samples.truncated(samples.dicom_bytes(rows=128, columns=128)), 422, "file_refused"),
        (samples.dicom_bytes(patient_name="Smith^John"), 422, "file_refused"),
    ],
    ids=["html", "truncated-dicom", "other-patient"],
)
def test_a_file_the_direct_upload_refuses_gets_the_same_answer_and_is_deleted(
        app: Flask, riverside: Practice, data: bytes, status: int, reason: str):
    referral_id = new_referral(riverside)
    direct = upload(riverside.staff, riverside, referral_id, data)
    form = started(riverside.staff, referral_id)
    post_form(form, data)

    response = complete(riverside.staff, riverside, form, data)

    assert direct.status_code == response.status_code == status
    assert response.get_json() == direct.get_json()
    assert_spent(app, form["upload_id"], PendingUploadStatus.FAILED, reason)


def test_an_upload_never_completed_is_swept_once_its_form_has_expired(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    form = started(riverside.staff, referral_id)
    post_form(form, samples.dicom_bytes())
    expires_at = pending_row(app, form["upload_id"]).expires_at
    factory, store = app.extensions["referral.sessionmaker"], app.extensions["referral.storage"]

    early = direct_uploads.sweep_expired_uploads(factory, store, now=expires_at)
    late = direct_uploads.sweep_expired_uploads(
        factory, store, now=expires_at + direct_uploads.COMPLETION_GRACE + timedelta(seconds=1))
    again = direct_uploads.sweep_expired_uploads(factory, store, now=expires_at + timedelta(days=1))

    assert (early, late, again) == (0, 1, 0)
    row = pending_row(app, form["upload_id"])
    assert row.status == PendingUploadStatus.EXPIRED
    assert row.swept_at is not None
    assert objects(app, "uploads/") == []


def test_the_worker_sweeps_expired_uploads(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    form = started(riverside.staff, referral_id)
    post_form(form, samples.dicom_bytes())
    move_expiry(app, form["upload_id"], datetime.now(UTC) - timedelta(hours=1))

    result = app.test_cli_runner().invoke(args=["worker", "--once"])

    assert result.exit_code == 0, result.output
    # The summary is the last line; log records may come before it.
    assert json.loads(result.stdout)["uploads_swept"] == 1
    assert_spent(app, form["upload_id"], PendingUploadStatus.EXPIRED, "expired")


def test_a_form_used_again_after_completion_cannot_change_the_image(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    data = samples.dicom_bytes()
    form = started(riverside.staff, referral_id)
    post_form(form, data)
    image = complete(riverside.staff, riverside, form, data).get_json()

    # Until it expires the form still works; it writes only to the upload key, never the image's.
    post_form(form, samples.dicom_bytes(kvp=90.0))
    download = riverside.staff.get(f"/api/v1/images/{image['id']}/content")
    expires_at = pending_row(app, form["upload_id"]).expires_at
    factory, store = app.extensions["referral.sessionmaker"], app.extensions["referral.storage"]
    swept = direct_uploads.sweep_expired_uploads(factory, store, now=expires_at + timedelta(hours=1))

    assert download.data == data
    assert swept == 1
    assert objects(app, "uploads/") == []
    assert pending_row(app, form["upload_id"]).status == PendingUploadStatus.COMPLETED


def test_an_expired_upload_cannot_be_completed_and_its_object_is_deleted(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    data = samples.dicom_bytes()
    form = started(riverside.staff, referral_id)
    post_form(form, data)
    move_expiry(app, form["upload_id"], datetime.now(UTC) - timedelta(hours=1))

    response = complete(riverside.staff, riverside, form, data)

    assert response.status_code == 409
    assert "expired" in response.get_json()["message"]
    assert_spent(app, form["upload_id"], PendingUploadStatus.EXPIRED, "expired")


def test_completing_twice_is_a_conflict_that_names_the_image(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    data = samples.dicom_bytes()
    form = started(riverside.staff, referral_id)
    post_form(form, data)

    first = complete(riverside.staff, riverside, form, data)
    second = complete(riverside.staff, riverside, form, data)

    assert first.status_code == 201
    assert second.status_code == 409
    assert first.get_json()["id"] in second.get_json()["message"]
    assert image_rows(app) == 1


def test_two_completions_racing_make_one_image(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    data = samples.dicom_bytes()
    form = started(riverside.staff, referral_id)
    post_form(form, data)
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def race() -> None:
        client = Client(app.test_client(), riverside.staff.token)
        barrier.wait()
        statuses.append(complete(client, riverside, form, data).status_code)

    threads = [threading.Thread(target=race) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(statuses) == [201, 409]
    assert image_rows(app) == 1
    assert len(objects(app, "images/")) == 1, "the loser's copy was removed (previews are the worker's)"
    assert objects(app, "uploads/") == []


def test_a_retried_completion_with_the_same_idempotency_key_gets_the_first_response(app: Flask,
                                                                                     riverside: Practice):
    referral_id = new_referral(riverside)
    data = samples.dicom_bytes()
    form = started(riverside.staff, referral_id)
    post_form(form, data)
    key = {"Idempotency-Key": "complete-1"}

    first = complete(riverside.staff, riverside, form, data, headers=key)
    retried = complete(riverside.staff, riverside, form, data, headers=key)
    different = complete(riverside.staff, riverside, form, data, headers=key, reason="Another reason")

    assert first.status_code == retried.status_code == 201
    assert retried.get_json() == first.get_json()
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert different.status_code == 409
    assert image_rows(app) == 1


def test_completing_before_the_file_arrives_is_a_conflict_and_the_upload_stays_usable(app: Flask,
                                                                                       riverside: Practice):
    referral_id = new_referral(riverside)
    data = samples.dicom_bytes()
    form = started(riverside.staff, referral_id)

    early = complete(riverside.staff, riverside, form, data)
    post_form(form, data)
    on_time = complete(riverside.staff, riverside, form, data)

    assert early.status_code == 409
    assert "No file has arrived" in early.get_json()["message"]
    assert on_time.status_code == 201, on_time.get_json()


def test_a_store_outage_during_completion_answers_503_and_the_upload_can_be_completed_again(
        app: Flask, riverside: Practice, monkeypatch: pytest.MonkeyPatch):
    referral_id = new_referral(riverside)
    data = samples.dicom_bytes()
    form = started(riverside.staff, referral_id)
    post_form(form, data)

    def unreachable(source: str, destination: str) -> None:
        raise StorageUnavailable("injected failure")

    with monkeypatch.context() as patch:
        patch.setattr(app.extensions["referral.storage"], "copy", unreachable)
        outage = complete(riverside.staff, riverside, form, data)
    assert outage.status_code == 503
    assert "nothing was stored" in outage.get_json()["message"]
    assert pending_row(app, form["upload_id"]).status == PendingUploadStatus.PENDING
    assert objects(app, "images/") == []

    retried = complete(riverside.staff, riverside, form, data)

    assert retried.status_code == 201, retried.get_json()
    assert objects(app, "uploads/") == []


def test_a_bad_form_field_leaves_the_upload_pending_to_be_completed_again(app: Flask, riverside: Practice,
                                                                           hillside: Practice):
    referral_id = new_referral(riverside)
    data = samples.dicom_bytes()
    form = started(riverside.staff, referral_id)
    post_form(form, data)

    wrong_provider = complete(riverside.staff, riverside, form, data,
                              captured_by_provider_id=hillside.hygienist_provider_id)
    bad_digest = complete(riverside.staff, riverside, form, data, sha256="not-hex")
    fixed = complete(riverside.staff, riverside, form, data)

    assert wrong_provider.status_code == 422
    assert "captured_by_provider_id" in wrong_provider.get_json()["errors"]
    assert bad_digest.status_code == 422
    assert "sha256" in bad_digest.get_json()["errors"]["json"]
    assert fixed.status_code == 201, fixed.get_json()


def test_another_organization_gets_404_and_a_colleague_cannot_complete_someone_elses_upload(
        app: Flask, riverside: Practice, hillside: Practice):
    referral_id = new_referral(riverside)
    data = samples.dicom_bytes()
    form = started(riverside.staff, referral_id)
    post_form(form, data)

    assert start(hillside.staff, referral_id).status_code == 404
    assert complete(hillside.staff, hillside, form, data).status_code == 404
    assert riverside.staff.post(
        f"/api/v1/referrals/{new_referral(riverside)}/images/uploads/{form['upload_id']}/complete",
        {"kind": "periapical", "teeth": ["19"], "reason": "r", "captured_at": CAPTURED_AT,
         "captured_by_provider_id": riverside.hygienist_provider_id, "size": len(data),
         "sha256": hashlib.sha256(data).hexdigest()},
    ).status_code == 404, "an upload is found only under its own referral"
    colleague = complete(riverside.dentist, riverside, form, data)
    assert colleague.status_code == 403
    assert start(riverside.billing, referral_id).status_code == 403
    assert complete(riverside.staff, riverside, form, data).status_code == 201


def test_a_cancelled_referral_hands_out_no_form(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    assert riverside.staff.post(f"/api/v1/referrals/{referral_id}/cancel", {}).status_code == 200

    response = start(riverside.staff, referral_id)

    assert response.status_code == 409
    assert "draft" in response.get_json()["message"]


@pytest.mark.parametrize("backend", ["sqlite-local"], indirect=True)
def test_local_storage_answers_409_pointing_at_the_regular_upload(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)

    response = start(riverside.staff, referral_id)

    assert response.status_code == 409
    body = response.get_json()
    assert "S3" in body["message"]
    assert f"/api/v1/referrals/{referral_id}/images" in body["message"]
    assert "storage" in body["errors"]
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(PendingUpload)) == 0
    assert objects(app, "") == []


# -- the file's digest declared up front, and checked by S3 instead of by reading the file ----------------------


class StoreReads:
    """Counts what the app's store reads, for the tests that show a file was not downloaded whole."""

    def __init__(self, app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
        self.opened: list[str] = []
        self.ranged = 0
        store = app.extensions["referral.storage"]
        whole, ranged = store.open, store.open_range

        def open_counted(key: str) -> Any:
            self.opened.append(key)
            return whole(key)

        def open_range_counted(key: str, start: int, length: int) -> bytes:
            data = bytes(ranged(key, start, length))
            self.ranged += len(data)
            return data

        monkeypatch.setattr(store, "open", open_counted)
        monkeypatch.setattr(store, "open_range", open_range_counted)


def started_with_digest(client: Client, referral_id: str, data: bytes) -> dict[str, Any]:
    response = client.post(f"/api/v1/referrals/{referral_id}/images/uploads",
                           {"sha256": hashlib.sha256(data).hexdigest()})
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def pending_rows(app: Flask) -> int:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(PendingUpload)) or 0


def test_a_declared_digest_is_pinned_in_the_form_as_s3s_sha256_checksum(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    data = samples.dicom_bytes()
    digest = hashlib.sha256(data)

    response = riverside.staff.post(f"/api/v1/referrals/{referral_id}/images/uploads",
                                    {"sha256": digest.hexdigest().upper()})

    assert response.status_code == 201, response.get_json()
    fields = response.get_json()["fields"]
    sent = base64.b64encode(digest.digest()).decode()
    assert fields["x-amz-checksum-algorithm"] == "SHA256"
    assert fields["x-amz-checksum-sha256"] == sent
    conditions = json.loads(base64.b64decode(fields["policy"]))["conditions"]
    assert {"x-amz-checksum-algorithm": "SHA256"} in conditions
    assert {"x-amz-checksum-sha256": sent} in conditions


@pytest.mark.parametrize("sha256", ["0" * 63, "g" * 64, 12345, "", None], ids=["short", "not-hex", "number",
                                                                                "empty", "null"])
def test_a_malformed_declared_digest_is_refused_with_422_and_no_upload_is_started(
        app: Flask, riverside: Practice, sha256: Any):
    referral_id = new_referral(riverside)

    response = riverside.staff.post(f"/api/v1/referrals/{referral_id}/images/uploads", {"sha256": sha256})

    assert response.status_code == 422
    assert "sha256" in response.get_json()["errors"]["json"]
    assert pending_rows(app) == 0


def test_a_dicom_file_s3_vouches_for_is_admitted_from_its_header_without_downloading_it(
        app: Flask, riverside: Practice, monkeypatch: pytest.MonkeyPatch):
    referral_id = new_referral(riverside)
    data = samples.dicom_bytes(rows=512, columns=640, kvp=65.0)
    form = started_with_digest(riverside.staff, referral_id, data)
    post_form(form, data)
    reads = StoreReads(app, monkeypatch)

    response = complete(riverside.staff, riverside, form, data)

    assert response.status_code == 201, response.get_json()
    image = response.get_json()
    assert image["sha256"] == hashlib.sha256(data).hexdigest()
    assert image["size"] == len(data)
    assert image["dicom"]["kvp"] == 65.0
    assert image["preview_status"] == "pending"
    # One window from the start of the copy; the 640 KB of pixels stay in the store.
    assert reads.opened == []
    assert 0 < reads.ranged <= direct_uploads.HEADER_RANGE < len(data) // 8
    monkeypatch.undo()
    download = riverside.dentist.get(f"/api/v1/images/{image['id']}/content")
    assert download.data == data


def test_a_dicom_header_longer_than_the_first_range_is_read_on_as_far_as_it_goes(
        app: Flask, riverside: Practice, monkeypatch: pytest.MonkeyPatch):
    def long_header(ds: Any) -> None:
        ds.add_new(0x00091010, "OB", b"\x01" * (150 * 1024))

    referral_id = new_referral(riverside)
    data = samples.dicom_bytes(rows=512, columns=640, mutate=long_header)
    pixels_start = len(data) - 512 * 640 * 2
    assert pixels_start > direct_uploads.HEADER_RANGE
    form = started_with_digest(riverside.staff, referral_id, data)
    post_form(form, data)
    reads = StoreReads(app, monkeypatch)

    response = complete(riverside.staff, riverside, form, data)

    assert response.status_code == 201, response.get_json()
    assert reads.opened == []
    assert pixels_start < reads.ranged < len(data)


def test_a_body_whose_digest_differs_from_the_one_declared_is_refused_without_being_read(
        app: Flask, riverside: Practice, monkeypatch: pytest.MonkeyPatch):
    referral_id = new_referral(riverside)
    declared = samples.dicom_bytes()
    sent = samples.dicom_bytes(kvp=90.0)
    assert len(sent) == len(declared)
    form = started_with_digest(riverside.staff, referral_id, declared)
    # S3 refuses this POST (BadDigest); moto stores it (tests/storage/test_presigned_post.py), so here it is the
    # completion that refuses it, by the SHA-256 moto computed of the copy.
    post_form(form, sent)
    reads = StoreReads(app, monkeypatch)

    response = complete(riverside.staff, riverside, form, declared)

    assert response.status_code == 422
    assert response.get_json()["errors"]["sha256"] == [
        f"The uploaded file's SHA-256 is {hashlib.sha256(sent).hexdigest()}."]
    assert "nothing was stored" in response.get_json()["message"]
    assert reads.opened == []
    assert reads.ranged == 0
    monkeypatch.undo()
    assert_spent(app, form["upload_id"], PendingUploadStatus.FAILED, "checksum_mismatch")


def test_a_completion_that_declares_no_digest_is_refused_and_the_upload_stays_pending(
        app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    data = samples.dicom_bytes()
    form = started_with_digest(riverside.staff, referral_id, data)
    post_form(form, data)

    undeclared = complete(riverside.staff, riverside, form, data, sha256=None)

    assert undeclared.status_code == 422
    assert "sha256" in undeclared.get_json()["errors"]["json"]
    assert image_rows(app) == 0
    assert objects(app, "images/") == []
    assert pending_row(app, form["upload_id"]).status == PendingUploadStatus.PENDING
    assert complete(riverside.staff, riverside, form, data).status_code == 201


@pytest.mark.parametrize(
    "data",
    [
        samples.dicom_bytes()[:200],
        samples.dicom_bytes()[:132] + b"\xff" * 4000,
        samples.truncated(samples.dicom_bytes(rows=128, columns=128), keep=0.9),
    ],
    ids=["header-cut-short", "garbage-after-the-marker", "pixels-cut-short"],
)
def test_a_vouched_for_dicom_with_a_broken_header_gets_the_direct_uploads_answer_and_nothing_is_stored(
        app: Flask, riverside: Practice, monkeypatch: pytest.MonkeyPatch, data: bytes):
    referral_id = new_referral(riverside)
    direct = upload(riverside.staff, riverside, referral_id, data)
    form = started_with_digest(riverside.staff, referral_id, data)
    post_form(form, data)
    reads = StoreReads(app, monkeypatch)

    response = complete(riverside.staff, riverside, form, data)

    assert direct.status_code == response.status_code == 422
    assert response.get_json() == direct.get_json()
    assert reads.opened == []
    monkeypatch.undo()
    assert_spent(app, form["upload_id"], PendingUploadStatus.FAILED, "file_refused")


def test_a_photo_is_still_read_whole_because_its_checks_decode_it(
        app: Flask, riverside: Practice, monkeypatch: pytest.MonkeyPatch):
    referral_id = new_referral(riverside)
    data = samples.jpeg_bytes()
    form = started_with_digest(riverside.staff, referral_id, data)
    post_form(form, data, filename="photo.jpg")
    reads = StoreReads(app, monkeypatch)

    response = complete(riverside.staff, riverside, form, data, kind="photo_intraoral", teeth=[])

    assert response.status_code == 201, response.get_json()
    assert len(reads.opened) == 1


def test_an_oversize_or_missing_file_is_refused_before_any_digest_is_asked_for(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    too_big = samples.dicom_bytes(rows=800, columns=800)
    form = started_with_digest(riverside.staff, referral_id, too_big)

    missing = complete(riverside.staff, riverside, form, too_big)
    post_form(form, too_big)
    oversize = complete(riverside.staff, riverside, form, too_big)

    assert missing.status_code == 409
    assert "No file has arrived" in missing.get_json()["message"]
    assert oversize.status_code == 413
    assert_spent(app, form["upload_id"], PendingUploadStatus.FAILED, "too_large")


def test_a_store_that_vouches_for_no_digest_has_the_file_read_whole_and_hashed(
        app: Flask, riverside: Practice, monkeypatch: pytest.MonkeyPatch):
    referral_id = new_referral(riverside)
    data = samples.dicom_bytes(rows=256, columns=256)
    form = started_with_digest(riverside.staff, referral_id, data)
    post_form(form, data)
    store = app.extensions["referral.storage"]
    head = store.head
    # An S3-compatible store that keeps no checksum for the copy.
    monkeypatch.setattr(store, "head", lambda key: ObjectHead(size=head(key).size))
    reads = StoreReads(app, monkeypatch)

    wrong = complete(riverside.staff, riverside, form, data, sha256="0" * 64)

    assert wrong.status_code == 422
    assert "sha256" in wrong.get_json()["errors"]
    assert len(reads.opened) == 1
    assert reads.opened[0].startswith("images/")
    assert reads.ranged == 0
    monkeypatch.undo()
    assert_spent(app, form["upload_id"], PendingUploadStatus.FAILED, "checksum_mismatch")

    again = started_with_digest(riverside.staff, referral_id, data)
    post_form(again, data)
    monkeypatch.setattr(store, "head", lambda key: ObjectHead(size=head(key).size))
    reads = StoreReads(app, monkeypatch)
    right = complete(riverside.staff, riverside, again, data)

    assert right.status_code == 201, right.get_json()
    assert len(reads.opened) == 1
    assert reads.ranged == 0


@pytest.mark.parametrize("failing", ["scanning", "parsing"])
def test_a_store_outage_while_the_header_is_read_answers_503_and_the_upload_can_be_completed_again(
        app: Flask, riverside: Practice, monkeypatch: pytest.MonkeyPatch, failing: str):
    def long_header(ds: Any) -> None:
        # Two long values, so that a reader keeping only its first window has to fetch between them again.
        ds.add_new(0x00091010, "OB", b"\x01" * (150 * 1024))
        ds.add_new(0x00091011, "OB", b"\x02" * (150 * 1024))

    referral_id = new_referral(riverside)
    data = samples.dicom_bytes(rows=256, columns=256, mutate=long_header)
    form = started_with_digest(riverside.staff, referral_id, data)
    post_form(form, data)
    store = app.extensions["referral.storage"]
    ranged = store.open_range
    starts: list[int] = []

    def failing_range(key: str, start: int, length: int) -> bytes:
        # "scanning": the second range, asked for by the header scan. "parsing": the first range asked for
        # again, which is pydicom reading the header after the scan, when the reader keeps only its first
        # window; pydicom reports any failure to read as a damaged file.
        again = start in starts
        starts.append(start)
        if (failing == "scanning" and len(starts) > 1) or (failing == "parsing" and again):
            raise StorageUnavailable("injected failure")
        return bytes(ranged(key, start, length))

    with monkeypatch.context() as patch:
        patch.setattr(store, "open_range", failing_range)
        if failing == "parsing":
            patch.setattr(direct_uploads, "RangeReader",
                          functools.partial(direct_uploads.RangeReader, keep=direct_uploads.HEADER_RANGE))
        outage = complete(riverside.staff, riverside, form, data)

    assert outage.status_code == 503, outage.get_json()
    assert pending_row(app, form["upload_id"]).status == PendingUploadStatus.PENDING
    assert objects(app, "images/") == []
    retried = complete(riverside.staff, riverside, form, data)
    assert retried.status_code == 201, retried.get_json()
