"""The DICOM listener against real clients: pynetdicom as the sensor software, and dcmtk's tools."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from flask import Flask

from tests.support.api import new_referral
from tests.support.dicom_net import (
    LISTENER_AE,
    association_refused,
    audit_actions,
    dcmtk,
    echo,
    find_worklist,
    images_of,
    radiograph,
    register_device,
    running_listener,
    store_with_pynetdicom,
    worklist_query,
)
from tests.support.world import Practice, World


def _accession(practice: Practice, referral_id: str) -> str:
    return str(practice.staff.get(f"/api/v1/referrals/{referral_id}").get_json()["accession_number"])


def test_a_registered_device_echoes_and_the_association_is_audited(app: Flask, riverside: Practice):
    register_device(riverside, "SENSOR1")
    with running_listener(app) as listener:
        assert echo(listener.port) == 0x0000
        result = dcmtk("echoscu", "-aet", "SENSOR1", "-aec", LISTENER_AE, "127.0.0.1", str(listener.port))
        assert result.returncode == 0, result.stderr
    actions = [(e.action, e.outcome) for e in audit_actions(app, "dicom.")]
    assert actions.count(("dicom.associate", "success")) == 2
    assert ("dicom.released", "success") in actions


def test_unregistered_ae_titles_wrong_hosts_and_wrong_called_titles_are_rejected(app: Flask, riverside: Practice):
    register_device(riverside, "SENSOR1")
    register_device(riverside, "FARAWAY", host="192.0.2.10")
    with running_listener(app) as listener:
        assert association_refused(listener.port, "STRANGER")
        assert association_refused(listener.port, "FARAWAY")
        assert association_refused(listener.port, "SENSOR1", called_ae="SOMEONE")
        result = dcmtk("echoscu", "-aet", "STRANGER", "-aec", LISTENER_AE, "127.0.0.1", str(listener.port))
        assert result.returncode != 0
    denied = [e for e in audit_actions(app, "dicom.associate") if e.outcome == "denied"]
    reasons = sorted(e.details["reason"] for e in denied)
    assert reasons == ["called_ae_title_not_ours", "calling_ae_title_not_registered",
                       "calling_ae_title_not_registered", "host_not_registered"]


def test_the_worklist_shows_the_practices_referrals_waiting_for_images(app: Flask, riverside: Practice,
                                                                      hillside: Practice):
    register_device(riverside, "SENSOR1")
    mine = new_referral(riverside, teeth=["19", "20"])
    new_referral(hillside)
    body = riverside.staff.get(f"/api/v1/referrals/{mine}").get_json()
    with running_listener(app) as listener:
        found, final = find_worklist(listener.port, worklist_query())
    assert final == 0x0000
    assert len(found) == 1
    item = found[0]
    assert item.AccessionNumber == body["accession_number"]
    assert str(item.PatientName) == "Doe^Jane"
    assert item.PatientID == body["patient_id"]
    assert item.PatientBirthDate == "19800101"
    assert item.PatientSex == "F"
    assert item.StudyInstanceUID == body["study_instance_uid"]
    assert "19, 20" in item.RequestedProcedureDescription
    assert "cold" in item.RequestedProcedureDescription
    step = item.ScheduledProcedureStepSequence[0]
    assert step.Modality == "IO"
    assert step.ScheduledStationAETitle == "SENSOR1"


@pytest.mark.parametrize(("keys", "matches"), [
    ({"PatientName": "DOE^JANE"}, True),
    ({"PatientName": "Do*"}, True),
    ({"PatientName": "D?e^J*"}, True),
    ({"PatientName": "Smith*"}, False),
    ({"PatientBirthDate": "19800101"}, True),
    ({"PatientBirthDate": "19700101-19791231"}, False),
    ({"PatientBirthDate": "19790101-"}, True),
    ({"modality": "IO"}, True),
    ({"modality": "CT"}, False),
    ({"PatientSex": "M"}, False),
    ({"station": "OTHER"}, False),
])
def test_worklist_matching_keys(app: Flask, riverside: Practice, keys: dict[str, str], matches: bool):
    register_device(riverside, "SENSOR1")
    new_referral(riverside)
    with running_listener(app) as listener:
        found, final = find_worklist(listener.port, worklist_query(**keys))
    assert final == 0x0000
    assert len(found) == (1 if matches else 0)


def test_worklist_matching_on_accession_number_and_scheduled_date(app: Flask, riverside: Practice):
    register_device(riverside, "SENSOR1")
    first, second = new_referral(riverside), new_referral(riverside)
    accession = _accession(riverside, second)
    with running_listener(app) as listener:
        by_number, _ = find_worklist(listener.port, worklist_query(AccessionNumber=accession))
        by_prefix, _ = find_worklist(listener.port, worklist_query(AccessionNumber=accession[:4] + "*"))
        long_ago, _ = find_worklist(listener.port, worklist_query(scheduled_date="20000101-20000131"))
        since, _ = find_worklist(listener.port, worklist_query(scheduled_date="20000101-"))
        with pytest.warns(UserWarning, match="Invalid value for VR DA"):
            malformed = worklist_query(scheduled_date="yesterday")
        bad, status = find_worklist(listener.port, malformed)
    assert [d.AccessionNumber for d in by_number] == [accession]
    assert accession in [d.AccessionNumber for d in by_prefix]
    assert long_ago == []
    assert {d.AccessionNumber for d in since} == {accession, _accession(riverside, first)}
    assert bad == []
    assert status == 0xA900


def test_findscu_reads_the_worklist(app: Flask, riverside: Practice):
    register_device(riverside, "SENSOR1")
    referral_id = new_referral(riverside)
    accession = _accession(riverside, referral_id)
    with running_listener(app) as listener:
        result = dcmtk("findscu", "-W", "-aet", "SENSOR1", "-aec", LISTENER_AE, "-k", "PatientName=Doe*",
                       "-k", "AccessionNumber", "-k", "ScheduledProcedureStepSequence[0].Modality=IO",
                       "127.0.0.1", str(listener.port))
    assert result.returncode == 0, result.stderr
    assert accession in result.stdout + result.stderr


def test_a_stored_image_is_filed_into_the_referral_its_accession_number_names(app: Flask, riverside: Practice,
                                                                              tmp_path: Path):
    register_device(riverside, "SENSOR1")
    referral_id = new_referral(riverside, teeth=["19"])
    accession = _accession(riverside, referral_id)
    path = radiograph(tmp_path / "a.dcm", accession, teeth=("30",))
    with running_listener(app) as listener:
        assert store_with_pynetdicom(listener.port, [path]) == [0x0000]
    images = riverside.staff.get(f"/api/v1/referrals/{referral_id}").get_json()["images"]
    assert len(images) == 1
    image = images[0]
    assert image["kind"] == "periapical"
    assert image["teeth"] == ["30"]
    assert image["captured_at"].startswith("2026-01-01T12:00:00")
    assert image["file_format"] == "dicom"
    preview = riverside.staff.client.get(f"/api/v1/images/{image['id']}/preview",
                                         headers={"Authorization": f"Bearer {riverside.staff.token}"})
    assert preview.status_code == 200
    stored = images_of(app, referral_id)[0]
    assert stored.captured_by_confirmed is False  # the file's operator is no provider of the practice
    assert stored.sop_instance_uid
    created = [e for e in audit_actions(app, "image.create") if e.object_id == stored.id]
    assert created
    assert created[0].details["via"] == "dicom"


def test_storescu_files_an_image_and_a_repeat_files_nothing_more(app: Flask, riverside: Practice, tmp_path: Path):
    register_device(riverside, "SENSOR1")
    referral_id = new_referral(riverside)
    accession = _accession(riverside, referral_id)
    path = radiograph(tmp_path / "a.dcm", accession)
    with running_listener(app) as listener:
        for _ in range(2):
            result = dcmtk("storescu", "-aet", "SENSOR1", "-aec", LISTENER_AE, "127.0.0.1", str(listener.port),
                           str(path))
            assert result.returncode == 0, result.stderr
        assert store_with_pynetdicom(listener.port, [path]) == [0x0000]
    assert len(images_of(app, referral_id)) == 1


def _nothing_stored(app: Flask, referral_id: str) -> None:
    assert images_of(app, referral_id) == []
    assert list(app.extensions["referral.storage"].keys("images/")) == []


def test_refusals_answer_failure_and_store_nothing(app: Flask, world: World, riverside: Practice,
                                                   hillside: Practice, tmp_path: Path):
    register_device(riverside, "SENSOR1")
    referral_id = new_referral(riverside)
    accession = _accession(riverside, referral_id)
    theirs = _accession(hillside, new_referral(hillside))
    files = [
        radiograph(tmp_path / "none.dcm", "RNOSUCHCASE"),
        radiograph(tmp_path / "theirs.dcm", theirs),
        radiograph(tmp_path / "other-patient.dcm", accession, patient_name="Roe^Richard", birth_date="19900202"),
        radiograph(tmp_path / "no-accession.dcm", None),
    ]
    with running_listener(app) as listener:
        statuses = store_with_pynetdicom(listener.port, files)
    assert statuses == [0xC210, 0xC210, 0xC212, 0xC215]
    _nothing_stored(app, referral_id)
    refused = [e.details["reason"] for e in audit_actions(app, "dicom.store") if e.outcome == "denied"]
    assert sorted(refused) == ["no_accession_number", "no_matching_referral", "no_matching_referral",
                               "patient_mismatch"]


def test_a_case_no_longer_waiting_for_images_refuses_them(app: Flask, riverside: Practice, tmp_path: Path):
    register_device(riverside, "SENSOR1")
    referral_id = new_referral(riverside)
    accession = _accession(riverside, referral_id)
    assert riverside.staff.post(f"/api/v1/referrals/{referral_id}/cancel", {"reason": "Patient moved"}).status_code \
        == 200
    with running_listener(app) as listener:
        assert store_with_pynetdicom(listener.port, [radiograph(tmp_path / "a.dcm", accession)]) == [0xC211]
        found, _ = find_worklist(listener.port, worklist_query())
    assert found == []
    _nothing_stored(app, referral_id)


def test_tls(app: Flask, riverside: Practice, tmp_path: Path):
    import ssl

    from tests.support.tls import self_signed

    register_device(riverside, "SENSOR1")
    cert, key = self_signed(tmp_path, "localhost")
    with running_listener(app, tls_cert=str(cert), tls_key=str(key)) as listener:
        client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cert))
        assert echo(listener.port, tls_args=(client, "localhost")) == 0x0000
        referral_id = new_referral(riverside)
        path = radiograph(tmp_path / "a.dcm", _accession(riverside, referral_id))
        assert store_with_pynetdicom(listener.port, [path], tls_args=(client, "localhost")) == [0x0000]
        if shutil.which("echoscu"):
            plain = dcmtk("echoscu", "-aet", "SENSOR1", "-aec", LISTENER_AE, "127.0.0.1", str(listener.port),
                          timeout=30)
            assert plain.returncode != 0, "a plain association to the TLS port must fail"
            tls = dcmtk("echoscu", "+tls", str(key), str(cert), "+cf", str(cert), "-aet", "SENSOR1", "-aec",
                        LISTENER_AE, "127.0.0.1", str(listener.port))
            assert tls.returncode == 0, tls.stderr
    assert len(images_of(app, referral_id)) == 1


def test_the_office_confirms_who_captured_an_image_its_device_sent(app: Flask, riverside: Practice,
                                                                   hillside: Practice, tmp_path: Path):
    register_device(riverside, "SENSOR1")
    referral_id = new_referral(riverside)
    path = radiograph(tmp_path / "a.dcm", _accession(riverside, referral_id))
    with running_listener(app) as listener:
        assert store_with_pynetdicom(listener.port, [path]) == [0x0000]
    (image,) = riverside.staff.get(f"/api/v1/referrals/{referral_id}").get_json()["images"]
    assert image["captured_by_confirmed"] is False
    assert image["captured_by_provider_id"] == riverside.dentist_provider_id  # the referring provider, for now
    url = f"/api/v1/images/{image['id']}/capturer"
    body = {"captured_by_provider_id": riverside.hygienist_provider_id}

    assert hillside.staff.post(url, body).status_code == 404
    assert riverside.billing.post(url, body).status_code == 403
    assert riverside.staff.post(url, {"captured_by_provider_id": hillside.hygienist_provider_id}).status_code == 422
    confirmed = riverside.staff.post(url, body)
    assert confirmed.status_code == 200, confirmed.get_json()
    assert confirmed.get_json()["captured_by_confirmed"] is True
    assert confirmed.get_json()["captured_by_provider_id"] == riverside.hygienist_provider_id
    assert riverside.staff.post(url, {"captured_by_provider_id": riverside.dentist_provider_id}).status_code == 409


def test_a_file_naming_a_provider_of_the_practice_is_filed_as_theirs(app: Flask, riverside: Practice,
                                                                     tmp_path: Path):
    register_device(riverside, "SENSOR1")
    referral_id = new_referral(riverside)
    # The world's hygienist is Sam Lee.
    path = radiograph(tmp_path / "a.dcm", _accession(riverside, referral_id), operator="Lee^Sam")
    with running_listener(app) as listener:
        assert store_with_pynetdicom(listener.port, [path]) == [0x0000]
    (image,) = riverside.staff.get(f"/api/v1/referrals/{referral_id}").get_json()["images"]
    assert image["captured_by_confirmed"] is True
    assert image["captured_by_provider_id"] == riverside.hygienist_provider_id


def test_no_patient_details_reach_the_logs(app: Flask, riverside: Practice, tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture):
    register_device(riverside, "SENSOR1")
    referral_id = new_referral(riverside)
    accession = _accession(riverside, referral_id)
    caplog.set_level(logging.DEBUG)
    with running_listener(app) as listener:
        find_worklist(listener.port, worklist_query(PatientName="Doe^Jane", PatientBirthDate="19800101"))
        store_with_pynetdicom(listener.port, [radiograph(tmp_path / "a.dcm", accession),
                                              radiograph(tmp_path / "b.dcm", accession, patient_name="Roe^Richard",
                                                         birth_date="19900202")])
    logged = caplog.text
    for detail in ("Doe", "Jane", "Roe", "Richard", "19800101", "19900202"):
        assert detail not in logged


def test_the_case_page_asks_the_office_who_took_images_a_device_sent(app: Flask, world: World, riverside: Practice,
                                                                     tmp_path: Path):
    from tests.support.web import sign_in, user_with_password

    register_device(riverside, "SENSOR1")
    referral_id = new_referral(riverside)
    path = radiograph(tmp_path / "a.dcm", _accession(riverside, referral_id))
    with running_listener(app) as listener:
        assert store_with_pynetdicom(listener.port, [path]) == [0x0000]
    (image,) = riverside.staff.get(f"/api/v1/referrals/{referral_id}").get_json()["images"]
    browser = app.test_client()
    sign_in(browser, user_with_password(world, riverside))
    page = browser.get(f"/referrals/{referral_id}").get_data(as_text=True)
    assert "Who took these images?" in page
    assert f"/api/v1/images/{image['id']}/capturer" in page
    url = f"/api/v1/images/{image['id']}/capturer"
    assert riverside.staff.post(url, {"captured_by_provider_id": riverside.hygienist_provider_id}).status_code == 200
    assert "Who took these images?" not in browser.get(f"/referrals/{referral_id}").get_data(as_text=True)
