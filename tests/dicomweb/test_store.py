"""STOW-RS through the dicomweb-client library against the running server: an instance is filed into the open
referral its Accession Number names, through the same checks as an upload; every refusal stores nothing and is
answered with a Failed SOP Sequence and the reason code, never success."""

from __future__ import annotations

import io
from typing import Any

import pytest
import requests
from flask import Flask
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tests.dicomweb.conftest import Case
from tests.support import samples
from tests.support.api import images_of, new_referral, stored_state, submit
from tests.support.dicomweb import client_for, dataset, radiograph, raw, values
from tests.support.fhir import audit_rows
from tests.support.world import Client, Practice, Reader

pytestmark = pytest.mark.both_backends  # stored bytes or database behaviour: both set-ups

BOUNDARY = "b0undary-for-tests"
STOW_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'


def _referral(who: Client, referral_id: str) -> dict[str, Any]:
    return dict(who.get(f"/api/v1/referrals/{referral_id}").get_json())


def _sent(riverside: Practice, case: Case, **options: Any) -> tuple[Dataset, str]:
    """A radiograph of the case's referral, as its sensor would send it: the worklist's accession and study."""
    referral = _referral(riverside.staff, case.referral_id)
    data, _, _, sop = radiograph(study=referral["study_instance_uid"], accession=referral["accession_number"],
                                 **options)
    return dataset(data), sop


def _multipart(*parts: bytes, part_type: str = "application/dicom") -> bytes:
    body = b""
    for part in parts:
        body += f"--{BOUNDARY}\r\nContent-Type: {part_type}\r\n\r\n".encode() + part + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


def _refused(call: Any, status: int = 409) -> dict[str, Any]:
    with pytest.raises(requests.HTTPError) as raised:
        call()
    assert raised.value.response.status_code == status, raised.value.response.text
    return dict(raised.value.response.json())


def _failures(body: dict[str, Any]) -> list[tuple[str | None, int]]:
    return [((values(item, "00081155") or [None])[0], values(item, "00081197")[0])
            for item in values(body, "00081198")]


def test_an_instance_is_filed_into_the_referral_its_accession_number_names(
        app: Flask, dicomweb_url: str, riverside: Practice, case: Case):
    web = client_for(dicomweb_url, riverside.staff)
    ds, sop = _sent(riverside, case)
    answer = web.store_instances([ds])
    referenced = answer.ReferencedSOPSequence
    assert [item.ReferencedSOPInstanceUID for item in referenced] == [sop]
    assert "FailedSOPSequence" not in answer
    assert referenced[0].RetrieveURL.endswith(f"/instances/{sop}")
    rows = images_of(app, case.referral_id)
    filed = [row for row in rows if row.sop_instance_uid == sop]
    assert len(filed) == 1
    assert filed[0].kind.value == "periapical"
    assert filed[0].teeth == ["19"]
    assert filed[0].captured_by_confirmed, "the sender is the practice's hygienist"
    assert str(filed[0].captured_by_provider_id) == riverside.hygienist_provider_id
    assert str(filed[0].captured_at).startswith("2026-01-01")
    # Filed like an upload: the office sees it in the case, a viewer finds and retrieves it.
    items = riverside.staff.get(f"/api/v1/referrals/{case.referral_id}/images").get_json()["items"]
    assert len(items) == 4
    study = _referral(riverside.staff, case.referral_id)["study_instance_uid"]
    assert web.retrieve_instance(study, ds.SeriesInstanceUID, sop).SOPInstanceUID == sop
    assert len(audit_rows(app, "image.create")) == 4


def test_the_same_instance_sent_twice_files_one_image(app: Flask, dicomweb_url: str, riverside: Practice,
                                                      case: Case):
    web = client_for(dicomweb_url, riverside.dentist)
    ds, sop = _sent(riverside, case)
    web.store_instances([ds])
    again = web.store_instances([ds])
    assert [item.ReferencedSOPInstanceUID for item in again.ReferencedSOPSequence] == [sop]
    filed = [row for row in images_of(app, case.referral_id) if row.sop_instance_uid == sop]
    assert len(filed) == 1
    assert filed[0].captured_by_confirmed, "the dentist is the practice's own provider"


def test_a_sender_without_a_provider_leaves_the_capturer_to_confirm(app: Flask, dicomweb_url: str, world: Any,
                                                                    riverside: Practice, case: Case):
    created = world.admin.post(f"/api/v1/organizations/{riverside.id}/users",
                               {"email": "front-desk@riverside.example.com", "role": "staff"})
    assert created.status_code == 201, created.get_json()
    web = client_for(dicomweb_url, world.as_token(created.get_json()["token"]))
    ds, sop = _sent(riverside, case)
    web.store_instances([ds])
    filed = [row for row in images_of(app, case.referral_id) if row.sop_instance_uid == sop]
    assert not filed[0].captured_by_confirmed
    referral = _referral(riverside.staff, case.referral_id)
    assert str(filed[0].captured_by_provider_id) == referral["referring_provider_id"]


def test_one_stored_and_one_refused_is_a_partial_success(app: Flask, dicomweb_url: str, riverside: Practice,
                                                         case: Case):
    good, good_sop = _sent(riverside, case)
    bad, bad_sop = _sent(riverside, case, patient_name="Smith^John")
    before = stored_state(app)[0]
    response = raw(dicomweb_url, "/studies", riverside.staff, method="POST",
                   data=_multipart(_encode(good), _encode(bad)), headers={"Content-Type": STOW_TYPE})
    assert response.status_code == 202, response.text
    assert response.headers["Content-Type"] == "application/dicom+json"
    body = response.json()
    assert [values(item, "00081155")[0] for item in values(body, "00081199")] == [good_sop]
    assert _failures(body) == [(bad_sop, 0x0110)]
    assert stored_state(app)[0] == before + 1
    assert "patient" in response.headers["Warning"]


def _encode(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_refusals_store_nothing(app: Flask, dicomweb_url: str, world: Any, riverside: Practice, hillside: Practice,
                                reader: Reader, case: Case):
    web = client_for(dicomweb_url, riverside.staff)
    before = stored_state(app)
    # No referral has this accession number, or only another practice's does: the same answer either way.
    unknown, unknown_sop = _sent(riverside, case)
    unknown.AccessionNumber = "NOSUCHCASE"
    assert _failures(_refused(lambda: web.store_instances([unknown]))) == [(unknown_sop, 0x0110)]
    theirs = _referral(hillside.staff, new_referral(hillside))
    foreign, foreign_sop = _sent(riverside, case)
    foreign.AccessionNumber = theirs["accession_number"]
    assert _failures(_refused(lambda: web.store_instances([foreign]))) == [(foreign_sop, 0x0110)]
    # Another patient's image, and a file that is not DICOM.
    wrong_patient, wrong_sop = _sent(riverside, case, patient_name="Smith^John", birth_date="19700101")
    assert _failures(_refused(lambda: web.store_instances([wrong_patient]))) == [(wrong_sop, 0x0110)]
    garbage = raw(dicomweb_url, "/studies", riverside.staff, method="POST", data=_multipart(samples.elf_bytes()),
                  headers={"Content-Type": STOW_TYPE})
    assert garbage.status_code == 409
    assert _failures(garbage.json()) == [(None, 0xC000)]
    # Sent to another study than the file's.
    ds, sop = _sent(riverside, case)
    assert _failures(_refused(lambda: web.store_instances([ds], study_instance_uid=generate_uid()))) == [
        (sop, 0xA900)]
    # Another file under an SOP Instance UID already filed.
    first, first_sop = _sent(riverside, case)
    web.store_instances([first])
    before = stored_state(app)
    clash, _ = _sent(riverside, case, pixel_fill=7)
    clash.SOPInstanceUID = first_sop
    clash.file_meta.MediaStorageSOPInstanceUID = first_sop
    assert _failures(_refused(lambda: web.store_instances([clash]))) == [(first_sop, 0x0111)]
    # Roles that do not capture images.
    for who in (riverside.billing, riverside.org_admin, reader.client):
        ds, sop = _sent(riverside, case)
        assert _failures(_refused(lambda who=who, ds=ds: client_for(dicomweb_url, who).store_instances([ds]))) == [
            (None, 0x0124)]
    assert stored_state(app) == before
    assert audit_rows(app, "image.create")[-1].outcome == "denied"


def test_a_referral_no_longer_open_takes_no_images(app: Flask, dicomweb_url: str, riverside: Practice,
                                                   reader: Reader, case: Case):
    assert submit(riverside, case.referral_id).status_code == 200
    before = stored_state(app)
    ds, sop = _sent(riverside, case)
    body = _refused(lambda: client_for(dicomweb_url, riverside.staff).store_instances([ds]))
    assert _failures(body) == [(sop, 0x0110)]
    assert stored_state(app) == before


@pytest.mark.parametrize(("content_type", "body", "status"), [
    ("application/dicom", b"DICM", 415),
    ('multipart/related; type="application/dicom+json"; boundary=x', b"--x\r\n\r\n{}\r\n--x--\r\n", 415),
    ('multipart/related; type="application/dicom"', b"--x\r\n\r\nabc\r\n--x--\r\n", 400),
    (STOW_TYPE, b"", 400),
    (STOW_TYPE, f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\nabc".encode(), 400),
    (STOW_TYPE, f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n\r\nabc\r\n--{BOUNDARY}--".encode(), 415),
])
def test_a_body_that_is_not_multipart_dicom_is_refused(app: Flask, dicomweb_url: str, riverside: Practice,
                                                       case: Case, content_type: str, body: bytes, status: int):
    before = stored_state(app)
    response = raw(dicomweb_url, "/studies", riverside.staff, method="POST", data=body,
                   headers={"Content-Type": content_type})
    assert response.status_code == status, response.text
    assert stored_state(app) == before


def test_storing_needs_a_token(dicomweb_url: str, riverside: Practice, case: Case):
    ds, _ = _sent(riverside, case)
    response = raw(dicomweb_url, "/studies", method="POST", data=_multipart(_encode(ds)),
                   headers={"Content-Type": STOW_TYPE})
    assert response.status_code == 401
