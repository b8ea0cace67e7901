"""``POST /api/v1/referrals/{id}/images`` with the file's bytes as the whole body and the form's fields in the query:
the same spool, checks, answer, audit and idempotency as the multipart upload, and nothing stored when refused."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from flask import Flask

from referral.config import Settings
from referral.models import AuditEvent
from storage import LocalStorage, Storage
from tests.support import samples
from tests.support.api import CAPTURED_AT, assert_nothing_stored, new_referral, stored_state, upload
from tests.support.settings import make_settings
from tests.support.world import Client, Practice

pytestmark = pytest.mark.both_backends  # stored bytes and database behaviour: both set-ups


@pytest.fixture
def spool_dir(store: Storage, tmp_path: Path) -> Path:
    """UPLOAD_TMP_DIR: beside a local-folder store, on its filesystem, so that spooled files are linked into it."""
    folder = (store.root.parent if isinstance(store, LocalStorage) else tmp_path) / "spool"
    folder.mkdir()
    return folder


@pytest.fixture
def app_settings(tmp_path: Path, database_url: str, spool_dir: Path) -> Settings:
    return make_settings(tmp_path, database_url, upload_tmp_dir=str(spool_dir))


def form_fields(practice: Practice, **fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"kind": "periapical", "teeth": "19", "reason": "Pain to cold, lower left",
                              "captured_at": CAPTURED_AT, "captured_by_provider_id": practice.hygienist_provider_id}
    values.update(fields)
    return {key: value for key, value in values.items() if value is not None}


def raw_upload(client: Client, practice: Practice, referral_id: str, data: bytes | io.BytesIO,
               content_type: str | None = "application/dicom", headers: dict[str, str] | None = None,
               **fields: Any) -> Any:
    query = urlencode(form_fields(practice, **fields))
    all_headers = {"Authorization": f"Bearer {client.token}", **(headers or {})}
    if content_type is not None:
        all_headers["Content-Type"] = content_type
    body: dict[str, Any] = {"input_stream": data} if isinstance(data, io.BytesIO) else {"data": data}
    return client.client.post(f"/api/v1/referrals/{referral_id}/images?{query}", headers=all_headers, **body)


def open_spool_files(spool_dir: Path) -> list[str]:
    """Files in the spool folder, and files of this process still open from it (an unnamed spool file shows as
    ``<folder>/#<inode> (deleted)``)."""
    named = sorted(os.listdir(spool_dir))
    still_open = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(f"{spool_dir}/"):
            still_open.append(target)
    return named + still_open


def assert_nothing_left(app: Flask, spool_dir: Path) -> None:
    assert_nothing_stored(app)
    assert open_spool_files(spool_dir) == [], "a spool file was left behind"


def comparable(answer: dict[str, Any]) -> Any:
    """The answer with what differs between two images of two referrals (their ids, when each was made) left out."""
    text = json.dumps({key: value for key, value in answer.items() if key != "created_at"}, sort_keys=True)
    return json.loads(text.replace(answer["id"], "<image>").replace(answer["referral_id"], "<referral>"))


def test_a_raw_dicom_body_is_stored_and_answered_like_the_same_file_sent_as_multipart(
        app: Flask, riverside: Practice, spool_dir: Path):
    data = samples.dicom_bytes(teeth=("19",), kvp=65.0)
    by_form = upload(riverside.staff, riverside, new_referral(riverside), data, filename="pa-19.dcm")
    raw_referral = new_referral(riverside)

    raw = raw_upload(riverside.staff, riverside, raw_referral, data, filename="pa-19.dcm")

    assert by_form.status_code == raw.status_code == 201, raw.get_json()
    assert comparable(raw.get_json()) == comparable(by_form.get_json())
    assert raw.get_json()["sha256"] == hashlib.sha256(data).hexdigest()
    assert raw.get_json()["content_type"] == "application/dicom"
    assert raw.get_json()["dicom"]["kvp"] == 65.0
    image_id = raw.get_json()["id"]
    assert riverside.dentist.get(f"/api/v1/images/{image_id}/content").data == data
    assert riverside.dentist.get(f"/api/v1/images/{image_id}").get_json()["original_filename"] == "pa-19.dcm"
    rows, keys = stored_state(app)
    assert rows == 2
    assert len(keys) == 6, "each image's original, preview and thumbnail"
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        created = session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "image.create")
                                  .order_by(AuditEvent.at, AuditEvent.id)).all()
    assert [str(event.object_id) for event in created][-1] == image_id
    assert created[0].details == created[1].details, "the same audit details either way"
    assert open_spool_files(spool_dir) == []


@pytest.mark.parametrize(
    ("factory", "content_type", "kind", "stored_as"),
    [
        (samples.jpeg_bytes, "image/jpeg", "photo_intraoral", "image/jpeg"),
        (samples.png_bytes, "image/png", "photo_extraoral", "image/png"),
        (samples.tiff_bytes, "image/tiff", "periapical", "image/tiff"),
        # The declared type only says the body is a file; the bytes decide which, as with a multipart file part.
        (samples.jpeg_bytes, "application/dicom", "photo_intraoral", "image/jpeg"),
    ],
    ids=["jpeg", "png", "tiff", "jpeg-declared-as-dicom"],
)
def test_photos_and_sensor_exports_are_taken_as_raw_bodies_and_typed_by_their_bytes(
        riverside: Practice, factory, content_type, kind, stored_as):
    data = factory()

    response = raw_upload(riverside.staff, riverside, new_referral(riverside), data, content_type, kind=kind)

    assert response.status_code == 201, response.get_json()
    assert response.get_json()["content_type"] == stored_as
    assert riverside.staff.get(f"/api/v1/images/{response.get_json()['id']}/content").data == data


@pytest.mark.parametrize("backend", ["sqlite-local"])  # only a local-folder store can link a spool file
def test_the_spool_file_becomes_the_stored_original_on_a_local_store(app: Flask, riverside: Practice,
                                                                    store: Storage, spool_dir: Path,
                                                                    monkeypatch: pytest.MonkeyPatch):
    assert isinstance(store, LocalStorage)
    linked: list[str] = []
    link_spool = LocalStorage._link_spool

    def spy(self: LocalStorage, stream: Any, path: Path, key: str, size: int, sha256: str) -> Any:
        result = link_spool(self, stream, path, key, size, sha256)
        if result is not None:
            linked.append(key)
        return result

    monkeypatch.setattr(LocalStorage, "_link_spool", spy)
    data = samples.dicom_bytes()

    raw = raw_upload(riverside.staff, riverside, new_referral(riverside), data).get_json()
    by_form = upload(riverside.staff, riverside, new_referral(riverside), data).get_json()

    originals = [key for key in stored_state(app)[1] if not key.endswith((".preview.jpg", ".thumb.jpg"))]
    assert sorted(linked) == sorted(originals), "both originals linked from their spools, not copied"
    assert {raw["id"], by_form["id"]} == {key.rsplit("/", 1)[1] for key in originals}
    for image in (raw, by_form):
        assert riverside.staff.get(f"/api/v1/images/{image['id']}/content").data == data
    assert open_spool_files(spool_dir) == []


def test_a_raw_retry_with_the_same_key_replays_the_first_answer_and_stores_once(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    data = samples.dicom_bytes()
    key = {"Idempotency-Key": "raw-upload-1"}

    first = raw_upload(riverside.staff, riverside, referral_id, data, headers=key)
    second = raw_upload(riverside.staff, riverside, referral_id, data, headers=key)

    assert first.status_code == second.status_code == 201
    assert second.get_json() == first.get_json()
    assert second.headers["Idempotent-Replayed"] == "true"
    rows, keys = stored_state(app)
    assert (rows, len(keys)) == (1, 3)


def test_a_raw_retry_of_a_multipart_upload_with_the_same_key_and_fields_is_the_same_request(
        app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    data = samples.dicom_bytes()
    key = {"Idempotency-Key": "raw-upload-2"}

    first = upload(riverside.staff, riverside, referral_id, data, filename="pa.dcm", headers=key)
    retried = raw_upload(riverside.staff, riverside, referral_id, data, headers=key, filename="pa.dcm")

    assert first.status_code == retried.status_code == 201
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert retried.get_json() == first.get_json()
    assert stored_state(app)[0] == 1


@pytest.mark.parametrize(
    ("change", "fields"),
    [("other-bytes", {}), ("other-fields", {"teeth": "18"}), ("other-filename", {"filename": "other.dcm"})],
)
def test_the_same_key_with_other_bytes_fields_or_filename_is_a_conflict(app: Flask, riverside: Practice, change,
                                                                      fields):
    referral_id = new_referral(riverside)
    key = {"Idempotency-Key": f"raw-upload-{change}"}
    first = raw_upload(riverside.staff, riverside, referral_id, samples.dicom_bytes(), headers=key)
    data = samples.dicom_bytes(kvp=90.0) if change == "other-bytes" else samples.dicom_bytes()

    different = raw_upload(riverside.staff, riverside, referral_id, data, headers=key, **fields)

    assert first.status_code == 201
    assert different.status_code == 409
    assert stored_state(app)[0] == 1


def test_a_refused_raw_upload_does_not_use_up_its_key(riverside: Practice, spool_dir: Path):
    referral_id = new_referral(riverside)
    key = {"Idempotency-Key": "raw-upload-3"}

    refused = raw_upload(riverside.staff, riverside, referral_id, samples.html_bytes(), headers=key)
    fixed = raw_upload(riverside.staff, riverside, referral_id, samples.dicom_bytes(), headers=key)

    assert refused.status_code == 415
    assert fixed.status_code == 201
    assert open_spool_files(spool_dir) == []


def test_a_body_neither_multipart_nor_an_image_type_is_read_as_a_form_without_its_fields_and_file(
        app: Flask, riverside: Practice, spool_dir: Path):
    referral_id = new_referral(riverside)
    for content_type in ("application/json", "text/plain", "application/octet-stream",
                         "application/x-www-form-urlencoded", None):
        response = raw_upload(riverside.staff, riverside, referral_id, samples.dicom_bytes(), content_type)

        assert response.status_code == 422, content_type
        assert "kind" in response.get_json()["errors"]["form"], content_type
        assert_nothing_left(app, spool_dir)


def test_an_empty_body_is_refused_with_422(app: Flask, riverside: Practice, spool_dir: Path):
    response = raw_upload(riverside.staff, riverside, new_referral(riverside), b"")

    assert response.status_code == 422
    assert "empty" in response.get_json()["message"]
    assert "file" in response.get_json()["errors"]
    assert_nothing_left(app, spool_dir)


BAD_QUERY_FIELDS = [
    ({"teeth": "33"}, "teeth"),
    ({"kind": "selfie"}, "kind"),
    ({"kind": None}, "kind"),
    ({"reason": None}, "reason"),
    ({"captured_at": "yesterday"}, "captured_at"),
    ({"captured_by_provider_id": "not-a-uuid"}, "captured_by_provider_id"),
    ({"retake_reason": "cone cut"}, "retake_of"),
    ({"comment": "unknown fields are refused"}, "comment"),
    ({"sha256": "abc"}, "sha256"),
    ({"filename": "x" * 256}, "filename"),
]


def test_bad_query_fields_are_refused_with_422_naming_the_field(app: Flask, riverside: Practice, spool_dir: Path):
    referral_id = new_referral(riverside)
    for fields, field in BAD_QUERY_FIELDS:
        response = raw_upload(riverside.staff, riverside, referral_id, samples.dicom_bytes(), **fields)

        assert response.status_code == 422, fields
        assert field in response.get_json()["errors"]["query"], response.get_json()
        assert_nothing_left(app, spool_dir)


def test_a_field_the_file_contradicts_is_refused_as_for_the_form(app: Flask, riverside: Practice, spool_dir: Path):
    response = raw_upload(riverside.staff, riverside, new_referral(riverside), samples.dicom_bytes(),
                          kind="photo_intraoral")

    assert response.status_code == 422
    assert "kind" in response.get_json()["errors"]
    assert_nothing_left(app, spool_dir)


@pytest.mark.parametrize(
    ("data", "status"),
    [(samples.html_bytes(), 415), (samples.zip_bytes(), 415), (samples.truncated(samples.dicom_bytes()), 422),
     (samples.dicom_without_pixels(), 422), (samples.dicom_bytes(patient_name="Smith^John"), 422)],
    ids=["html", "zip", "truncated-dicom", "dicom-without-pixels", "another-patient"],
)
def test_a_body_that_is_not_a_good_dicom_gets_what_the_multipart_upload_gets(app: Flask, riverside: Practice,
                                                                              spool_dir: Path, data, status):
    referral_id = new_referral(riverside)
    by_form = upload(riverside.staff, riverside, referral_id, data)

    raw = raw_upload(riverside.staff, riverside, referral_id, data)

    assert by_form.status_code == raw.status_code == status
    assert raw.get_json()["message"] == by_form.get_json()["message"]
    assert raw.get_json()["errors"] == by_form.get_json()["errors"]
    assert_nothing_left(app, spool_dir)


def test_a_declared_sha256_is_checked_against_the_body(app: Flask, riverside: Practice, spool_dir: Path):
    referral_id = new_referral(riverside)
    data = samples.dicom_bytes()
    digest = hashlib.sha256(data).hexdigest()

    wrong = raw_upload(riverside.staff, riverside, referral_id, data, sha256=hashlib.sha256(b"other").hexdigest())
    assert wrong.status_code == 422
    assert wrong.get_json()["errors"]["sha256"] == [f"The body received has SHA-256 {digest}."]
    assert_nothing_left(app, spool_dir)

    right = raw_upload(riverside.staff, riverside, referral_id, data, sha256=digest.upper())
    assert right.status_code == 201
    assert right.get_json()["sha256"] == digest


def test_a_content_length_over_the_limit_is_refused_with_413_before_the_body_is_read(
        app: Flask, riverside: Practice, spool_dir: Path):
    referral_id = new_referral(riverside)
    body = io.BytesIO(b"\0" * 1024)

    response = riverside.staff.client.post(
        f"/api/v1/referrals/{referral_id}/images?{urlencode(form_fields(riverside))}", input_stream=body,
        # one byte over the file limit: the multipart envelope's allowance does not apply to a raw body
        environ_overrides={"CONTENT_LENGTH": str(app.config["MAX_UPLOAD_BYTES"] + 1)},
        headers={"Authorization": f"Bearer {riverside.staff.token}", "Content-Type": "application/dicom"})

    assert response.status_code == 413
    assert "limit" in response.get_json()["message"]
    assert body.tell() == 0, "the server read a body it should have refused by its declared length"
    assert_nothing_left(app, spool_dir)


def test_a_body_without_a_length_that_grows_past_the_limit_is_refused_while_streaming(
        app: Flask, riverside: Practice, spool_dir: Path):
    referral_id = new_referral(riverside)
    limit = app.config["MAX_UPLOAD_BYTES"]
    body = io.BytesIO(samples.dicom_bytes() + b"\0" * limit)

    # Chunked transfer: no Content-Length, the server (gunicorn) marks the input as terminated.
    response = riverside.staff.client.post(
        f"/api/v1/referrals/{referral_id}/images?{urlencode(form_fields(riverside))}", input_stream=body,
        environ_overrides={"CONTENT_LENGTH": "", "wsgi.input_terminated": True},
        headers={"Authorization": f"Bearer {riverside.staff.token}", "Content-Type": "application/dicom"})

    assert response.status_code == 413
    assert "limit" in response.get_json()["message"]
    assert limit < body.tell() <= limit + 2 * 1024 * 1024, "read while streaming, and only until past the limit"
    assert_nothing_left(app, spool_dir)


def test_roles_and_other_practices_are_refused_as_for_the_form(app: Flask, riverside: Practice,
                                                                hillside: Practice, spool_dir: Path):
    referral_id = new_referral(riverside)

    assert raw_upload(riverside.billing, riverside, referral_id, samples.dicom_bytes()).status_code == 403
    assert raw_upload(hillside.staff, hillside, referral_id, samples.dicom_bytes()).status_code == 404
    assert_nothing_left(app, spool_dir)


def test_the_openapi_document_shows_both_kinds_of_body(app: Flask):
    document = app.test_client().get("/api/openapi.json").get_json()
    operation = document["paths"]["/api/v1/referrals/{referral_id}/images"]["post"]

    content = operation["requestBody"]["content"]
    assert {"multipart/form-data", "application/dicom", "image/jpeg", "image/png"} <= set(content)
    assert content["application/dicom"]["schema"] == {"type": "string", "format": "binary"}
    query = {p["name"] for p in operation["parameters"] if p["in"] == "query"}
    assert {"kind", "teeth", "reason", "captured_at", "filename", "sha256"} <= query
    assert "415" in operation["responses"]
