"""Capture quality warnings through the API: measured at intake, returned, stored, and never a refusal."""

from __future__ import annotations

import io

import numpy as np
from flask import Flask
from PIL import Image, ImageFilter

from tests.support import samples
from tests.support.api import images_of, new_referral, upload
from tests.support.world import Practice


def _blurred_photo() -> bytes:
    cells = np.random.default_rng(5).choice(np.array([30, 120, 225], np.uint8), (12, 16, 3))
    sharp = Image.fromarray(np.kron(cells, np.ones((32, 32, 1), np.uint8)), "RGB")
    buffer = io.BytesIO()
    sharp.filter(ImageFilter.GaussianBlur(5)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def test_an_upload_returns_and_stores_its_quality_warnings(app: Flask, riverside: Practice, backend: str):
    referral_id = new_referral(riverside)
    # A flat, nearly black DICOM radiograph: stored all the same, with warnings.
    dark = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes(pixel_fill=40))
    blurred = upload(riverside.staff, riverside, referral_id, _blurred_photo(), filename="photo.jpg",
                     kind="photo_intraoral", teeth=None)
    normal = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes())

    assert (dark.status_code, blurred.status_code, normal.status_code) == (201, 201, 201), backend
    dark_codes = [w["code"] for w in dark.get_json()["quality_warnings"]]
    assert dark_codes == ["underexposed", "low_contrast"]
    assert all(w["message"] for w in dark.get_json()["quality_warnings"])
    assert [w["code"] for w in blurred.get_json()["quality_warnings"]] == ["blurred"]
    assert normal.get_json()["quality_warnings"] == []

    read = riverside.dentist.get(f"/api/v1/images/{dark.get_json()['id']}").get_json()
    assert read["quality_warnings"] == dark.get_json()["quality_warnings"]
    listed = riverside.staff.get(f"/api/v1/referrals/{referral_id}/images").get_json()["items"]
    assert [[w["code"] for w in i["quality_warnings"]] for i in listed] == [dark_codes, ["blurred"], []]

    rows = {str(row.id): row.quality_warnings for row in images_of(app, referral_id)}
    assert rows[dark.get_json()["id"]] == dark.get_json()["quality_warnings"]
    assert rows[normal.get_json()["id"]] == []


def test_a_case_with_warned_images_can_still_be_sent(riverside: Practice):
    consent = {"given_by": "patient", "method": "verbal", "given_at": "2026-01-05T09:00:00Z"}
    referral_id = new_referral(riverside, teeth=["19"], consent=consent)
    dark = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes(teeth=(), pixel_fill=40), teeth="19")
    assert dark.get_json()["quality_warnings"]

    sent = riverside.staff.post(f"/api/v1/referrals/{referral_id}/submit")

    assert sent.status_code == 200, sent.get_json()
