from __future__ import annotations

import hashlib
import io
import uuid

import pytest
import sqlalchemy as sa
from flask import Flask
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from referral.models import AuditEvent, Image
from referral.models.images import ImmutableImageError
from tests.support import samples
from tests.support.api import assert_nothing_stored, new_referral, stored_state, upload
from tests.support.world import Practice

pytestmark = pytest.mark.both_backends  # stored bytes or database behaviour: both set-ups


def test_a_dicom_periapical_is_stored_capture_only_and_downloads_byte_for_byte(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    data = samples.dicom_bytes(teeth=("19",), kvp=65.0)

    response = upload(riverside.staff, riverside, referral_id, data, teeth=None)

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["kind"] == "periapical"
    assert body["capture_only"] is True
    assert body["teeth"] == ["19"], "teeth come from the DICOM header when the form gives none"
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["size"] == len(data)
    assert body["content_type"] == "application/dicom"
    assert body["dicom"]["modality"] == "IO"
    assert body["dicom"]["kvp"] == 65.0
    assert body["exposure"]["kvp"] == 65.0
    assert "patient_name" not in body["dicom"], "identifying header fields are not echoed"

    download = riverside.dentist.get(f"/api/v1/images/{body['id']}/content")
    assert download.status_code == 200
    assert download.data == data
    assert download.headers["Content-Type"] == "application/dicom"
    assert download.headers["Content-Disposition"] == f'attachment; filename="image-{body["id"]}.dcm"'
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert download.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("factory", "kind", "content_type"),
    [
        (samples.jpeg_bytes, "photo_intraoral", "image/jpeg"),
        (samples.png_bytes, "photo_extraoral", "image/png"),
        (samples.tiff_bytes, "periapical", "image/tiff"),
    ],
)
def test_photos_and_sensor_exports_are_typed_by_their_bytes(riverside: Practice, factory, kind, content_type):
    referral_id = new_referral(riverside)
    data = factory()

    # The name and the declared type lie; the bytes decide.
    response = upload(riverside.staff, riverside, referral_id, data, filename="scan.dcm", kind=kind)

    assert response.status_code == 201, response.get_json()
    assert response.get_json()["content_type"] == content_type
    download = riverside.staff.get(f"/api/v1/images/{response.get_json()['id']}/content")
    assert download.data == data
    assert download.headers["Content-Type"] == content_type


def test_images_are_listed_on_the_referral_and_in_its_detail(riverside: Practice):
    referral_id = new_referral(riverside)
    first = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes()).get_json()
    second = upload(riverside.staff, riverside, referral_id, samples.jpeg_bytes(), kind="photo_intraoral",
                    teeth="18,19").get_json()

    listed = riverside.dentist.get(f"/api/v1/referrals/{referral_id}/images").get_json()["items"]
    detail = riverside.dentist.get(f"/api/v1/referrals/{referral_id}").get_json()

    assert [i["id"] for i in listed] == [first["id"], second["id"]]
    assert [i["id"] for i in detail["images"]] == [first["id"], second["id"]]
    assert detail["images"][1]["teeth"] == ["18", "19"]


@pytest.mark.parametrize(
    ("data", "filename"),
    [
        (samples.html_bytes(), "radiograph.jpg"),
        (samples.svg_bytes(), "photo.png"),
        (samples.zip_bytes(), "study.dcm"),
        (samples.exe_bytes(), "photo.jpg"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "xray.tif"),
    ],
    ids=["html-as-jpg", "svg-as-png", "zip-as-dcm", "exe-as-jpg", "pdf-as-tif"],
)
def test_disguised_files_are_refused_with_415_and_nothing_is_stored(app: Flask, riverside: Practice, data,
                                                                     filename):
    referral_id = new_referral(riverside)

    response = upload(riverside.staff, riverside, referral_id, data, filename=filename)

    assert response.status_code == 415
    assert "DICOM" in response.get_json()["message"]
    assert_nothing_stored(app)


@pytest.mark.parametrize(
    "data",
    [b"", samples.truncated(samples.dicom_bytes(rows=128, columns=128)), samples.truncated(samples.jpeg_bytes()),
     samples.truncated(samples.png_bytes()), samples.pixel_flood_png(), samples.deeply_nested_dicom(),
     samples.dicom_without_pixels()],
    ids=["empty", "truncated-dicom", "truncated-jpeg", "truncated-png", "pixel-flood", "nested-dicom",
         "dicom-without-pixels"],
)
def test_empty_truncated_and_hostile_files_are_refused_with_422(app: Flask, riverside: Practice, data):
    referral_id = new_referral(riverside)

    response = upload(riverside.staff, riverside, referral_id, data)

    assert response.status_code == 422
    assert response.get_json()["errors"]["file"]
    assert_nothing_stored(app)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"teeth": "33"}, "teeth"),
        ({"teeth": "19,Z"}, "teeth"),
        ({"area": "50"}, "area"),
        ({"kind": "selfie"}, "kind"),
        ({"captured_at": "2099-01-01T00:00:00+00:00"}, "captured_at"),
        ({"captured_at": "2099-01-05T10:30:00"}, "captured_at"),
        ({"captured_at": "yesterday"}, "captured_at"),
        ({"captured_by_provider_id": "not-a-uuid"}, "captured_by_provider_id"),
        ({"reason": ""}, "reason"),
        ({"reason": "x" * 1001}, "reason"),
        ({"retake_reason": "cone cut"}, "retake_of"),
        ({"exposure_kvp": "-5"}, "exposure_kvp"),
        ({"comment": "unknown fields are refused"}, "comment"),
    ],
)
def test_bad_form_fields_are_refused_with_422_naming_the_field(app: Flask, riverside: Practice, fields, field):
    referral_id = new_referral(riverside)

    response = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes(), **fields)

    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert field in errors.get("form", errors), errors
    assert_nothing_stored(app)


def test_an_upload_without_a_file_is_refused(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    response = riverside.staff.post(
        f"/api/v1/referrals/{referral_id}/images",
        data={"kind": "periapical", "teeth": "19", "reason": "r", "captured_at": "2026-01-05T10:30:00+00:00",
              "captured_by_provider_id": riverside.hygienist_provider_id},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert "file" in response.get_json()["errors"]["files"]
    assert_nothing_stored(app)


def test_a_periapical_must_name_a_tooth_or_an_area(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    no_teeth_in_header = samples.dicom_bytes(teeth=())

    refused = upload(riverside.staff, riverside, referral_id, no_teeth_in_header, teeth=None)
    with_area = upload(riverside.staff, riverside, referral_id, no_teeth_in_header, teeth=None, area="30")

    assert refused.status_code == 422
    assert "teeth" in refused.get_json()["errors"]
    assert with_area.status_code == 201
    assert with_area.get_json()["area"] == "30"


@pytest.mark.parametrize(
    "header",
    [{"patient_name": "Smith^John"}, {"birth_date": "19791231"}, {"patient_name": "Doe^Mary"}],
    ids=["other-family-name", "other-birth-date", "other-given-name"],
)
def test_a_dicom_of_another_patient_is_refused(app: Flask, riverside: Practice, header):
    referral_id = new_referral(riverside)

    response = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes(**header))

    assert response.status_code == 422
    assert "different patient" in response.get_json()["message"]
    assert_nothing_stored(app)


def test_a_dicom_with_matching_name_in_other_case_and_spacing_is_accepted(riverside: Practice):
    referral_id = new_referral(riverside)
    response = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes(patient_name="DOE^JANE^A"))
    assert response.status_code == 201


def test_a_dicom_radiograph_filed_as_a_photo_is_refused(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)

    response = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes(), kind="photo_intraoral")

    assert response.status_code == 422
    assert "kind" in response.get_json()["errors"]
    assert_nothing_stored(app)


def test_captured_by_must_be_a_provider_of_the_uploading_office(app: Flask, riverside: Practice,
                                                                hillside: Practice):
    referral_id = new_referral(riverside)

    response = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes(),
                      captured_by_provider_id=hillside.hygienist_provider_id)

    assert response.status_code == 422
    assert "captured_by_provider_id" in response.get_json()["errors"]
    assert_nothing_stored(app)


def test_a_retake_points_at_an_image_of_the_same_referral(riverside: Practice):
    first_referral = new_referral(riverside)
    other_referral = new_referral(riverside)
    original = upload(riverside.staff, riverside, first_referral, samples.dicom_bytes()).get_json()

    elsewhere = upload(riverside.staff, riverside, other_referral, samples.dicom_bytes(),
                       retake_of=original["id"], retake_reason="apex cut off")
    retake = upload(riverside.staff, riverside, first_referral, samples.dicom_bytes(kvp=70.0),
                    retake_of=original["id"], retake_reason="apex cut off")

    assert elsewhere.status_code == 422
    assert "retake_of" in elsewhere.get_json()["errors"]
    assert retake.status_code == 201
    assert retake.get_json()["retake_of"] == original["id"]
    assert retake.get_json()["retake_reason"] == "apex cut off"


def test_billing_and_admin_roles_cannot_upload_or_download_image_bytes(riverside: Practice):
    referral_id = new_referral(riverside)
    image = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes()).get_json()

    assert upload(riverside.billing, riverside, referral_id, samples.dicom_bytes()).status_code == 403
    assert riverside.billing.get(f"/api/v1/images/{image['id']}/content").status_code == 403
    assert riverside.org_admin.get(f"/api/v1/images/{image['id']}/content").status_code == 403
    # metadata without pixels is still available to billing
    assert riverside.billing.get(f"/api/v1/images/{image['id']}").status_code == 200


def test_another_organization_sees_404_for_every_image_route(riverside: Practice, hillside: Practice):
    referral_id = new_referral(riverside)
    image = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes()).get_json()

    for client in (hillside.staff, hillside.dentist, hillside.billing, hillside.org_admin):
        assert client.get(f"/api/v1/images/{image['id']}").status_code == 404
        assert client.get(f"/api/v1/images/{image['id']}/content").status_code == 404
        assert client.get(f"/api/v1/referrals/{referral_id}/images").status_code == 404
    assert upload(hillside.staff, hillside, referral_id, samples.dicom_bytes()).status_code == 404


def test_every_download_is_audited_with_who_and_where(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    image = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes()).get_json()

    riverside.dentist.get(f"/api/v1/images/{image['id']}/content")
    riverside.dentist.get(f"/api/v1/images/{image['id']}/content")

    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        downloads = session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "image.download")).all()
    assert len(downloads) == 2
    assert {str(d.actor_user_id) for d in downloads} == {riverside.users["dentist"]}
    assert all(d.ip_address == "127.0.0.1" and str(d.object_id) == image["id"] for d in downloads)


def test_the_same_idempotency_key_and_body_returns_the_first_response_and_stores_once(app: Flask,
                                                                                       riverside: Practice):
    referral_id = new_referral(riverside)
    data = samples.dicom_bytes()
    key = {"Idempotency-Key": "5f0c1f5e-upload-1"}

    first = upload(riverside.staff, riverside, referral_id, data, headers=key)
    second = upload(riverside.staff, riverside, referral_id, data, headers=key)

    assert first.status_code == second.status_code == 201
    assert second.get_json() == first.get_json()
    assert second.headers["Idempotent-Replayed"] == "true"
    rows, keys = stored_state(app)
    assert rows == 1
    assert len(keys) == 3, "the original, its preview and its thumbnail"


def test_the_same_idempotency_key_with_a_different_body_is_a_conflict(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    key = {"Idempotency-Key": "upload-2"}

    first = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes(), headers=key)
    different = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes(kvp=90.0), headers=key)

    assert first.status_code == 201
    assert different.status_code == 409
    rows, keys = stored_state(app)
    assert rows == 1
    assert len(keys) == 3, "the original, its preview and its thumbnail"


def test_a_refused_upload_does_not_use_up_its_idempotency_key(riverside: Practice):
    referral_id = new_referral(riverside)
    key = {"Idempotency-Key": "upload-3"}

    refused = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes(), headers=key, teeth="99")
    fixed = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes(), headers=key)

    assert refused.status_code == 422
    assert fixed.status_code == 201


def test_an_invalid_idempotency_key_is_refused(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    response = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes(),
                      headers={"Idempotency-Key": "x" * 256})
    assert response.status_code == 422
    assert_nothing_stored(app)


def test_stored_images_cannot_be_changed(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    image = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes()).get_json()

    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        row = session.get(Image, uuid.UUID(image["id"]))
        # Before sending, labels may be fixed (tests/api/test_image_fixes.py); the bytes' record never changes.
        row.sha256 = "0" * 64
        with pytest.raises(ImmutableImageError):
            session.commit()


def test_an_oversize_body_is_refused_with_413_before_it_is_read(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    limit = app.config["MAX_CONTENT_LENGTH"]

    body = io.BytesIO(b"--x\r\n" + b"a" * 1024)

    response = riverside.staff.client.post(
        f"/api/v1/referrals/{referral_id}/images",
        input_stream=body,
        # the test client would measure the stream; a real client declares the length it will send
        environ_overrides={"CONTENT_LENGTH": str(limit + 1)},
        headers={"Authorization": f"Bearer {riverside.staff.token}",
                 "Content-Type": "multipart/form-data; boundary=x"},
    )

    assert response.status_code == 413
    assert response.get_json()["code"] == 413
    assert body.tell() == 0, "the server read a body it should have refused by its declared length"
    assert_nothing_stored(app)


def test_a_file_part_over_the_upload_limit_is_refused_while_streaming(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    too_big = samples.dicom_bytes(rows=2100, columns=2100)  # about 8.4 MB of pixels, limit is 8 MiB
    assert len(too_big) > app.config["MAX_UPLOAD_BYTES"]

    # Encoded in memory: the test client would otherwise spool the body to a file it never closes.
    boundary, body = encode_multipart({
        "kind": "periapical", "teeth": "19", "reason": "r", "captured_at": "2026-01-05T10:30:00+00:00",
        "captured_by_provider_id": riverside.hygienist_provider_id,
        "file": FileStorage(io.BytesIO(too_big), filename="big.dcm"),
    })
    response = riverside.staff.client.post(
        f"/api/v1/referrals/{referral_id}/images", data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
        headers={"Authorization": f"Bearer {riverside.staff.token}"},
    )

    assert response.status_code == 413
    assert "limit" in response.get_json()["message"]
    assert_nothing_stored(app)


def test_reading_image_metadata_and_listing_images_are_audited(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    image = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes()).get_json()

    riverside.billing.get(f"/api/v1/images/{image['id']}")
    riverside.dentist.get(f"/api/v1/referrals/{referral_id}/images")

    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        actions = {(e.action, str(e.actor_user_id)) for e in session.scalars(sa.select(AuditEvent))}
    assert ("image.read", riverside.users["billing"]) in actions
    assert ("image.list", riverside.users["dentist"]) in actions
