"""Through the API: what a reader sees of each accepted image, its DICOM identity, and refusals that store nothing."""

from __future__ import annotations

import io
import shutil
import subprocess
import uuid
import warnings
from pathlib import Path

import pydicom
import pytest
import sqlalchemy as sa
from flask import Flask
from PIL import Image as PILImage
from pydicom.dataset import Dataset
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from referral.models import Image
from tests.imaging.test_dicom_pixels import PYDICOM_FILES
from tests.support import samples
from tests.support.api import assert_nothing_stored, new_referral, upload
from tests.support.imaging_reference import mean_difference
from tests.support.world import Practice


def _preview(practice: Practice, body: dict) -> PILImage.Image:
    response = practice.staff.get(body["preview_url"])
    assert response.status_code == 200
    image = PILImage.open(io.BytesIO(response.data))
    image.load()
    return image


def test_a_dicom_upload_returns_its_identity_and_a_ready_preview(riverside: Practice):
    referral_id = new_referral(riverside)

    def identity(ds: Dataset) -> None:
        ds.AccessionNumber = "A2026-0042"
        ds.InstanceNumber = 3
        ds.SeriesNumber = 2

    data = samples.dicom_bytes(mutate=identity)
    header = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)

    body = upload(riverside.staff, riverside, referral_id, data).get_json()
    detail = riverside.dentist.get(f"/api/v1/images/{body['id']}").get_json()

    for shown in (body, detail):
        assert shown["preview_status"] == "ready"
        assert shown["dicom"]["study_instance_uid"] == header.StudyInstanceUID
        assert shown["dicom"]["series_instance_uid"] == header.SeriesInstanceUID
        assert shown["dicom"]["sop_instance_uid"] == header.SOPInstanceUID
        assert shown["dicom"]["accession_number"] == "A2026-0042"
        assert (shown["dicom"]["instance_number"], shown["dicom"]["series_number"]) == (3, 2)
        assert shown["dicom"]["transfer_syntax_uid"] == "1.2.840.10008.1.2.1"


def test_photos_have_ready_previews_too(riverside: Practice):
    referral_id = new_referral(riverside)
    body = upload(riverside.staff, riverside, referral_id, samples.jpeg_bytes(), kind="photo_intraoral").get_json()
    assert body["preview_status"] == "ready"
    assert body["dicom"] is None


def test_an_image_stored_before_previews_existed_says_its_preview_is_unavailable(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    body = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes()).get_json()
    with app.app_context(), app.extensions["referral.engine"].begin() as conn:
        conn.execute(sa.update(Image.__table__).where(Image.__table__.c.id == uuid.UUID(body["id"]))
                     .values(preview_key=None, thumbnail_key=None))

    detail = riverside.staff.get(f"/api/v1/images/{body['id']}").get_json()

    assert detail["preview_status"] == "unavailable"
    assert detail["preview_url"] is None


def test_the_openapi_document_lists_the_preview_statuses(riverside: Practice):
    spec = riverside.staff.get("/api/openapi.json").get_json()
    field = spec["components"]["schemas"]["Image"]["properties"]["preview_status"]
    assert field["enum"] == ["ready", "pending", "failed", "unavailable"]


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: run infra/system-deps.sh (make test does)")
    return found


@pytest.mark.parametrize(("case", "command"), [
    ("jpeg-lossless-70", ["dcmcjpeg", "+e1"]),
    ("jpeg-lossless-57", ["dcmcjpeg", "+el"]),
    ("jpeg-extended-12bit", ["dcmcjpeg", "+ee"]),
    ("jpeg-ls", ["dcmcjpls"]),
    ("rle", ["dcmcrle"]),
    ("jpeg-2000", ["gdcmconv", "--j2k"]),
    ("deflated", ["dcmconv", "+td"]),
])
def test_compressed_sensor_files_are_accepted_with_a_real_preview(riverside: Practice, tmp_path: Path, case: str,
                                                                  command: list[str]):
    source = tmp_path / "source.dcm"
    source.write_bytes(samples.dicom_bytes(rows=120, columns=160))
    made = tmp_path / "made.dcm"
    subprocess.run([_tool(command[0]), *command[1:], str(source), str(made)], check=True, capture_output=True,
                   timeout=60)
    data = made.read_bytes()
    referral_id = new_referral(riverside)

    response = upload(riverside.staff, riverside, referral_id, data)

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["preview_status"] == "ready"
    assert mean_difference(_preview(riverside, body), source.read_bytes()) <= 4.0
    assert riverside.staff.get(body["content_url"]).data == data


def test_a_dicom_that_cannot_be_drawn_is_refused_with_422_and_nothing_is_stored(app: Flask, riverside: Practice):
    def mpeg(ds: Dataset) -> None:
        ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"

    ds = pydicom.dcmread(io.BytesIO(samples.encapsulated_dicom_bytes()))
    mpeg(ds)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    referral_id = new_referral(riverside)

    response = upload(riverside.staff, riverside, referral_id, buffer.getvalue())

    assert response.status_code == 422
    assert "cannot be drawn" in response.get_json()["errors"]["file"][0]
    assert_nothing_stored(app)


@pytest.mark.parametrize(("factory", "content_type"), [(samples.heic_bytes, "image/heic"),
                                                       (samples.webp_bytes, "image/webp")], ids=["heic", "webp"])
def test_phone_photos_are_accepted_and_their_originals_kept(riverside: Practice, factory, content_type: str):
    data = factory()
    referral_id = new_referral(riverside)

    body = upload(riverside.staff, riverside, referral_id, data, filename="IMG_0001", kind="photo_intraoral",
                  teeth="8").get_json()

    assert (body["content_type"], body["preview_status"]) == (content_type, "ready")
    download = riverside.staff.get(body["content_url"])
    assert download.data == data
    assert download.headers["Content-Type"] == content_type
    assert download.headers["Content-Disposition"].endswith(f'.{content_type.split("/")[1]}"')
    assert _preview(riverside, body).size == (96, 64)


def _japanese_dicom(name: str) -> bytes:
    def encode(ds: Dataset) -> None:
        ds.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
        ds.PatientName = name

    return samples.dicom_bytes(mutate=encode)


def test_a_japanese_name_matches_the_patient_in_any_of_its_forms(riverside: Practice):
    patient = riverside.staff.post("/api/v1/patients", {
        "first_name": "\u592a\u90ce", "last_name": "\u5c71\u7530", "birth_date": "1980-01-01", "sex": "M",
        "state": "CA"}).get_json()["id"]
    referral_id = new_referral(riverside, patient_id=patient)
    data = _japanese_dicom("Yamada^Tarou=\u5c71\u7530^\u592a\u90ce=\u3084\u307e\u3060^\u305f\u308d\u3046")
    assert b"\x1b$B" in data, "written with ISO 2022 escape sequences"

    accepted = upload(riverside.staff, riverside, referral_id, data)
    other = upload(riverside.staff, riverside, referral_id,
                   _japanese_dicom("Suzuki^Hanako=\u9234\u6728^\u82b1\u5b50"))

    assert accepted.status_code == 201, accepted.get_json()
    assert other.status_code == 422
    assert "different patient" in other.get_json()["message"]


def test_an_alphabetic_name_still_matches_when_the_ideographic_form_follows(riverside: Practice):
    referral_id = new_referral(riverside)  # Jane Doe
    response = upload(riverside.staff, riverside, referral_id, _japanese_dicom("Doe^Jane=\u5c71\u7530^\u82b1\u5b50"))
    assert response.status_code == 201, response.get_json()


def _anonymous(path: Path) -> bytes:
    """The file with its patient's name and birth date blanked, so that the referral's patient accepts it."""
    data = path.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(io.BytesIO(data))
            for keyword in ("PatientName", "PatientBirthDate"):
                if keyword in ds:
                    ds[keyword].value = ""
            buffer = io.BytesIO()
            ds.save_as(buffer, enforce_file_format=True)
        except Exception:
            return data  # files pydicom cannot write back go as they are
    return buffer.getvalue()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgres-s3"])
def test_every_pydicom_file_is_accepted_with_a_true_preview_or_refused_with_a_4xx(app: Flask, riverside: Practice,
                                                                                 backend: str, tmp_path: Path):
    referral_id = new_referral(riverside)
    outcomes: dict[int, list[str]] = {}
    for path in PYDICOM_FILES:
        data = _anonymous(path)
        # Encoded in memory: the test client would otherwise spool large bodies to files it never closes.
        boundary, form = encode_multipart({
            "kind": "periapical", "area": "00", "reason": "r", "captured_at": "2026-01-05T10:30:00+00:00",
            "captured_by_provider_id": riverside.hygienist_provider_id,
            "file": FileStorage(io.BytesIO(data), filename=path.name),
        })
        response = riverside.staff.client.post(
            f"/api/v1/referrals/{referral_id}/images", data=form,
            content_type=f"multipart/form-data; boundary={boundary}",
            headers={"Authorization": f"Bearer {riverside.staff.token}"})
        outcomes.setdefault(response.status_code, []).append(path.name)
        if response.status_code != 201:
            assert response.get_json()["message"], path.name
            continue
        body = response.get_json()
        assert body["preview_status"] == "ready", path.name
        preview = _preview(riverside, body)
        syntax = (body.get("dicom") or {}).get("transfer_syntax_uid")
        if syntax != "1.2.840.10008.1.2.4.51":  # pydicom needs GPL code for 12-bit JPEG; see the imaging tests
            assert mean_difference(preview, data) <= 6.0, path.name
    assert set(outcomes) <= {201, 415, 422}, {code: names for code, names in outcomes.items() if code >= 500}
    assert len(outcomes[201]) >= 100


@pytest.mark.parametrize("factory", [samples.heic_bytes, samples.webp_bytes], ids=["heic", "webp"])
def test_a_consent_form_stays_a_pdf_jpeg_png_or_tiff_scan(app: Flask, riverside: Practice, factory):
    from tests.support.api import put_form

    referral_id = new_referral(riverside)

    response = put_form(riverside.staff, referral_id, factory(), filename="consent")

    assert response.status_code == 415
    assert list(app.extensions["referral.storage"].keys("consent/")) == []


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_a_truncated_heic_is_refused_at_upload_and_nothing_is_stored(app: Flask, riverside: Practice, keep: float):
    referral_id = new_referral(riverside)

    response = upload(riverside.staff, riverside, referral_id, samples.truncated(samples.heic_bytes(), keep),
                      kind="photo_intraoral")

    assert response.status_code == 422
    assert response.get_json()["errors"]["file"]
    assert_nothing_stored(app)
