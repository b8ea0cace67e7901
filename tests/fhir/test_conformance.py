"""Every resource the server emits conforms to the profiles it claims (tests/support/fhir_checker.py), and each says
what the Dental Data Exchange guide and US Core ask of it. The checker itself is shown to fail on broken
copies of real resources, so a pass means something."""

from __future__ import annotations

import copy
from collections import defaultdict
from datetime import datetime
from typing import Any

import pytest

from referral.billing.fhir_claim import to_fhir_claim
from referral.fhir import terms
from tests.support import fhir_checker as checker
from tests.support.api import new_referral, ready_referral, submit
from tests.support.claims import capture_claim, child_claim, reader_claim, single_claim
from tests.support.fhir import SignedCase
from tests.support.fhir_profiles import must_support, profiles
from tests.support.world import Practice

Resource = dict[str, Any]
LOINC = "http://loinc.org"
ADA_TOOTH = "http://terminology.hl7.org/CodeSystem/ADAUniversalToothDesignationSystem"

# Must-support elements we never fill, and why. Every other must-support element of a claimed profile must be
# present in the fully populated case below; an entry here that is present after all is stale and fails too.
NEVER_FILLED: dict[str, dict[str, str]] = {
    terms.PROFILES["Patient"]: {},
    terms.PROFILES["Organization"]: {"telecom": "filled only when the practice has a phone on file"},
    terms.PROFILES["Practitioner"]: {},
    terms.PROFILES["PractitionerRole"]: {
        "code": "the referral system keeps a provider's specialty (NUCC taxonomy), not a role code",
        "location": "practices' locations are not kept apart from their address",
        "telecom": "filled only when the practice has a phone on file"},
    terms.PROFILES["Coverage"]: {"period": "coverage dates are not kept",
                                 "class": "filled only when the plan has a group number on file"},
    terms.PROFILES["Encounter"]: {
        "identifier": "the reader's review has no identifier of its own (the report's is on the report)",
        "hospitalization": "a remote review admits no one", "location": "a remote review has no location"},
    terms.PROFILES["DiagnosticReport"]: {},
    terms.PROFILES["ServiceRequest"]: {},
    terms.PROFILES["Composition"]: {},
    terms.PROFILES["Observation"]: {},
}


def export(client: Any, referral_id: str) -> dict[str, list[Resource]]:
    response = client.get(f"/api/v1/referrals/{referral_id}/fhir")
    assert response.status_code == 200, response.get_json()
    by_type: dict[str, list[Resource]] = defaultdict(list)
    for entry in response.get_json()["entry"]:
        by_type[entry["resource"]["resourceType"]].append(entry["resource"])
    return by_type


def missing_must_support(resource: Resource) -> list[str]:
    missing = []
    for url in resource["meta"]["profile"]:
        if url not in NEVER_FILLED:
            continue
        for name in must_support(url):
            key = name.replace("[x]", "")
            present = any(k == key or (name.endswith("[x]") and k.startswith(key)) for k in resource)
            if not present and name not in NEVER_FILLED[url]:
                missing.append(f"{resource['resourceType']}.{name}")
            if present and name in NEVER_FILLED[url] and "only when" not in NEVER_FILLED[url][name]:
                missing.append(f"{resource['resourceType']}.{name} is filled but listed as never filled")
    return missing


@pytest.fixture
def case(signed_case: SignedCase, riverside: Practice) -> dict[str, list[Resource]]:
    return export(riverside.staff, signed_case.referral_id)


def test_every_resource_of_a_signed_case_conforms_to_base_r4_and_its_profiles(case: dict[str, list[Resource]]):
    assert set(case) == {"ServiceRequest", "Task", "Patient", "Coverage", "Organization", "Practitioner",
                         "PractitionerRole", "ImagingStudy", "Media", "Composition", "Encounter",
                         "DiagnosticReport", "Observation"}
    for resources in case.values():
        for resource in resources:
            assert resource["meta"]["profile"] == [terms.PROFILES[resource["resourceType"]]]
            checker.assert_conforms(resource)


def test_must_support_elements_are_filled_where_the_data_exists(case: dict[str, list[Resource]]):
    missing = [m for resources in case.values() for r in resources for m in missing_must_support(r)]

    assert missing == []


def test_the_referral_is_the_guides_dental_service_request(case: dict[str, list[Resource]],
                                                          signed_case: SignedCase, riverside: Practice):
    (request,) = case["ServiceRequest"]
    referral = riverside.staff.get(f"/api/v1/referrals/{signed_case.referral_id}").get_json()

    assert request["intent"] == "order"
    assert request["code"]["coding"] == [{"system": "http://snomed.info/sct", "code": "103697008",
                                          "display": "Patient referral for dental care"}]
    assert request["reasonCode"] == [{"coding": [{"system": "http://snomed.info/sct", "code": "27355003",
                                                  "display": "Toothache"}],
                                      "text": "Lingering pain to cold on the lower left first molar"}]
    # The requested period runs from sending to the deadline the urgency set.
    period = request["occurrencePeriod"]
    assert datetime.fromisoformat(period["start"]) == datetime.fromisoformat(referral["submitted_at"])
    assert datetime.fromisoformat(period["end"]) == datetime.fromisoformat(referral["due_at"])
    assert request["insurance"] == [{"reference": f"Coverage/{riverside.patient_id}"}]
    (coverage,) = case["Coverage"]
    assert coverage["subscriberId"] == "W123456789"
    assert coverage["payor"] == [{"identifier": {"value": "60054"}, "display": "Example Dental Plan"}]
    assert request["bodySite"][0]["coding"][0] == {"system": ADA_TOOTH, "code": "19"}


def test_the_signed_report_is_the_guides_consult_note(case: dict[str, list[Resource]], signed_case: SignedCase):
    (note,) = case["Composition"]
    (report,) = case["DiagnosticReport"]
    (encounter,) = case["Encounter"]

    assert note["type"]["coding"] == [{"system": LOINC, "code": "34756-7", "display": "Dentistry Consult note"}]
    assert note["extension"] == [{"url": "http://hl7.org/fhir/us/ccda/StructureDefinition/OrderExtension",
                                  "valueReference": {"reference": f"ServiceRequest/{signed_case.referral_id}"}}]
    sections = {s["code"]["coding"][0]["code"]: s for s in note["section"]}
    assert set(sections) == {"29299-5", "51848-0", "18776-5", "47519-4", "8704-9", "48768-6"}
    assert sections["51848-0"]["entry"] == [{"reference": f"DiagnosticReport/{report['id']}"}]
    assert {e["reference"] for e in sections["8704-9"]["entry"]} == {f"Observation/{i}" for i in signed_case.images}
    assert "Root canal treatment of tooth 19" in sections["18776-5"]["text"]["div"]
    assert note["encounter"] == {"reference": f"Encounter/{encounter['id']}"}
    assert note["attester"][0]["mode"] == "legal"
    assert note["author"] == [{"reference": f"Practitioner/{signed_case.reader.provider_id}"}]
    assert note["custodian"] == {"reference": f"Organization/{signed_case.reader.organization_id}"}
    assert report["code"]["coding"] == [{"system": LOINC, "code": "18748-4", "display": "Diagnostic imaging study"}]
    assert report["presentedForm"][0]["url"] == f"/api/v1/referrals/{signed_case.referral_id}/documents/report.pdf"
    assert encounter["class"]["code"] == "VR"
    assert encounter["type"][0]["coding"][0]["code"] == "185316007"


def test_findings_are_dental_observations_with_tooth_body_sites(case: dict[str, list[Resource]]):
    for finding in case["Observation"]:
        assert {"coding": [{"system": terms.DENTAL_CATEGORY, "code": "dental", "display": "Dental"}]} in \
            finding["category"]
        assert finding["code"]["coding"][0]["system"] == LOINC
        assert finding["bodySite"]["coding"] == [
            {"system": ADA_TOOTH, "code": "19"},
            {"system": "http://snomed.info/sct", "code": "245604007"}]
        assert "Periapical area: Radiolucency about 4 mm at the mesial root" in finding["valueString"]


def test_practices_and_their_people_meet_us_core(case: dict[str, list[Resource]], riverside: Practice):
    for organization in case["Organization"]:
        assert organization["active"] is True
        assert organization["identifier"][0]["system"] == "http://hl7.org/fhir/sid/us-npi"
    for role in case["PractitionerRole"]:
        assert role["endpoint"] == [{"reference": "#fhir"}]
        assert role["contained"][0]["address"] == "http://localhost/fhir/R4"
    (patient,) = case["Patient"]
    assert patient["identifier"] == [{"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{riverside.patient_id}"}]


def test_the_readers_view_leaves_the_patients_coverage_out_and_still_conforms(signed_case: SignedCase):
    # As the JSON API shows the case to the reader: the patient without coverage (minimum necessary).
    view = export(signed_case.reader.client, signed_case.referral_id)

    assert "Coverage" not in view
    (request,) = view["ServiceRequest"]
    assert "insurance" not in request
    (note,) = view["Composition"]
    assert "48768-6" not in {s["code"]["coding"][0]["code"] for s in note["section"]}
    for resources in view.values():
        for resource in resources:
            checker.assert_conforms(resource)


def test_a_draft_a_cancelled_case_and_a_deleted_patients_case_conform_too(riverside: Practice):
    draft = ready_referral(riverside)
    cancelled = ready_referral(riverside, urgency="emergency", reason_code="128477000")
    submit(riverside, cancelled)
    assert riverside.dentist.post(f"/api/v1/referrals/{cancelled}/cancel", {"reason": "patient moved"}
                                  ).status_code == 200
    patient = riverside.staff.post("/api/v1/patients", {"first_name": "Ann", "last_name": "Gone",
                                                        "birth_date": "2015-05-05", "sex": "F", "state": "CA"})
    orphan = new_referral(riverside, patient_id=patient.get_json()["id"])
    assert riverside.dentist.post(f"/api/v1/referrals/{orphan}/cancel", {"reason": "patient withdrew"}
                                  ).status_code == 200
    response = riverside.org_admin.client.delete(f"/api/v1/patients/{patient.get_json()['id']}",
                                                 headers={"Authorization": f"Bearer {riverside.org_admin.token}"})
    assert response.status_code in (200, 204), response.get_json()

    for referral_id in (draft, cancelled, orphan):
        for resources in export(riverside.staff, referral_id).values():
            for resource in resources:
                if resource["resourceType"] != "Patient" or referral_id != orphan:
                    checker.assert_conforms(resource)
    (erased,) = export(riverside.staff, orphan)["Patient"]
    assert erased["name"] == [{"extension": [{"url": terms.DATA_ABSENT_REASON, "valueCode": "masked"}]}]
    assert (erased["active"], erased["gender"]) == (False, "unknown")
    # The erased name meets US Core 3.1.1 (us-core-8: a data-absent reason on the name). The only published US
    # Core Patient the checker has, 5.0.1, moved that reason onto the patient itself (us-core-6), where R4 does
    # not allow the extension: that one rule, and nothing else, is what the tombstone misses.
    found = checker.problems(erased)
    assert found, "the 5.0.1 rule should be reported"
    assert all("us-core-6" in problem for problem in found), found


@pytest.mark.parametrize("make", [capture_claim, reader_claim, single_claim, child_claim])
def test_every_sample_claim_and_its_contained_resources_conform(make: Any):
    claim = to_fhir_claim(make(), resource_id="c1")

    checker.assert_conforms(claim)
    assert claim["referral"]["reference"].startswith("ServiceRequest/")
    assert {c["meta"]["profile"][0] for c in claim["contained"]} <= set(profiles())


def test_what_the_read_api_serves_conforms_too(fhir_base: str, signed_case: SignedCase, riverside: Practice):
    from tests.support.fhir import case_ids, get

    for resource_type, resource_id in case_ids(signed_case, riverside).items():
        client = riverside.billing if resource_type == "Claim" else riverside.staff
        response = get(fhir_base, f"{resource_type}/{resource_id}", client)
        assert response.status_code == 200, response.text
        checker.assert_conforms(response.json())
    answers = [
        get(fhir_base, "metadata").json(),
        get(fhir_base, "ServiceRequest", riverside.staff, params={"_count": "1"}).json(),
        get(fhir_base, "Claim", riverside.billing).json(),
        get(fhir_base, "ServiceRequest", riverside.staff, params={"colour": "blue"}).json(),
        get(fhir_base, f"Patient/{signed_case.claim_id}", riverside.staff).json(),
    ]
    assert [a["resourceType"] for a in answers] == ["CapabilityStatement", "Bundle", "Bundle", "OperationOutcome",
                                                    "OperationOutcome"]
    for answer in answers:
        found = checker.base_problems(answer)
        assert not found, "\n".join(found)


# -- the checker fails where it must ---------------------------------------------------------------------


def _one(case: dict[str, list[Resource]], resource_type: str) -> Resource:
    return copy.deepcopy(case[resource_type][0])


def _breaks(resource: Resource, expected: str) -> None:
    found = checker.problems(resource)
    assert any(expected in problem for problem in found), found


def test_the_checker_refuses_a_missing_mandatory_element(case: dict[str, list[Resource]]):
    organization = _one(case, "Organization")
    del organization["active"]
    _breaks(organization, "Missing required property")
    encounter = _one(case, "Encounter")
    del encounter["type"]
    _breaks(encounter, "Encounter.type")


def test_the_checker_refuses_too_many_values(case: dict[str, list[Resource]]):
    coverage = _one(case, "Coverage")
    coverage["payor"].append({"display": "A second payer"})
    _breaks(coverage, "Coverage.payor")


def test_the_checker_refuses_a_wrong_fixed_or_pattern_value(case: dict[str, list[Resource]]):
    note = _one(case, "Composition")
    note["type"]["coding"][0]["code"] = "11488-4"
    _breaks(note, "pattern")
    extension = _one(case, "Composition")
    extension["extension"][0]["valueReference"] = None
    del extension["extension"][0]["valueReference"]
    extension["extension"][0]["valueString"] = "ServiceRequest"
    _breaks(extension, "valueString is not one of ['valueReference']")
    finding = _one(case, "Observation")
    dental = next(c for c in finding["category"] if c["coding"][0]["code"] == "dental")
    dental["coding"][0]["display"] = "Teeth"
    _breaks(finding, "does not have the slice's fixed or pattern value")


def test_the_checker_refuses_a_missing_slice(case: dict[str, list[Resource]]):
    note = _one(case, "Composition")
    note["section"] = [s for s in note["section"] if s["code"]["coding"][0]["code"] != "51848-0"]
    _breaks(note, "assessment_section")
    finding = _one(case, "Observation")
    finding["category"] = [c for c in finding["category"] if c["coding"][0]["code"] != "dental"]
    _breaks(finding, "dental")


def test_the_checker_refuses_a_code_outside_a_required_binding(case: dict[str, list[Resource]]):
    task = _one(case, "Task")
    task["status"] = "finished"
    _breaks(task, "required value set http://hl7.org/fhir/ValueSet/task-status")
    patient = _one(case, "Patient")
    patient["name"][0]["use"] = "nickname-ish"
    _breaks(patient, "Patient.name[0].use")


def test_the_checker_refuses_invariants_unknown_profiles_and_empty_elements(case: dict[str, list[Resource]]):
    role = _one(case, "PractitionerRole")
    role.pop("endpoint")
    role.pop("contained")
    role.pop("telecom", None)
    _breaks(role, "pd-1")
    request = _one(case, "ServiceRequest")
    request["meta"]["profile"] = ["http://hl7.org/fhir/us/dental-data-exchange/StructureDefinition/dental-servicerequest"]
    _breaks(request, "a profile the checker has no definition of")
    unclaimed = _one(case, "Media")
    del unclaimed["meta"]
    _breaks(unclaimed, "claims no profile")
    empty = _one(case, "Task")
    empty["input"] = []
    _breaks(empty, "Task/")


def test_the_checker_looks_inside_contained_resources():
    claim = to_fhir_claim(capture_claim(), resource_id="c1")
    patient = next(c for c in claim["contained"] if c["resourceType"] == "Patient")
    del patient["identifier"]

    _breaks(claim, "Patient.identifier")


def test_the_base_check_of_the_servers_own_answers_fails_on_a_broken_one(fhir_base: str, riverside: Practice):
    from tests.support.fhir import get

    bundle = get(fhir_base, "Patient", riverside.staff).json()
    bundle["type"] = "search-result"
    found = checker.base_problems(bundle)
    assert any("bundle-type" in problem for problem in found), found
    bundle["type"] = "searchset"
    del bundle["entry"][0]["resource"]["identifier"]
    assert any("Patient.identifier" in problem for problem in checker.base_problems(bundle))


def test_the_must_support_check_notices_an_absent_element(case: dict[str, list[Resource]]):
    request = _one(case, "ServiceRequest")
    del request["insurance"]

    assert missing_must_support(request) == ["ServiceRequest.insurance"]
