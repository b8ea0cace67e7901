"""A whole referral, from a new patient to the claims, leaves nothing of the patient in the logs."""

from __future__ import annotations

import logging

import pytest
from flask import Flask

from referral.http.errors import catch_unexpected_errors
from referral.services import intake
from tests.support import samples
from tests.support.api import draft_body, new_referral, submit, upload
from tests.support.observability import json_lines
from tests.support.world import PATIENT, Practice, World

FIRST, LAST, BORN = "Zebulon", "Quixotewright", "1937-04-19"
STREET, MEMBER_ID, OPERATOR = "77 Marigoldvale Lane", "ZQ99887766", "Vantongerloo"
# Everything about the patient that must never be written to a log, in the forms it takes in the API,
# in a DICOM header and in a file name.
PHI = (FIRST, LAST, BORN, BORN.replace("-", ""), STREET, "Marigoldvale", MEMBER_ID, OPERATOR)


def _patient(practice: Practice) -> str:
    body = {**PATIENT, "first_name": FIRST, "last_name": LAST, "birth_date": BORN,
            "address": {**PATIENT["address"], "line1": STREET},
            "coverage": {**PATIENT["coverage"], "member_id": MEMBER_ID}}
    response = practice.staff.post("/api/v1/patients", body)
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


def _dicom(**overrides: str) -> bytes:
    values = {"patient_name": f"{LAST}^{FIRST}", "birth_date": BORN.replace("-", ""), "operator": f"{OPERATOR}^Ann",
              "patient_id": MEMBER_ID}
    values.update(overrides)
    return samples.dicom_bytes(teeth=(), **values)


@pytest.fixture(autouse=True)
def production_error_handling(app: Flask) -> None:
    """The test app lets bugs raise; here a failure inside intake must be answered as in production."""
    catch_unexpected_errors(app)


def test_a_full_referral_writes_no_name_birth_date_or_file_name_to_any_log(
        world: World, riverside: Practice, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="referral")
    capsys.readouterr()
    reader = world.reader(world.reader_practice("Coastal Endodontics"))
    staff = riverside.staff

    patient_id = _patient(riverside)
    assert staff.get(f"/api/v1/patients/{patient_id}").status_code == 200
    # A search by name travels in the query string, which the access line never quotes.
    staff.get(f"/api/v1/patients?search={LAST}&birth_date={BORN}")
    consent = {"given_by": "patient", "method": "verbal", "given_at": "2026-01-05T09:00:00Z"}
    referral_id = new_referral(riverside, patient_id=patient_id, teeth=["19"], consent=consent)
    filename = f"{LAST}_{FIRST}_{BORN}.dcm"

    # Refused uploads: a header naming someone else, and a failure inside intake whose message names the patient.
    wrong = upload(staff, riverside, referral_id, _dicom(patient_name="Other^Person"), filename=filename, teeth="19")
    detail = f"could not draw the image of {FIRST} {LAST}, born {BORN}"

    def failing_previews(*_args: object, **_kwargs: object) -> object:
        raise RuntimeError(detail)

    with monkeypatch.context() as patched:
        patched.setattr(intake, "render_previews_if_free", failing_previews)
        broken = upload(staff, riverside, referral_id, _dicom(), filename=filename, teeth="19")
    accepted = upload(staff, riverside, referral_id, _dicom(), filename=filename, teeth="19")
    logging.getLogger("referral.careless").info("stored", extra={"patient_name": f"{FIRST} {LAST}"})

    assert (wrong.status_code, broken.status_code, accepted.status_code) == (422, 500, 201), accepted.get_json()
    assert submit(riverside, referral_id).get_json()["assigned_provider_id"] == reader.provider_id
    assert reader.client.post(f"/api/v1/referrals/{referral_id}/accept").status_code == 200
    images = [i["id"] for i in staff.get(f"/api/v1/referrals/{referral_id}").get_json()["images"]]
    for image_id in images:
        assert reader.client.get(f"/api/v1/images/{image_id}").status_code == 200
        assert reader.client.get(f"/api/v1/images/{image_id}/content").status_code == 200
    assert reader.client.put(f"/api/v1/referrals/{referral_id}/report", draft_body(images)).status_code == 200
    assert reader.client.post(f"/api/v1/referrals/{referral_id}/report/sign").status_code == 200
    claims = riverside.billing.get(f"/api/v1/referrals/{referral_id}/claims")
    assert claims.status_code == 200
    assert claims.get_json()["claims"], "signing should have produced a claim"
    assert staff.get(f"/api/v1/referrals/{referral_id}/fhir").status_code == 200

    structured = capsys.readouterr().err
    lines = json_lines(structured)
    access = [line for line in lines if line["logger"] == "referral.access"]
    # The flow was logged: an access line per call, the unexpected failure, and the careless line.
    assert len(access) >= 15
    assert any(line["logger"] == "referral.errors" and line["level"] == "ERROR" for line in lines)
    assert any(line["logger"] == "referral.careless" and line["redacted_fields"] == 1 for line in lines)
    captured = caplog.text + "\n".join(record.getMessage() for record in caplog.records)
    for output in (structured, captured):
        for value in PHI:
            assert value.lower() not in output.lower(), value
