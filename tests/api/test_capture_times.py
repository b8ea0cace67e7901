"""When and by whom an image was taken: what the DICOM file says is used when the form gives none (its wall
time read in the practice's zone unless it states its own offset); a time typed without an offset is the
practice's wall time; "not in the future" allows a few minutes of clock difference; an operator the file names
who is not the chosen provider is a note on the image."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from pydicom.dataset import Dataset

from referral import timezones
from tests.support import samples
from tests.support.api import assert_nothing_stored, new_referral, upload
from tests.support.world import Practice, referral_body


def _dicom(acquisition: str | None = None, **elements: str) -> bytes:
    def set_times(ds: Dataset) -> None:
        for keyword, value in elements.items():
            setattr(ds, keyword, value)

    return samples.dicom_bytes(teeth=(), acquisition=acquisition, mutate=set_times)


def _send(practice: Practice, data: bytes, filename: str = "pa.dcm", **fields: Any) -> Any:
    referral_id = new_referral(practice)
    return upload(practice.staff, practice, referral_id, data, filename, **{"captured_at": None, **fields})


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # Riverside is in Sacramento: a wall time in January is PST (UTC-8).
        (_dicom("20260101093000"), "2026-01-01T17:30:00+00:00"),
        (_dicom("20260701093000"), "2026-07-01T16:30:00+00:00"),
        (_dicom("20260101093000+0200"), "2026-01-01T07:30:00+00:00"),
        (_dicom(None, AcquisitionDate="20260101", AcquisitionTime="093000", TimezoneOffsetFromUTC="-0500"),
         "2026-01-01T14:30:00+00:00"),
        (_dicom(None, AcquisitionDate="20260101", AcquisitionTime="0930"), "2026-01-01T17:30:00+00:00"),
        (_dicom(None, ContentDate="20260102", ContentTime="081500"), "2026-01-02T16:15:00+00:00"),
        (_dicom("20260101", ContentDate="20260101", ContentTime="081500"), "2026-01-01T16:15:00+00:00"),
    ],
    ids=["dt-practice-zone", "dt-summer", "dt-own-offset", "da-tm-tz-element", "da-tm", "content", "dt-date-only"],
)
def test_without_a_typed_time_the_file_says_when_the_image_was_taken(riverside: Practice, data: bytes,
                                                                     expected: str):
    response = _send(riverside, data)

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["captured_at"] == expected
    assert datetime.fromisoformat(body["dicom"]["acquisition_datetime"]) == datetime.fromisoformat(expected)
    assert [n["code"] for n in body["capture_notes"]] == ["operator_differs"]


@pytest.mark.parametrize(
    ("data", "filename"),
    [(_dicom(None), "pa.dcm"), (_dicom("20260101"), "pa.dcm"), (samples.jpeg_bytes(), "photo.jpg")],
    ids=["dicom-without-time", "dicom-date-only", "photo"],
)
def test_without_a_typed_time_or_one_in_the_file_the_upload_is_refused(app: Flask, riverside: Practice,
                                                                       data: bytes, filename: str):
    kind = "photo_intraoral" if filename.endswith(".jpg") else "periapical"
    response = _send(riverside, data, filename, kind=kind)

    assert response.status_code == 422
    body = response.get_json()
    assert "captured_at" in body["errors"]
    assert "taken" in body["message"]
    assert_nothing_stored(app)


def test_a_file_time_in_the_future_is_refused(app: Flask, riverside: Practice):
    ahead = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y%m%d%H%M%S+0000")
    response = _send(riverside, _dicom(ahead))
    assert response.status_code == 422
    assert "captured_at" in response.get_json()["errors"]
    assert_nothing_stored(app)


def test_a_typed_time_wins_and_a_disagreeing_file_time_is_a_note(riverside: Practice):
    response = _send(riverside, _dicom("20260101093000"), captured_at="2026-01-02T03:31:00")

    assert response.status_code == 201
    body = response.get_json()
    assert body["captured_at"] == "2026-01-02T11:31:00+00:00"
    assert "time_differs" in [n["code"] for n in body["capture_notes"]]
    close = _send(riverside, _dicom("20260101093000"), captured_at="2026-01-01T09:35:00").get_json()
    assert "time_differs" not in [n["code"] for n in close["capture_notes"]]


def test_a_typed_wall_time_is_read_in_the_practice_zone(riverside: Practice):
    la = _send(riverside, _dicom("20260101093000"), captured_at="2026-01-05T09:00:00").get_json()
    assert la["captured_at"] == "2026-01-05T17:00:00+00:00"

    assert riverside.org_admin.patch(f"/api/v1/organizations/{riverside.id}",
                                     {"time_zone": "America/New_York"}).status_code == 200
    ny = _send(riverside, _dicom("20260101093000"), captured_at="2026-01-05T09:00:00").get_json()
    assert ny["captured_at"] == "2026-01-05T14:00:00+00:00"
    # The file's wall time too is now read in New York.
    from_file = _send(riverside, _dicom("20260101093000")).get_json()
    assert from_file["captured_at"] == "2026-01-01T14:30:00+00:00"


@pytest.mark.parametrize(("minutes", "status"), [(3, 201), (12, 422)])
def test_a_few_minutes_of_clock_difference_are_not_the_future(riverside: Practice, minutes: int, status: int):
    ahead = datetime.now(UTC) + timedelta(minutes=minutes)
    wall = timezones.wall_time(timezones.local(ahead, "America/Los_Angeles")).isoformat(timespec="seconds")

    typed_with_offset = _send(riverside, _dicom(None), captured_at=ahead.isoformat(timespec="seconds"))
    typed_as_wall_time = _send(riverside, _dicom(None), captured_at=wall)

    assert typed_with_offset.status_code == status
    assert typed_as_wall_time.status_code == status
    if status == 422:
        assert typed_as_wall_time.get_json()["errors"]["captured_at"] == ["Must not be in the future."]
        assert "America/Los_Angeles" in typed_as_wall_time.get_json()["message"]


def test_consent_typed_as_a_wall_time_is_read_in_the_practice_zone(riverside: Practice):
    referral_id = new_referral(riverside, consent={"given_by": "patient", "method": "verbal",
                                                   "given_at": "2026-01-05T09:00"})
    url = f"/api/v1/referrals/{referral_id}"
    assert riverside.staff.get(url).get_json()["consent"]["given_at"] == "2026-01-05T17:00:00+00:00"

    ahead = timezones.wall_time(timezones.local(datetime.now(UTC) + timedelta(minutes=3), "America/Los_Angeles"))
    recorded = riverside.staff.put(f"{url}/consent", {"given_by": "guardian", "method": "written",
                                                      "given_at": ahead.isoformat(timespec="minutes")})
    assert recorded.status_code == 200, recorded.get_json()

    later = timezones.wall_time(timezones.local(datetime.now(UTC) + timedelta(hours=1), "America/Los_Angeles"))
    refused = riverside.staff.put(f"{url}/consent", {"given_by": "patient", "method": "verbal",
                                                     "given_at": later.isoformat(timespec="minutes")})
    assert refused.status_code == 422
    assert refused.get_json()["errors"] == {"given_at": ["Must not be in the future."]}
    assert riverside.staff.get(url).get_json()["consent"]["given_by"] == "guardian"

    bad = riverside.staff.post("/api/v1/referrals", {
        **referral_body(riverside), "consent": {"given_by": "patient", "method": "verbal",
                                                   "given_at": later.isoformat(timespec="minutes")}})
    assert bad.status_code == 422
    assert bad.get_json()["errors"] == {"consent": {"given_at": ["Must not be in the future."]}}


def test_the_operator_the_file_names_is_kept_apart_from_the_chosen_provider(riverside: Practice):
    hygienist_file = samples.dicom_bytes(teeth=(), operator="Lee^Sam")

    chosen_by_file = _send(riverside, hygienist_file, captured_by_provider_id=None).get_json()
    agreeing = _send(riverside, hygienist_file, captured_by_provider_id=riverside.hygienist_provider_id).get_json()
    disagreeing = _send(riverside, hygienist_file, captured_by_provider_id=riverside.dentist_provider_id)

    assert chosen_by_file["captured_by_provider_id"] == riverside.hygienist_provider_id
    assert agreeing["capture_notes"] == []
    assert disagreeing.status_code == 201
    [note] = disagreeing.get_json()["capture_notes"]
    assert note["code"] == "operator_differs"
    assert "Sam Lee" in note["message"]
    assert "Alex Rivera" in note["message"]
    assert "operators_name" not in disagreeing.get_json()["dicom"]
    fixed = riverside.staff.patch(f"/api/v1/images/{disagreeing.get_json()['id']}",
                                  {"captured_by_provider_id": riverside.hygienist_provider_id})
    assert fixed.get_json()["capture_notes"] == []


def test_without_a_provider_the_uploader_own_provider_is_used(riverside: Practice):
    unknown_operator = samples.dicom_bytes(teeth=(), operator=None)
    response = _send(riverside, unknown_operator, captured_by_provider_id=None)
    assert response.status_code == 201
    assert response.get_json()["captured_by_provider_id"] == riverside.hygienist_provider_id
