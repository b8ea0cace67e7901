"""Resumable uploads over tus 1.0, driven by a real tus client (tuspy) against the app served over HTTP by a
werkzeug server thread, on SQLite + the local folder and on PostgreSQL + S3 (moto over HTTP). The protocol's
refusals are sent by hand, header by header."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from flask import Flask
from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError

from referral.config import Settings
from referral.db import utcnow
from referral.models import AuditEvent, Image, TusUpload, TusUploadStatus
from referral.services import integrity, tus_uploads
from tests.support import samples
from tests.support.api import CAPTURED_AT, new_referral, ready_referral, submit
from tests.support.live import served
from tests.support.settings import make_settings
from tests.support.world import Practice

pytestmark = pytest.mark.both_backends  # stored bytes or database behaviour: both set-ups

# Small parts on the local folder, so that a small file still crosses part boundaries; S3 raises it to 5 MiB.
PART_BYTES = 64 * 1024
CHUNK = 40_000


@pytest.fixture
def app_settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, tus_part_bytes=PART_BYTES)


@pytest.fixture
def server_url(app: Flask) -> Iterator[str]:
    with served(app, name="tus-test-server") as url:
        yield url


def image_fields(practice: Practice, **overrides: str) -> dict[str, str]:
    fields = {"kind": "periapical", "teeth": "19", "reason": "Pain to cold, lower left", "captured_at": CAPTURED_AT,
              "captured_by_provider_id": practice.hygienist_provider_id, "filename": "scan.dcm"}
    fields.update(overrides)
    return {key: value for key, value in fields.items() if value}


def metadata_header(fields: dict[str, str]) -> str:
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in fields.items())


def tus(server_url: str, practice: Practice, referral_id: str, token: str | None = None) -> tus_client.TusClient:
    return tus_client.TusClient(f"{server_url}/api/v1/referrals/{referral_id}/uploads",
                                headers={"Authorization": f"Bearer {token or practice.staff.token}"})


def rows(app: Flask, model: Any) -> list[Any]:
    with app.extensions["referral.sessionmaker"]() as session:
        return list(session.scalars(sa.select(model)).all())


def objects(app: Flask, prefix: str) -> list[str]:
    return sorted(app.extensions["referral.storage"].keys(prefix))


def actions(app: Flask) -> list[str]:
    return [event.action for event in rows(app, AuditEvent)]


def protocol(practice: Practice, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {practice.staff.token}", "Tus-Resumable": "1.0.0", **headers}


def create(app: Flask, practice: Practice, referral_id: str, length: int, **headers: str) -> Any:
    sent = protocol(practice, **{"Upload-Length": str(length),
                                 "Upload-Metadata": metadata_header(image_fields(practice)), **headers})
    return app.test_client().post(f"/api/v1/referrals/{referral_id}/uploads", headers=sent)


def created(app: Flask, practice: Practice, referral_id: str, length: int) -> str:
    response = create(app, practice, referral_id, length)
    assert response.status_code == 201, response.get_json()
    return str(response.headers["Location"])


def patch(app: Flask, practice: Practice, url: str, offset: int, body: bytes, **headers: str) -> Any:
    sent = protocol(practice, **{"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream",
                                 **headers})
    return app.test_client().patch(url, data=body, headers=sent)


def head(app: Flask, practice: Practice, url: str, **headers: str) -> Any:
    return app.test_client().head(url, headers=protocol(practice, **headers))


def checksum(algorithm: str, data: bytes) -> str:
    return f"{algorithm} {base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


def expire(app: Flask) -> None:
    with app.extensions["referral.sessionmaker"]() as session:
        session.execute(sa.update(TusUpload).values(expires_at=utcnow() - timedelta(minutes=1)))
        session.commit()


# -- a real client, interrupted and resumed --------------------------------------------------------------------


def test_an_upload_interrupted_mid_way_resumes_from_the_servers_offset_and_ends_in_one_image(
        app: Flask, server_url: str, riverside: Practice, backend: str):
    referral_id = new_referral(riverside)
    data = samples.dicom_bytes(rows=256, columns=256, kvp=65.0)
    assert len(data) > 3 * CHUNK
    client = tus(server_url, riverside, referral_id)
    first = client.uploader(file_stream=io.BytesIO(data), chunk_size=CHUNK, upload_checksum=True,
                            metadata=image_fields(riverside))
    first.upload_chunk()
    first.upload_chunk()
    # The connection is lost here: a new client knows only the upload's URL.
    assert rows(app, Image) == []
    assert objects(app, "images/") == []

    resumed = client.uploader(file_stream=io.BytesIO(data), url=first.url, chunk_size=CHUNK, upload_checksum=True)
    assert resumed.offset == 2 * CHUNK
    resumed.upload()

    answer = resumed.request.response_headers
    # tuspy keeps the last answer's headers with lowercase names.
    image_id = answer["image-id"]
    assert answer["location"] == f"/api/v1/images/{image_id}"
    assert answer["tus-resumable"] == "1.0.0"
    images = riverside.staff.get(f"/api/v1/referrals/{referral_id}/images").get_json()["items"]
    assert [image["id"] for image in images] == [image_id]
    image = images[0]
    assert (image["size"], image["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
    assert (image["kind"], image["teeth"], image["original_filename"]) == ("periapical", ["19"], "scan.dcm")
    content = riverside.staff.get(f"/api/v1/images/{image_id}/content")
    assert content.status_code == 200
    assert content.data == data
    preview = riverside.staff.get(f"/api/v1/images/{image_id}/preview")
    assert preview.status_code == 200
    assert preview.mimetype == "image/jpeg"
    # Exactly once, and nothing of the upload left in the store.
    assert len(rows(app, Image)) == 1
    assert objects(app, "tus/") == []
    (row,) = rows(app, TusUpload)
    assert (row.status, str(row.image_id), row.upload_offset) == (TusUploadStatus.COMPLETED, image_id, len(data))
    assert row.tail_key is None
    recorded = actions(app)
    assert recorded.count("image.create") == 1
    assert {"tus_upload.create", "tus_upload.append", "tus_upload.complete"} <= set(recorded)
    # Asking again where it stands (a client that lost the last answer) shows it complete, with its image.
    again = requests.head(first.url, headers={"Authorization": f"Bearer {riverside.staff.token}",
                                              "Tus-Resumable": "1.0.0"}, timeout=30)
    assert again.status_code == 200
    assert (again.headers["Upload-Offset"], again.headers["Image-Id"]) == (str(len(data)), image_id)
    assert again.headers["Cache-Control"] == "no-store"


def test_the_parts_go_to_the_store_and_the_rest_waits_in_a_tail_outside_the_image_keys(
        app: Flask, server_url: str, riverside: Practice, backend: str):
    referral_id = new_referral(riverside)
    data = samples.dicom_bytes(rows=256, columns=256)
    uploader = tus(server_url, riverside, referral_id).uploader(
        file_stream=io.BytesIO(data), chunk_size=CHUNK, metadata=image_fields(riverside))
    uploader.upload(stop_at=2 * CHUNK)

    (row,) = rows(app, TusUpload)
    assert row.upload_offset == 2 * CHUNK
    key = f"tus/{riverside.id}/{referral_id}/{row.id}"
    assert row.storage_key == key
    if backend.endswith("local"):
        # One part of 64 KiB was sent on; the 14464 bytes after it wait in the tail.
        assert len(row.parts) == 1
        assert row.multipart_id is not None
    else:
        # Parts on S3 are at least 5 MiB: everything is still in the tail.
        assert row.parts == []
        assert row.multipart_id is None
    assert row.tail_key == f"{key}.tail-{2 * CHUNK}"
    assert all(name.startswith(key) for name in objects(app, "tus/"))
    assert objects(app, "images/") == []
    # The storage check leaves an unfinished upload's objects alone, however old.
    factory = app.extensions["referral.sessionmaker"]
    report = integrity.check_storage(factory, app.extensions["referral.storage"], repair=True,
                                     grace=timedelta(0), checksums=False)
    assert report.orphan_objects == 0, report.problems
    assert row.tail_key in objects(app, "tus/")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgres-s3"], indirect=True)
def test_a_file_over_five_mib_goes_to_s3_as_a_multipart_upload(app: Flask, server_url: str, riverside: Practice):
    referral_id = new_referral(riverside)
    data = samples.dicom_bytes(rows=1700, columns=1700)
    assert 5 * 1024 * 1024 < len(data) < 8 * 1024 * 1024
    client = tus(server_url, riverside, referral_id)
    uploader = client.uploader(file_stream=io.BytesIO(data), chunk_size=2 * 1024 * 1024, upload_checksum=True,
                               metadata=image_fields(riverside))
    stop = 5 * 1024 * 1024 + 512 * 1024
    assert stop < len(data)
    uploader.upload(stop_at=stop)
    (row,) = rows(app, TusUpload)
    assert row.multipart_id is not None
    assert len(row.parts) == 1, "the first 5 MiB went on as a part"
    assert row.upload_offset == stop
    assert row.tail_key is not None
    resumed = client.uploader(file_stream=io.BytesIO(data), url=uploader.url, chunk_size=2 * 1024 * 1024)
    resumed.upload()

    image_id = resumed.request.response_headers["image-id"]
    content = riverside.staff.get(f"/api/v1/images/{image_id}/content")
    assert hashlib.sha256(content.data).hexdigest() == hashlib.sha256(data).hexdigest()
    (row,) = rows(app, TusUpload)
    assert len(row.parts) == 2
    assert objects(app, "tus/") == []


# -- the protocol's refusals -------------------------------------------------------------------------------


# The refusals are decided above the store: one backend is enough for them.
LOCAL = pytest.mark.parametrize("backend", ["sqlite-local"], indirect=True)


@LOCAL
def test_every_answer_says_tus_resumable_and_a_wrong_version_is_412(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    refused = create(app, riverside, referral_id, 100, **{"Tus-Resumable": "0.2.2"})
    assert refused.status_code == 412, refused.get_json()
    assert refused.headers["Tus-Resumable"] == "1.0.0"
    assert refused.headers["Tus-Version"] == "1.0.0"
    assert rows(app, TusUpload) == []
    missing = app.test_client().post(f"/api/v1/referrals/{referral_id}/uploads",
                                     headers={"Authorization": f"Bearer {riverside.staff.token}",
                                              "Upload-Length": "100"})
    assert missing.status_code == 412

    url = created(app, riverside, referral_id, 100)
    for response in (head(app, riverside, url, **{"Tus-Resumable": "2.0.0"}),
                     patch(app, riverside, url, 0, b"x", **{"Tus-Resumable": "2.0.0"})):
        assert response.status_code == 412
        assert response.headers["Tus-Resumable"] == "1.0.0"
    unknown = head(app, riverside, f"/api/v1/referrals/{referral_id}/uploads/{uuid.uuid4()}")
    assert unknown.status_code == 404
    assert unknown.headers["Tus-Resumable"] == "1.0.0"


@LOCAL
def test_options_describes_the_server(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    response = app.test_client().options(f"/api/v1/referrals/{referral_id}/uploads",
                                         headers={"Authorization": f"Bearer {riverside.staff.token}"})
    assert response.status_code == 204
    assert response.headers["Tus-Version"] == "1.0.0"
    assert set(response.headers["Tus-Extension"].split(",")) >= {"creation", "termination", "checksum"}
    assert int(response.headers["Tus-Max-Size"]) == app.extensions["referral.settings"].max_upload_bytes
    assert "sha1" in response.headers["Tus-Checksum-Algorithm"].split(",")


@LOCAL
def test_creation_answers_201_with_the_location_and_head_where_it_stands(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    response = create(app, riverside, referral_id, 1234)
    assert response.status_code == 201, response.get_json()
    (row,) = rows(app, TusUpload)
    assert response.headers["Location"] == f"/api/v1/referrals/{referral_id}/uploads/{row.id}"
    assert row.fields == {"kind": "periapical", "teeth": "19", "reason": "Pain to cold, lower left",
                          "captured_at": CAPTURED_AT, "captured_by_provider_id": riverside.hygienist_provider_id}
    assert row.filename == "scan.dcm"
    state = head(app, riverside, response.headers["Location"])
    assert state.status_code == 200
    assert (state.headers["Upload-Offset"], state.headers["Upload-Length"]) == ("0", "1234")
    assert state.headers["Cache-Control"] == "no-store"
    assert "Upload-Expires" in state.headers


@LOCAL
@pytest.mark.parametrize(("fields", "named"), [
    ({"kind": ""}, "kind"),
    ({"kind": "selfie"}, "kind"),
    ({"teeth": "99"}, "teeth"),
    ({"captured_by_provider_id": str(uuid.uuid4())}, "captured_by_provider_id"),
    ({"captured_at": "2999-01-01T10:00:00+00:00"}, "captured_at"),
    ({"retake_of": str(uuid.uuid4())}, "retake_reason"),
    ({"colour": "blue"}, "colour"),
])
def test_bad_metadata_is_422_at_creation_and_nothing_is_stored(app: Flask, riverside: Practice,
                                                               fields: dict[str, str], named: str):
    referral_id = new_referral(riverside)
    header = metadata_header(image_fields(riverside, **fields))
    response = create(app, riverside, referral_id, 100, **{"Upload-Metadata": header})
    assert response.status_code == 422, response.get_json()
    assert named in response.get_json()["errors"], response.get_json()
    assert rows(app, TusUpload) == []


@LOCAL
def test_malformed_metadata_too_large_and_no_length_are_refused(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    not_base64 = create(app, riverside, referral_id, 100, **{"Upload-Metadata": "kind ***"})
    assert not_base64.status_code == 422
    limit = app.extensions["referral.settings"].max_upload_bytes
    too_large = create(app, riverside, referral_id, limit + 1)
    assert too_large.status_code == 413, too_large.get_json()
    no_length = app.test_client().post(f"/api/v1/referrals/{referral_id}/uploads", headers=protocol(riverside))
    assert no_length.status_code == 400
    empty = create(app, riverside, referral_id, 0)
    assert empty.status_code == 422
    assert rows(app, TusUpload) == []


@LOCAL
def test_a_wrong_offset_is_409_and_changes_nothing(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    url = created(app, riverside, referral_id, 100)
    assert patch(app, riverside, url, 0, b"a" * 10).status_code == 204
    for offset in (0, 5, 11):
        response = patch(app, riverside, url, offset, b"b" * 10)
        assert response.status_code == 409, response.get_json()
        assert response.headers["Tus-Resumable"] == "1.0.0"
    assert head(app, riverside, url).headers["Upload-Offset"] == "10"
    past_the_end = patch(app, riverside, url, 10, b"c" * 91)
    assert past_the_end.status_code == 413
    wrong_type = app.test_client().patch(url, data=b"d", headers=protocol(riverside, **{"Upload-Offset": "10"}))
    assert wrong_type.status_code == 415
    assert head(app, riverside, url).headers["Upload-Offset"] == "10"


@LOCAL
def test_a_bad_checksum_is_460_and_the_chunk_is_discarded(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    url = created(app, riverside, referral_id, 100)
    bad = patch(app, riverside, url, 0, b"a" * 10, **{"Upload-Checksum": checksum("sha1", b"b" * 10)})
    assert bad.status_code == 460
    assert bad.get_json()["code"] == 460
    assert bad.headers["Tus-Resumable"] == "1.0.0"
    assert head(app, riverside, url).headers["Upload-Offset"] == "0"
    assert objects(app, "tus/") == []
    unknown = patch(app, riverside, url, 0, b"a" * 10, **{"Upload-Checksum": "crc99 AAAA"})
    assert unknown.status_code == 400
    for algorithm in ("sha1", "sha256"):
        offset = int(head(app, riverside, url).headers["Upload-Offset"])
        good = patch(app, riverside, url, offset, b"a" * 10, **{"Upload-Checksum": checksum(algorithm, b"a" * 10)})
        assert good.status_code == 204, good.get_json()
    assert head(app, riverside, url).headers["Upload-Offset"] == "20"


@LOCAL
def test_termination_discards_what_was_sent_and_later_requests_get_410(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    url = created(app, riverside, referral_id, 100)
    assert patch(app, riverside, url, 0, b"a" * 10).status_code == 204
    assert objects(app, "tus/") != []
    terminated = app.test_client().delete(url, headers=protocol(riverside))
    assert terminated.status_code == 204
    assert terminated.headers["Tus-Resumable"] == "1.0.0"
    assert objects(app, "tus/") == []
    assert head(app, riverside, url).status_code == 410
    assert patch(app, riverside, url, 10, b"a").status_code == 410
    assert app.test_client().delete(url, headers=protocol(riverside)).status_code == 410
    assert "tus_upload.terminate" in actions(app)


@LOCAL
def test_an_expired_upload_is_410_and_the_worker_sweeps_it(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    url = created(app, riverside, referral_id, 100)
    assert patch(app, riverside, url, 0, b"a" * 10).status_code == 204
    expire(app)
    assert head(app, riverside, url).status_code == 410
    assert patch(app, riverside, url, 10, b"a" * 10).status_code == 410

    factory, store = app.extensions["referral.sessionmaker"], app.extensions["referral.storage"]
    assert tus_uploads.sweep_expired_uploads(factory, store) == 1
    assert tus_uploads.sweep_expired_uploads(factory, store) == 0
    (row,) = rows(app, TusUpload)
    assert row.status == TusUploadStatus.EXPIRED
    assert row.swept_at is not None
    assert objects(app, "tus/") == []
    assert head(app, riverside, url).status_code == 410


def test_the_worker_pass_sweeps_expired_resumable_uploads(app: Flask, riverside: Practice, backend: str):
    referral_id = new_referral(riverside)
    url = created(app, riverside, referral_id, 100)
    assert patch(app, riverside, url, 0, b"a" * 10).status_code == 204
    assert objects(app, "tus/") != []
    expire(app)

    result = app.test_cli_runner().invoke(args=["worker", "--once"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["resumable_uploads_swept"] == 1
    assert objects(app, "tus/") == []
    (row,) = rows(app, TusUpload)
    assert row.status == TusUploadStatus.EXPIRED


@LOCAL
def test_a_file_intake_refuses_at_the_last_byte_stores_nothing_and_spends_the_upload(app: Flask,
                                                                                     riverside: Practice):
    referral_id = new_referral(riverside)
    data = b"this is not an image at all " * 4
    url = created(app, riverside, referral_id, len(data))
    assert patch(app, riverside, url, 0, data[:50]).status_code == 204
    refused = patch(app, riverside, url, 50, data[50:])
    assert refused.status_code == 415, refused.get_json()
    assert rows(app, Image) == []
    assert objects(app, "images/") == []
    assert objects(app, "tus/") == []
    (row,) = rows(app, TusUpload)
    assert (row.status, row.failure_reason) == (TusUploadStatus.FAILED, "unsupported_type")
    assert head(app, riverside, url).status_code == 410


@LOCAL
def test_other_practices_get_404_and_nothing_changes(app: Flask, riverside: Practice, hillside: Practice):
    referral_id = new_referral(riverside)
    url = created(app, riverside, referral_id, 100)
    assert patch(app, riverside, url, 0, b"a" * 10).status_code == 204
    outsider = app.test_client()
    headers = protocol(hillside, **{"Upload-Length": "100", "Upload-Offset": "10",
                                    "Content-Type": "application/offset+octet-stream",
                                    "Upload-Metadata": metadata_header(image_fields(hillside))})
    for method, path in (("POST", f"/api/v1/referrals/{referral_id}/uploads"), ("HEAD", url), ("PATCH", url),
                         ("DELETE", url)):
        response = outsider.open(path, method=method, headers=headers, data=b"b" * 10)
        assert response.status_code == 404, (method, response.status_code)
        assert response.headers["Tus-Resumable"] == "1.0.0"
    assert len(rows(app, TusUpload)) == 1
    assert head(app, riverside, url).headers["Upload-Offset"] == "10"


@LOCAL
def test_only_capturing_staff_of_an_unsent_case_may_upload(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    billing = create(app, riverside, referral_id, 100,
                     **{"Authorization": f"Bearer {riverside.billing.token}"})
    assert billing.status_code == 403
    url = created(app, riverside, referral_id, 100)
    # Another member of the practice cannot continue someone else's upload.
    dentist = app.test_client().head(url, headers={"Authorization": f"Bearer {riverside.dentist.token}",
                                                   "Tus-Resumable": "1.0.0"})
    assert dentist.status_code == 403

    sent = ready_referral(riverside)
    in_flight = created(app, riverside, sent, 100)
    assert submit(riverside, sent).status_code == 200
    assert create(app, riverside, sent, 100).status_code == 409
    assert patch(app, riverside, in_flight, 0, b"a" * 10).status_code == 409
    assert head(app, riverside, in_flight).headers["Upload-Offset"] == "0"


@LOCAL
def test_a_tus_client_is_told_404_for_a_referral_it_cannot_see(app: Flask, server_url: str, riverside: Practice):
    """An unknown (or another practice's) referral: tuspy reports the 404 and nothing is created."""
    referral_id = new_referral(riverside)
    stranger = tus_client.TusClient(f"{server_url}/api/v1/referrals/{uuid.uuid4()}/uploads",
                                    headers={"Authorization": f"Bearer {riverside.staff.token}"})
    with pytest.raises(TusCommunicationError) as refused:
        stranger.uploader(file_stream=io.BytesIO(b"abc"), metadata=image_fields(riverside)).upload()
    assert refused.value.status_code == 404
    assert rows(app, TusUpload) == []
    assert referral_id
