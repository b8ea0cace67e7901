"""GET /api/v1/referrals/{id}/fhir: the case as a FHIR R4 Bundle, checked with the R4B models of fhir.resources
(R4B keeps every element of the resources used here unchanged from R4). Profile conformance of the same
resources is tested in test_conformance.py."""

from __future__ import annotations

import io
import re
import uuid
from collections import defaultdict
from datetime import datetime
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from pydicom import dcmread

from referral.fhir import terms
from referral.models.enums import ReferralStatus
from tests.support import samples
from tests.support.api import CAPTURED_AT, draft_body, new_referral, ready_referral, submit, upload
from tests.support.world import Client, Practice, Reader, World

ADA_TOOTH = "http://terminology.hl7.org/CodeSystem/ADAUniversalToothDesignationSystem"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
NPI = "http://hl7.org/fhir/sid/us-npi"
CONSENT = {"given_by": "patient", "method": "verbal", "given_at": "2026-01-05T09:00:00Z"}
# The read API's base as the test client's requests see it: every fullUrl is an address under it.
BASE = "http://localhost/fhir/R4"
SNOMED = "http://snomed.info/sct"
TOOTH_19 = {"coding": [{"system": ADA_TOOTH, "code": "19"}, {"system": SNOMED, "code": "245604007"}]}
TOOTH_18 = {"coding": [{"system": ADA_TOOTH, "code": "18"}, {"system": SNOMED, "code": "245603001"}]}

# Required bindings in R4, which the models do not check: a typo in a status would otherwise pass.
REQUIRED_CODES = {
    ("ServiceRequest", "status"): {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error",
                                   "unknown"},
    ("ServiceRequest", "intent"): {"proposal", "plan", "directive", "order", "original-order", "reflex-order",
                                   "filler-order", "instance-order", "option"},
    ("ServiceRequest", "priority"): {"routine", "urgent", "asap", "stat"},
    ("Task", "status"): {"draft", "requested", "received", "accepted", "rejected", "ready", "cancelled",
                         "in-progress", "on-hold", "failed", "completed", "entered-in-error"},
    ("Task", "intent"): {"unknown", "proposal", "plan", "order", "original-order", "reflex-order", "filler-order",
                         "instance-order", "option"},
    ("Task", "priority"): {"routine", "urgent", "asap", "stat"},
    ("Patient", "gender"): {"male", "female", "other", "unknown"},
    ("ImagingStudy", "status"): {"registered", "available", "cancelled", "entered-in-error", "unknown"},
    ("Media", "status"): {"preparation", "in-progress", "not-done", "on-hold", "stopped", "completed",
                          "entered-in-error", "unknown"},
    ("DiagnosticReport", "status"): {"registered", "partial", "preliminary", "final", "amended", "corrected",
                                     "appended", "cancelled", "entered-in-error", "unknown"},
    ("Observation", "status"): {"registered", "preliminary", "final", "amended", "corrected", "cancelled",
                                "entered-in-error", "unknown"},
}


def _walk(value: Any, path: str = "") -> Any:
    if isinstance(value, dict):
        yield path, value
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")


class Exported:
    """A validated bundle, with its resources by type and by fullUrl."""

    def __init__(self, bundle: dict[str, Any]) -> None:
        self.bundle = bundle
        self.by_url = {entry["fullUrl"]: entry["resource"] for entry in bundle["entry"]}
        self.by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for entry in bundle["entry"]:
            self.by_type[entry["resource"]["resourceType"]].append(entry["resource"])

    def one(self, resource_type: str) -> dict[str, Any]:
        found = self.by_type[resource_type]
        assert len(found) == 1, f"{len(found)} {resource_type} resources"
        return found[0]

    def resolve(self, reference: dict[str, str]) -> dict[str, Any]:
        return self.by_url[f"{BASE}/{reference['reference']}"]


def validated(bundle: dict[str, Any]) -> Exported:
    Bundle.model_validate(bundle)
    assert bundle["type"] == "collection"
    urls = [entry["fullUrl"] for entry in bundle["entry"]]
    assert len(urls) == len(set(urls))
    for entry in bundle["entry"]:
        resource = entry["resource"]
        # Bundle.entry.resource is typed as any Resource, so each entry is checked against its own model.
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        assert entry["fullUrl"] == f"{BASE}/{resource['resourceType']}/{resource['id']}"
        # Our rows' UUIDs, or for a study of real UIDs the referral's UUID and a digest of the Study Instance UID.
        assert re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}(-[0-9a-f]{12})?", resource["id"])
        for field, allowed in ((f, codes) for (t, f), codes in REQUIRED_CODES.items()
                               if t == resource["resourceType"]):
            if field in resource:
                assert resource[field] in allowed, (resource["resourceType"], field, resource[field])
    for entry in bundle["entry"]:
        contained = {f"#{c['id']}" for c in entry["resource"].get("contained", [])}
        for path, node in _walk(entry["resource"], entry["fullUrl"]):
            for key, value in node.items():
                assert value not in ([], {}, "", None), f"empty element {path}.{key}"
            if "reference" in node:
                target = node["reference"]
                resolved = target in contained if target.startswith("#") else f"{BASE}/{target}" in urls
                assert resolved, f"{path} points outside the bundle: {target}"
    return Exported(bundle)


def export(client: Client, referral_id: str) -> Exported:
    response = client.get(f"/api/v1/referrals/{referral_id}/fhir")
    assert response.status_code == 200, response.get_json()
    assert response.mimetype == "application/fhir+json"
    assert response.headers["Cache-Control"] == "no-store"
    return validated(response.get_json())


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture
def reader(world: World) -> Reader:
    return world.reader(world.reader_practice("Coastal Endodontics"))


def test_a_draft_exports_its_referral_patient_people_dicom_study_and_photo(riverside: Practice):
    referral_id = new_referral(riverside, teeth=["19", "18"], consent=CONSENT)
    dicom_file = samples.dicom_bytes(teeth=())
    header = dcmread(io.BytesIO(dicom_file), stop_before_pixels=True)
    dicom = upload(riverside.staff, riverside, referral_id, dicom_file, teeth="19").get_json()
    photo = upload(riverside.staff, riverside, referral_id, samples.jpeg_bytes(), filename="photo.jpg",
                   kind="photo_intraoral", teeth="18,19").get_json()

    exported = export(riverside.staff, referral_id)

    request = exported.one("ServiceRequest")
    assert request["id"] == referral_id
    assert request["identifier"] == [{"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{referral_id}"}]
    assert (request["status"], request["intent"], request["priority"]) == ("draft", "order", "urgent")
    assert request["code"]["coding"][0] == {"system": "http://snomed.info/sct", "code": "103697008",
                                            "display": "Patient referral for dental care"}
    assert request["category"][0]["coding"][0]["code"] == "14736009"
    assert request["bodySite"] == [TOOTH_19, TOOTH_18]
    assert request["reasonCode"] == [{"text": "Lingering pain to cold on the lower left first molar"}]
    assert "performer" not in request
    patient = exported.resolve(request["subject"])
    assert patient["resourceType"] == "Patient"
    assert patient["id"] == riverside.patient_id
    assert (patient["gender"], patient["birthDate"]) == ("female", "1980-01-01")
    assert patient["name"] == [{"family": "Doe", "given": ["Jane"]}]
    assert patient["address"] == [{"line": ["12 Oak Street"], "city": "Sacramento", "state": "CA",
                                   "postalCode": "95816"}]
    practice = exported.resolve(patient["managingOrganization"])
    assert practice["identifier"] == [{"system": NPI, "value": riverside.npi},
                                      {"system": "urn:oid:2.16.840.1.113883.4.4", "value": "123456789"}]
    referring = exported.resolve(request["requester"])
    assert referring["id"] == riverside.dentist_provider_id
    assert referring["qualification"] == [{"code": {"text": "DDS"}}]

    task = exported.one("Task")
    assert (task["status"], task["businessStatus"], task["intent"]) == ("draft", {"text": "draft"}, "order")
    assert exported.resolve(task["focus"]) is request
    assert exported.resolve(task["basedOn"][0]) is request
    assert exported.resolve(task["for"]) is patient
    assert "owner" not in task

    study = exported.one("ImagingStudy")
    assert (study["status"], study["numberOfSeries"], study["numberOfInstances"]) == ("available", 1, 1)
    assert study["modality"] == [{"system": DCM, "code": "IO", "display": "Intra-oral Radiography"}]
    assert study["identifier"] == [{"system": "urn:dicom:uid", "value": f"urn:oid:{header.StudyInstanceUID}"}]
    series = study["series"][0]
    assert series["modality"]["code"] == "IO"
    assert series["uid"] == header.SeriesInstanceUID == dicom["dicom"]["series_instance_uid"]
    assert series["bodySite"] == {"system": ADA_TOOTH, "code": "19"}
    assert at(series["started"]) == at(CAPTURED_AT)
    assert series["instance"][0]["uid"] == header.SOPInstanceUID == dicom["dicom"]["sop_instance_uid"]
    assert series["instance"][0]["sopClass"] == {"system": "urn:ietf:rfc:3986",
                                                 "code": f"urn:oid:{samples.INTRAORAL_FOR_PRESENTATION}"}
    hygienist = exported.resolve(series["performer"][0]["actor"])
    assert hygienist["id"] == riverside.hygienist_provider_id
    assert hygienist["qualification"] == [{"code": {"text": "RDH"}}]

    media = exported.one("Media")
    assert media["id"] == photo["id"]
    assert media["status"] == "completed"
    assert media["modality"]["coding"][0]["code"] == "XC"
    assert media["content"] == {"contentType": "image/jpeg", "url": f"/api/v1/images/{photo['id']}/content",
                                "size": photo["size"]}
    assert {"type": {"text": "SHA-256 of the stored bytes"}, "system": "urn:ietf:rfc:3986",
            "value": f"nih:sha-256;{photo['sha256']}"} in media["identifier"]
    assert media["bodySite"] == {"text": "teeth 18, 19"}
    assert at(media["createdDateTime"]) == at(CAPTURED_AT)
    assert exported.resolve(media["operator"]) is hygienist
    assert [exported.resolve(info) for info in request["supportingInfo"]] == [study, media]

    assert exported.by_type["DiagnosticReport"] == []
    assert exported.by_type["Observation"] == []


def test_the_task_follows_the_referral_from_draft_to_report(world: World, riverside: Practice):
    referral_id = ready_referral(riverside)
    steps: list[tuple[str, str, str, str, str | None]] = []

    def record() -> None:
        exported = export(riverside.staff, referral_id)
        task, request = exported.one("Task"), exported.one("ServiceRequest")
        owner = exported.resolve(task["owner"])["id"] if "owner" in task else None
        steps.append((task["businessStatus"]["text"], task["status"], request["status"],
                      task.get("statusReason", {}).get("text", ""), owner))

    record()
    submit(riverside, referral_id)
    record()
    reader = world.reader(world.reader_practice("Coastal Endodontics"))
    submit(riverside, referral_id)
    record()
    reader.client.post(f"/api/v1/referrals/{referral_id}/accept")
    record()
    image_id = riverside.staff.get(f"/api/v1/referrals/{referral_id}").get_json()["images"][0]["id"]
    reader.client.post(f"/api/v1/referrals/{referral_id}/retake-requests",
                       {"image_ids": [image_id], "reason": "apex cut off"})
    record()
    upload(riverside.staff, riverside, referral_id, samples.dicom_bytes(teeth=()), teeth="19",
           retake_of=image_id, retake_reason="apex cut off")
    submit(riverside, referral_id)
    images = [i["id"] for i in riverside.staff.get(f"/api/v1/referrals/{referral_id}").get_json()["images"]]
    reader.client.put(f"/api/v1/referrals/{referral_id}/report", draft_body(images))
    assert reader.client.post(f"/api/v1/referrals/{referral_id}/report/sign").status_code == 200
    record()

    assert steps == [
        ("draft", "draft", "draft", "", None),
        ("unassigned", "requested", "active", "no eligible reader", None),
        ("routed", "requested", "active", "", reader.provider_id),
        ("accepted", "accepted", "active", "", reader.provider_id),
        ("retake_requested", "on-hold", "active", "apex cut off", reader.provider_id),
        ("reported", "completed", "completed", "", reader.provider_id),
    ]


def test_a_cancelled_referral_is_a_revoked_request_and_a_cancelled_task(reader: Reader, riverside: Practice):
    referral_id = ready_referral(riverside)
    submit(riverside, referral_id)
    riverside.dentist.post(f"/api/v1/referrals/{referral_id}/cancel", {"reason": "patient moved"})

    exported = export(riverside.dentist, referral_id)

    assert exported.one("ServiceRequest")["status"] == "revoked"
    task = exported.one("Task")
    assert (task["status"], task["businessStatus"], task["statusReason"]) == (
        "cancelled", {"text": "cancelled"}, {"text": "patient moved"})


@pytest.fixture
def accepted_case(reader: Reader, riverside: Practice) -> tuple[str, list[str]]:
    """An accepted urgent case with a DICOM periapical of 19 and an intraoral photo."""
    referral_id = ready_referral(riverside)
    upload(riverside.staff, riverside, referral_id, samples.jpeg_bytes(), filename="photo.jpg",
           kind="photo_intraoral", teeth="19")
    submit(riverside, referral_id)
    assert reader.client.post(f"/api/v1/referrals/{referral_id}/accept").status_code == 200
    images = [i["id"] for i in riverside.staff.get(f"/api/v1/referrals/{referral_id}").get_json()["images"]]
    return referral_id, images


def test_no_diagnostic_report_is_exported_before_the_report_is_signed(accepted_case, reader: Reader,
                                                                     riverside: Practice):
    referral_id, images = accepted_case
    assert reader.client.put(f"/api/v1/referrals/{referral_id}/report", draft_body(images)).status_code == 200

    for client in (riverside.staff, reader.client):
        exported = export(client, referral_id)
        assert exported.by_type["DiagnosticReport"] == []
        assert exported.by_type["Observation"] == []
        assert "output" not in exported.one("Task")


def test_a_signed_report_is_a_diagnostic_report_by_the_reader_and_addenda_make_it_appended(
        accepted_case, reader: Reader, riverside: Practice):
    referral_id, images = accepted_case
    path = f"/api/v1/referrals/{referral_id}/report"
    reader.client.put(path, draft_body(images))
    signed = reader.client.post(f"{path}/sign").get_json()

    exported = export(riverside.staff, referral_id)

    report = exported.one("DiagnosticReport")
    assert report["id"] == signed["id"]
    assert report["status"] == "final"
    assert report["category"] == [{"coding": [
        {"system": "http://loinc.org", "code": "LP29684-5", "display": "Radiology"},
        {"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD", "display": "Radiology"}]}]
    assert report["code"] == {"coding": [{"system": "http://loinc.org", "code": "18748-4",
                                          "display": "Diagnostic imaging study"}],
                              "text": "Dental radiograph interpretation"}
    assert report["conclusion"] == ("Symptomatic apical periodontitis, tooth 19\n\n"
                                    "Recommendation: Root canal treatment of tooth 19")
    assert report["conclusion"].startswith(signed["impression"])
    assert at(report["issued"]) == at(signed["signed_at"])
    assert at(report["effectiveDateTime"]) == at(CAPTURED_AT)
    reader_practitioner = exported.resolve(report["performer"][0])
    assert reader_practitioner["id"] == reader.provider_id
    assert report["resultsInterpreter"] == report["performer"]
    assert [exported.resolve(ref) for ref in report["imagingStudy"]] == [exported.one("ImagingStudy")]
    assert [exported.resolve(media["link"]) for media in report["media"]] == [exported.one("Media")]
    assert exported.resolve(exported.one("ServiceRequest")["performer"][0]) is reader_practitioner
    task = exported.one("Task")
    assert exported.resolve(task["owner"]) is reader_practitioner
    assert exported.resolve(task["output"][0]["valueReference"]) is report
    reader_roles = [r for r in exported.by_type["PractitionerRole"]
                    if exported.resolve(r["practitioner"]) is reader_practitioner]
    assert exported.resolve(reader_roles[0]["organization"])["id"] == reader.organization_id
    assert reader_roles[0]["specialty"][0]["coding"][0]["code"] == "1223E0200X"

    findings = [exported.resolve(ref) for ref in report["result"]]
    assert len(findings) == 2
    by_source = {exported.resolve(f["derivedFrom"][0])["resourceType"]: f for f in findings}
    assert set(by_source) == {"ImagingStudy", "Media"}
    for finding in findings:
        assert finding["status"] == "final"
        assert exported.resolve(finding["performer"][0]) is reader_practitioner
        assert finding["bodySite"] == TOOTH_19
        components = {c["code"]["text"]: c["valueString"] for c in finding["component"]}
        assert components["Periapical area"] == "Radiolucency about 4 mm at the mesial root"
        assert components["Diagnostic quality"] == "adequate"
        assert "Other" not in components

    reader.client.post(f"{path}/addenda", {"text": "Tooth 18 also shows a widened PDL space."})
    appended = export(reader.client, referral_id).one("DiagnosticReport")

    assert appended["status"] == "appended"
    assert appended["conclusion"].startswith(report["conclusion"] + "\n\nAddendum signed ")
    assert appended["conclusion"].endswith(": Tooth 18 also shows a widened PDL space.")


def test_a_dicom_file_whose_header_names_no_modality_is_exported_as_media(riverside: Practice):
    referral_id = new_referral(riverside)
    image = upload(riverside.staff, riverside, referral_id,
                   samples.dicom_bytes(mutate=lambda ds: delattr(ds, "Modality"))).get_json()

    exported = export(riverside.staff, referral_id)

    assert exported.by_type["ImagingStudy"] == []
    media = exported.one("Media")
    assert media["id"] == image["id"]
    assert media["content"]["contentType"] == "application/dicom"
    assert media["modality"]["coding"][0]["code"] == "IO"


def test_other_practices_and_other_readers_get_404_and_are_audited_as_denied(
        world: World, accepted_case, reader: Reader, riverside: Practice, hillside: Practice):
    referral_id, _ = accepted_case
    colleague = world.reader(reader.organization_id, last_name="Colleague")

    for outsider in (hillside.staff, hillside.dentist, hillside.billing, colleague.client):
        response = outsider.get(f"/api/v1/referrals/{referral_id}/fhir")
        assert response.status_code == 404
        assert response.mimetype == "application/json"
    assert riverside.staff.get(f"/api/v1/referrals/{uuid.uuid4()}/fhir").status_code == 404

    events = hillside.org_admin.get(f"/api/v1/audit-events?referral_id={referral_id}").get_json()["items"]
    assert [(e["action"], e["outcome"]) for e in events] == [("referral.access", "denied")] * 3


def test_every_export_is_audited(accepted_case, reader: Reader, riverside: Practice):
    referral_id, _ = accepted_case

    export(riverside.billing, referral_id)
    export(reader.client, referral_id)

    events = riverside.org_admin.get(f"/api/v1/audit-events?referral_id={referral_id}").get_json()["items"]
    exports = [e for e in events if e["action"] == "referral.fhir_export"]
    assert [e["outcome"] for e in exports] == ["success", "success"]
    assert {e["actor_organization_id"] for e in exports} == {riverside.id, reader.organization_id}
    assert all(e["object_id"] == referral_id and e["details"]["format"] == "fhir-r4" for e in exports)


def test_every_referral_status_has_a_service_request_and_a_task_status_from_the_r4_value_sets():
    for status in ReferralStatus:
        assert terms.SERVICE_REQUEST_STATUS[status] in REQUIRED_CODES[("ServiceRequest", "status")]
        assert terms.TASK_STATUS[status] in REQUIRED_CODES[("Task", "status")]
    assert set(terms.PRIORITY.values()) <= REQUIRED_CODES[("ServiceRequest", "priority")]
    assert set(terms.GENDER.values()) <= REQUIRED_CODES[("Patient", "gender")]


def test_the_export_is_documented_as_fhir_json_and_needs_a_token(client, world: World, riverside: Practice):
    spec = client.get("/api/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/referrals/{referral_id}/fhir"]["get"]

    assert "application/fhir+json" in operation["responses"]["200"]["content"]
    assert world.anonymous.get(f"/api/v1/referrals/{new_referral(riverside)}/fhir").status_code == 401


def _in_study(study: str, series: str, instance: str, number: int):
    def identity(ds) -> None:
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series
        ds.SOPInstanceUID = instance
        ds.file_meta.MediaStorageSOPInstanceUID = instance
        ds.InstanceNumber = number
        ds.AccessionNumber = f"ACC{study[-1]}"

    return samples.dicom_bytes(mutate=identity)


def test_each_dicom_study_becomes_its_own_imaging_study_with_the_files_uids(riverside: Practice):
    referral_id = new_referral(riverside, consent=CONSENT)
    files = [
        _in_study("1.2.826.0.1.3680043.2.1", "1.2.826.0.1.3680043.2.1.1", "1.2.826.0.1.3680043.2.1.1.1", 1),
        _in_study("1.2.826.0.1.3680043.2.1", "1.2.826.0.1.3680043.2.1.1", "1.2.826.0.1.3680043.2.1.1.2", 2),
        _in_study("1.2.826.0.1.3680043.2.1", "1.2.826.0.1.3680043.2.1.2", "1.2.826.0.1.3680043.2.1.2.1", 1),
        _in_study("1.2.826.0.1.3680043.2.2", "1.2.826.0.1.3680043.2.2.1", "1.2.826.0.1.3680043.2.2.1.1", 1),
    ]
    for data in files:
        assert upload(riverside.staff, riverside, referral_id, data).status_code == 201
    photo = upload(riverside.staff, riverside, referral_id, samples.jpeg_bytes(), filename="photo.jpg",
                   kind="photo_intraoral").get_json()

    exported = export(riverside.staff, referral_id)

    studies = {study["identifier"][0]["value"]: study for study in exported.by_type["ImagingStudy"]}
    assert set(studies) == {"urn:oid:1.2.826.0.1.3680043.2.1", "urn:oid:1.2.826.0.1.3680043.2.2"}
    first = studies["urn:oid:1.2.826.0.1.3680043.2.1"]
    assert all(study["identifier"][0]["system"] == "urn:dicom:uid" for study in studies.values())
    assert {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN"}]},
            "value": "ACC1"} in first["identifier"]
    assert (first["numberOfSeries"], first["numberOfInstances"]) == (2, 3)
    series = {entry["uid"]: entry for entry in first["series"]}
    assert [instance["uid"] for instance in series["1.2.826.0.1.3680043.2.1.1"]["instance"]] == [
        "1.2.826.0.1.3680043.2.1.1.1", "1.2.826.0.1.3680043.2.1.1.2"]
    assert [instance["number"] for instance in series["1.2.826.0.1.3680043.2.1.1"]["instance"]] == [1, 2]
    second = studies["urn:oid:1.2.826.0.1.3680043.2.2"]
    assert [entry["instance"][0]["uid"] for entry in second["series"]] == ["1.2.826.0.1.3680043.2.2.1.1"]
    request = exported.one("ServiceRequest")
    assert sorted(exported.resolve(ref)["id"] for ref in request["supportingInfo"]) == sorted(
        [first["id"], second["id"], photo["id"]])
    assert exported.one("Media")["id"] == photo["id"], "photos stay Media"
