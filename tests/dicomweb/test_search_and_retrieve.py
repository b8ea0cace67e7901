"""QIDO-RS and WADO-RS through the dicomweb-client library against the running server: the office finds its
study by the usual keys and gets each stored file back unchanged, its metadata without pixels, and JPEGs."""

from __future__ import annotations

import pytest
import requests
from flask import Flask

from tests.dicomweb.conftest import Case
from tests.support import samples
from tests.support.api import images_of, upload
from tests.support.dicomweb import client_for, dataset, raw, values
from tests.support.fhir import audit_rows
from tests.support.world import Practice


def test_the_office_finds_its_study_series_and_instances(app: Flask, dicomweb_url: str, riverside: Practice,
                                                         case: Case):
    web = client_for(dicomweb_url, riverside.staff)
    studies = web.search_for_studies()
    assert len(studies) == 1, "the photo has no DICOM identity and is not a study of its own"
    study = studies[0]
    assert values(study, "0020000D") == [case.study]
    assert values(study, "00100010") == [{"Alphabetic": "Doe^Jane"}]
    assert values(study, "00100020") == [riverside.patient_id]
    referral = riverside.staff.get(f"/api/v1/referrals/{case.referral_id}").get_json()
    assert values(study, "00080050") == [referral["accession_number"]], "the referral's, not the files' own"
    assert values(study, "00080020") == ["20260101"]
    assert values(study, "00080061") == ["IO"]
    assert values(study, "00201206") == [1]
    assert values(study, "00201208") == [2]
    # (dicomweb-client sends its Host header without the port, so only the path is compared)
    assert values(study, "00081190")[0].endswith(f"/dicomweb/studies/{case.study}")
    assert "00081030" not in study, "the description is returned only when asked for"

    series = web.search_for_series(case.study)
    assert [values(s, "0020000E") for s in series] == [[case.series]]
    assert values(series[0], "00201209") == [2]
    instances = web.search_for_instances(case.study, case.series)
    assert [values(i, "00080018")[0] for i in instances] == case.sops
    assert all(values(i, "00280010") == [64] for i in instances)
    in_study = web.search_for_instances(case.study)
    assert [values(i, "00080018")[0] for i in in_study] == case.sops
    assert web.search_for_series("1.2.3.4") == []
    listed = audit_rows(app, "image.list")
    assert [row.details for row in listed[:1]] == [{"via": "dicomweb.search", "count": 2}]
    assert all(str(row.referral_id) == case.referral_id for row in listed)


@pytest.mark.parametrize(("filters", "found"), [
    ({"AccessionNumber": "RIV-0001"}, True),
    ({"AccessionNumber": "RIV-*"}, True),
    ({"AccessionNumber": "HIL-0001"}, False),
    ({"PatientID": "P-1"}, True),  # as the file names the patient
    ({"PatientName": "doe*"}, True),
    ({"StudyDate": "20260101"}, True),
    ({"StudyDate": "20251201-20260131"}, True),
    ({"StudyDate": "-20251231"}, False),
    ({"StudyDate": "20260102-"}, False),
    ({"00080020": "20260101"}, True),
    ({"ModalitiesInStudy": "PX"}, False),
])
def test_studies_match_the_usual_keys(dicomweb_url: str, riverside: Practice, case: Case,
                                      filters: dict[str, str], found: bool):
    web = client_for(dicomweb_url, riverside.staff)
    studies = web.search_for_studies(search_filters=filters)
    assert [values(s, "0020000D")[0] for s in studies] == ([case.study] if found else [])


def test_patient_id_study_uid_includefield_limit_and_offset(dicomweb_url: str, riverside: Practice, case: Case):
    web = client_for(dicomweb_url, riverside.staff)
    assert len(web.search_for_studies(search_filters={"PatientID": riverside.patient_id})) == 1
    assert len(web.search_for_studies(search_filters={"StudyInstanceUID": f"1.2.3,{case.study}"})) == 1
    described = web.search_for_studies(fields=["StudyDescription"])
    assert values(described[0], "00081030") == ["Endodontics referral"]
    everything = web.search_for_instances(case.study, fields=["all"])
    assert values(everything[0], "00080016") == ["1.2.840.10008.5.1.4.1.1.1.3"]
    assert values(everything[0], "00280100") == [16]
    first = web.search_for_instances(case.study, limit=1)
    second = web.search_for_instances(case.study, limit=1, offset=1)
    assert [values(i, "00080018")[0] for i in first + second] == case.sops


@pytest.mark.parametrize(("query", "status"), [
    ("StudyDate=2026-01-01", 400), ("StudyDate=-", 400), ("limit=0", 400), ("limit=x", 400), ("offset=-1", 400),
    ("includefield=NoSuchThing", 400), ("fuzzymatching=maybe", 400), ("NoSuchKey=1", 200),
])
def test_a_search_it_cannot_read_is_refused(dicomweb_url: str, riverside: Practice, case: Case, query: str,
                                            status: int):
    response = raw(dicomweb_url, f"/studies?{query}", riverside.staff)
    assert response.status_code == status, response.text
    if status == 200:
        assert "Warning" in response.headers


def test_answers_in_media_types_the_client_takes_only(dicomweb_url: str, riverside: Practice, case: Case):
    assert raw(dicomweb_url, "/studies", riverside.staff, headers={"Accept": "text/html"}).status_code == 406
    path = f"/studies/{case.study}/series/{case.series}/instances/{case.sops[0]}"
    other_syntax = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50'
    assert raw(dicomweb_url, path, riverside.staff, headers={"Accept": other_syntax}).status_code == 406
    assert raw(dicomweb_url, path + "/rendered", riverside.staff,
               headers={"Accept": "image/png"}).status_code == 406


def test_retrieve_gives_the_stored_files_unchanged(app: Flask, dicomweb_url: str, riverside: Practice, case: Case):
    web = client_for(dicomweb_url, riverside.staff)
    instance = web.retrieve_instance(case.study, case.series, case.sops[0])
    stored = dataset(case.files[0])
    assert instance.SOPInstanceUID == case.sops[0]
    assert instance.PixelData == stored.PixelData
    assert instance.PatientName == "Doe^Jane"
    series = web.retrieve_series(case.study, case.series)
    assert sorted(ds.SOPInstanceUID for ds in series) == sorted(case.sops)
    study = web.retrieve_study(case.study)
    assert len(study) == 2
    downloads = audit_rows(app, "image.download")
    assert len(downloads) == 5
    assert all(row.details == {"via": "dicomweb"} for row in downloads)


def test_metadata_is_dicom_json_without_pixels(app: Flask, dicomweb_url: str, riverside: Practice, case: Case):
    web = client_for(dicomweb_url, riverside.staff)
    metadata = web.retrieve_instance_metadata(case.study, case.series, case.sops[0])
    assert values(metadata, "00080018") == [case.sops[0]]
    assert values(metadata, "00280010") == [64]
    assert values(metadata, "00100010") == [{"Alphabetic": "Doe^Jane"}]
    assert "7FE00010" not in metadata
    assert all(value.get("vr") not in ("OB", "OW") for value in metadata.values())
    series = web.retrieve_series_metadata(case.study, case.series)
    assert sorted(values(m, "00080018")[0] for m in series) == sorted(case.sops)
    assert len(web.retrieve_study_metadata(case.study)) == 2
    reads = audit_rows(app, "image.read")
    assert len(reads) == 5
    assert all(row.details == {"via": "dicomweb.metadata"} for row in reads)


def test_rendered_and_thumbnail_are_the_stored_jpegs(app: Flask, dicomweb_url: str, riverside: Practice, case: Case):
    web = client_for(dicomweb_url, riverside.staff)
    rendered = web.retrieve_instance_rendered(case.study, case.series, case.sops[0], media_types=("image/jpeg",))
    instance = f"/studies/{case.study}/series/{case.series}/instances/{case.sops[0]}"
    thumbnail = raw(dicomweb_url, instance + "/thumbnail", riverside.staff, headers={"Accept": "image/jpeg"}).content
    assert rendered[:2] == thumbnail[:2] == b"\xff\xd8"
    image_id = riverside.staff.get(f"/api/v1/referrals/{case.referral_id}/images").get_json()["items"][0]["id"]
    assert rendered == riverside.staff.get(f"/api/v1/images/{image_id}/preview").data
    study_thumb = raw(dicomweb_url, f"/studies/{case.study}/thumbnail", riverside.staff)
    assert study_thumb.status_code == 200
    assert study_thumb.headers["Content-Type"] == "image/jpeg"
    assert len(audit_rows(app, "image.thumbnail")) == 2


def test_unknown_study_series_and_instance_are_not_found(dicomweb_url: str, riverside: Practice, case: Case):
    web = client_for(dicomweb_url, riverside.staff)
    for call in (lambda: web.retrieve_study("1.2.3"),
                 lambda: web.retrieve_instance(case.study, case.series, "1.2.3"),
                 lambda: web.retrieve_study_metadata("1.2.3")):
        with pytest.raises(requests.HTTPError) as raised:
            call()
        assert raised.value.response.status_code == 404


def test_without_a_valid_token_nothing_is_answered(dicomweb_url: str, case: Case):
    assert raw(dicomweb_url, "/studies").status_code == 401
    response = raw(dicomweb_url, "/studies", headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 401
    assert raw(dicomweb_url, f"/studies/{case.study}", headers={"Cookie": "referral_session=x"}).status_code == 401


def test_frames_are_served_as_stored(dicomweb_url: str, riverside: Practice, case: Case):
    web = client_for(dicomweb_url, riverside.staff)
    frames = web.retrieve_instance_frames(case.study, case.series, case.sops[0], frame_numbers=[1],
                                          media_types=("application/octet-stream",))
    assert frames == [dataset(case.files[0]).PixelData]
    path = f"/studies/{case.study}/series/{case.series}/instances/{case.sops[0]}/frames"
    assert raw(dicomweb_url, path + "/2", riverside.staff).status_code == 404
    assert raw(dicomweb_url, path + "/0", riverside.staff).status_code == 400
    assert raw(dicomweb_url, path + "/1", riverside.staff, headers={"Accept": "image/png"}).status_code == 406


def test_compressed_frames_keep_their_transfer_syntax(dicomweb_url: str, riverside: Practice, case: Case):
    data = samples.encapsulated_dicom_bytes()
    response = upload(riverside.staff, riverside, case.referral_id, data, teeth="8")
    assert response.status_code == 201, response.get_json()
    stored = dataset(data)
    path = (f"/studies/{stored.StudyInstanceUID}/series/{stored.SeriesInstanceUID}/instances/"
            f"{stored.SOPInstanceUID}/frames/1")
    uncompressed = 'multipart/related; type="application/octet-stream"'
    assert raw(dicomweb_url, path, riverside.staff, headers={"Accept": uncompressed}).status_code == 406
    web = client_for(dicomweb_url, riverside.staff)
    frames = web.retrieve_instance_frames(stored.StudyInstanceUID, stored.SeriesInstanceUID, stored.SOPInstanceUID,
                                          frame_numbers=[1], media_types=(("application/octet-stream", "*"),))
    assert frames[0][:2] == b"\xff\xd8"
    answer = raw(dicomweb_url, path, riverside.staff, headers={"Accept": uncompressed + "; transfer-syntax=*"})
    assert "transfer-syntax=1.2.840.10008.1.2.4.50" in answer.text[:400]


def test_a_stored_file_lost_from_the_store_is_503_not_a_broken_body(app: Flask, dicomweb_url: str,
                                                                     riverside: Practice, case: Case):
    lost = next(row for row in images_of(app, case.referral_id)
                if (row.dicom or {}).get("sop_instance_uid") == case.sops[0])
    app.extensions["referral.storage"].delete(lost.storage_key)
    instance = f"/studies/{case.study}/series/{case.series}/instances/{case.sops[0]}"
    for path in (instance, instance + "/metadata", instance + "/frames/1"):
        response = raw(dicomweb_url, path, riverside.staff)
        assert response.status_code == 503, (path, response.status_code)
        assert "missing" in response.json()["message"]
    other = f"/studies/{case.study}/series/{case.series}/instances/{case.sops[1]}"
    assert raw(dicomweb_url, other, riverside.staff).status_code == 200
