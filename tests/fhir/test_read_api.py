"""The read API at /fhir/R4, driven as an integrating system would: fhirpy against the app on a loopback port,
plus plain HTTP where the test is about the wire (status codes, headers, OperationOutcome bodies)."""

from __future__ import annotations

import uuid

import pytest
import requests
import sqlalchemy as sa
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import AuthorizationError, ForbiddenError, OperationOutcome, ResourceNotFound
from flask import Flask

from referral.fhir.capability import READABLE_TYPES, SEARCH_PARAMETERS
from referral.models import ClaimExport
from tests.support.api import new_referral, ready_referral, submit
from tests.support.fhir import FHIR_JSON, SignedCase, audit_rows, case_ids, fhir, get, outcome
from tests.support.world import Practice, Reader, World

# -- the CapabilityStatement -----------------------------------------------------------------------------


def test_the_capability_statement_is_public_and_lists_exactly_what_is_served(fhir_base: str):
    response = get(fhir_base, "metadata")

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith(FHIR_JSON)
    statement = response.json()
    assert (statement["resourceType"], statement["fhirVersion"], statement["kind"]) == (
        "CapabilityStatement", "4.0.1", "instance")
    assert statement["format"] == ["json"]
    (rest,) = statement["rest"]
    served = {r["type"]: r for r in rest["resource"]}
    assert set(served) == set(READABLE_TYPES)
    for resource_type, resource in served.items():
        codes = [i["code"] for i in resource["interaction"]]
        searchable = resource_type in SEARCH_PARAMETERS
        assert codes == (["read", "search-type"] if searchable else ["read"]), resource_type
        names = {p["name"] for p in resource.get("searchParam", [])}
        assert names == {p.name for p in SEARCH_PARAMETERS.get(resource_type, ())}
    assert served["ServiceRequest"]["supportedProfile"] == [
        "http://hl7.org/fhir/us/dental-data-exchange/dental-servicerequest"]
    assert statement["implementation"]["url"] == fhir_base


# -- what an integrating system does ---------------------------------------------------------------------


def test_a_fhir_client_finds_the_practices_referrals_reports_images_and_claims(
        fhir_base: str, signed_case: SignedCase, riverside: Practice):
    clinical, billing = fhir(fhir_base, riverside.staff), fhir(fhir_base, riverside.billing)
    patient = f"Patient/{riverside.patient_id}"

    requests_found = clinical.resources("ServiceRequest").search(patient=patient, status="completed").fetch_all()
    assert [r.id for r in requests_found] == [signed_case.referral_id]
    service_request = requests_found[0]
    assert (service_request["intent"], service_request["status"]) == ("order", "completed")
    assert service_request["reasonCode"][0]["coding"][0]["code"] == "27355003"

    reports = clinical.resources("DiagnosticReport").search(**{"based-on": f"ServiceRequest/{service_request.id}"})
    (report,) = reports.fetch_all()
    assert report.id == signed_case.report_id
    assert report["code"]["coding"][0] == {"system": "http://loinc.org", "code": "18748-4",
                                           "display": "Diagnostic imaging study"}
    findings = [r.to_resource() for r in report["result"]]
    assert {f.id for f in findings} == set(signed_case.images)
    consult = clinical.reference("Composition", signed_case.report_id).to_resource()
    assert consult["extension"][0]["valueReference"].reference == f"ServiceRequest/{signed_case.referral_id}"

    (study,) = clinical.resources("ImagingStudy").search(**{"based-on": f"ServiceRequest/{service_request.id}"}
                                                         ).fetch_all()
    assert [r.reference for r in study["basedOn"]] == [f"ServiceRequest/{signed_case.referral_id}"]

    (claim,) = billing.resources("Claim").search(patient=patient).fetch_all()
    assert claim.id == signed_case.claim_id
    assert claim["referral"].reference == f"ServiceRequest/{signed_case.referral_id}"
    # Every reference the client followed was read with the same token, as a client would.
    assert service_request["subject"].to_resource().id == riverside.patient_id


def test_searches_page_with_count_and_a_next_link_the_client_follows(fhir_base: str, riverside: Practice):
    created = {new_referral(riverside) for _ in range(5)}
    client = fhir(fhir_base, riverside.staff)

    first = get(fhir_base, "ServiceRequest", riverside.staff, params={"status": "draft", "_count": "2"}).json()
    everything = client.resources("ServiceRequest").search(status="draft").limit(2).fetch_all()

    assert (first["type"], first["total"]) == ("searchset", 5)
    assert len(first["entry"]) == 2
    assert all(entry["search"] == {"mode": "match"} for entry in first["entry"])
    assert all(entry["fullUrl"] == f"{fhir_base}/ServiceRequest/{entry['resource']['id']}" for entry in first["entry"])
    links = {link["relation"]: link["url"] for link in first["link"]}
    assert "_count=2" in links["next"]
    assert "status=draft" in links["next"]
    assert [r.id for r in everything][:2] == [e["resource"]["id"] for e in first["entry"]]
    assert {r.id for r in everything} == created
    assert len(everything) == 5
    last = get(fhir_base, "ServiceRequest", riverside.staff, params={"status": "draft", "_count": "5"}).json()
    assert [link["relation"] for link in last["link"]] == ["self"]


def test_comma_separated_values_are_ored_and_a_repeated_parameter_is_anded(fhir_base: str, riverside: Practice):
    draft = new_referral(riverside)
    sent = ready_referral(riverside)
    assert submit(riverside, sent).status_code == 200

    def found(query: list[tuple[str, str]]) -> set[str]:
        bundle = get(fhir_base, "ServiceRequest", riverside.staff, params=query).json()
        return {entry["resource"]["id"] for entry in bundle.get("entry", [])}

    assert found([("status", "draft,active")]) == {draft, sent}
    assert found([("status", "draft"), ("status", "active")]) == set()
    assert found([("status", "draft,active"), ("status", "active")]) == {sent}
    bundle = get(fhir_base, "ServiceRequest", riverside.staff,
                 params=[("status", "draft,active"), ("status", "active"), ("_count", "1")]).json()
    assert "status=draft%2Cactive&status=active" in bundle["link"][0]["url"]


def test_a_reader_finds_the_tasks_assigned_to_them_and_no_one_elses(
        fhir_base: str, world: World, signed_case: SignedCase, riverside: Practice):
    colleague = world.reader(signed_case.reader.organization_id, last_name="Colleague")
    owner = f"Practitioner/{signed_case.reader.provider_id}"

    mine = fhir(fhir_base, signed_case.reader.client).resources("Task").search(owner=owner).fetch_all()
    theirs = fhir(fhir_base, colleague.client).resources("Task").search(owner=owner).fetch_all()
    at_the_practice = fhir(fhir_base, riverside.staff).resources("Task").search(owner=owner).fetch_all()

    assert [(t.id, t["status"]) for t in mine] == [(signed_case.referral_id, "completed")]
    assert theirs == []
    assert [t.id for t in at_the_practice] == [signed_case.referral_id]


def test_a_patient_is_found_by_the_identifier_it_carries(fhir_base: str, riverside: Practice, hillside: Practice):
    client = fhir(fhir_base, riverside.staff)
    identifier = f"urn:ietf:rfc:3986|urn:uuid:{riverside.patient_id}"

    (patient,) = client.resources("Patient").search(identifier=identifier).fetch_all()
    others = client.resources("Patient").search(identifier=f"urn:ietf:rfc:3986|urn:uuid:{hillside.patient_id}")

    assert patient.id == riverside.patient_id
    assert {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{riverside.patient_id}"} in patient["identifier"]
    assert others.fetch_all() == []
    assert client.resources("Patient").search(identifier="http://example.org/mrn|123").fetch_all() == []


# -- refusals, each as an OperationOutcome ---------------------------------------------------------------


@pytest.mark.parametrize(("path", "params", "expression"), [
    ("ServiceRequest", {"name": "Doe"}, ["name"]),
    ("ServiceRequest", {"patient:missing": "true"}, ["patient:missing"]),
    ("ServiceRequest", {"status": "planned"}, ["status"]),
    ("ServiceRequest", {"status": ""}, ["status"]),
    ("Task", {"_count": "0"}, ["_count"]),
    ("Task", {"_count": "101"}, ["_count"]),
    ("Task", {"_count": "ten"}, ["_count"]),
    ("Patient", {"_page_token": "not-a-token"}, ["cursor"]),
    ("Claim", {"_sort": "created"}, ["_sort"]),
])
def test_bad_search_parameters_get_400_naming_them(fhir_base: str, riverside: Practice, path: str,
                                                   params: dict[str, str], expression: list[str]):
    issue = outcome(get(fhir_base, path, riverside.billing, params=params), 400)

    assert issue["code"] == "invalid"
    assert issue["expression"] == expression


def test_the_client_library_sees_a_bad_parameter_as_an_operation_outcome(fhir_base: str, riverside: Practice):
    with pytest.raises(OperationOutcome, match="Unknown search parameter"):
        fhir(fhir_base, riverside.staff).resources("ServiceRequest").search(subject="Patient/1").fetch()


def test_requests_without_a_valid_token_get_401_with_a_bearer_challenge(fhir_base: str, riverside: Practice):
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic dXNlcjpwYXNz"}):
        response = get(fhir_base, f"Patient/{riverside.patient_id}", headers=headers)
        assert outcome(response, 401)["code"] == "login"
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="fhir"'
    with pytest.raises(AuthorizationError):
        SyncFHIRClient(fhir_base).resources("Patient").search().fetch()


def test_the_api_is_read_only(fhir_base: str, riverside: Practice):
    headers = {"Authorization": f"Bearer {riverside.staff.token}", "Content-Type": FHIR_JSON}
    for method, path in (("POST", "Patient"), ("PUT", f"Patient/{riverside.patient_id}"),
                         ("DELETE", f"Patient/{riverside.patient_id}"), ("POST", "ServiceRequest/_search"),
                         ("POST", "metadata")):
        response = requests.request(method, f"{fhir_base}/{path}", headers=headers, json={"resourceType": "Patient"},
                                    timeout=30)
        assert outcome(response, 405)["code"] == "not-supported"
        assert response.headers["Allow"] == "GET, HEAD"


def test_unknown_types_paths_formats_and_read_only_types_are_refused(fhir_base: str, riverside: Practice):
    assert outcome(get(fhir_base, "Appointment", riverside.staff), 404)["code"] == "not-found"
    assert outcome(get(fhir_base, f"Patient/{riverside.patient_id}/_history", riverside.staff), 404)
    assert outcome(get(fhir_base, "Coverage", riverside.staff, params={"patient": "x"}), 405)
    assert outcome(get(fhir_base, "Patient", riverside.staff, params={"_format": "xml"}), 406)
    assert outcome(get(fhir_base, "Patient", riverside.staff, headers={"Accept": "application/fhir+xml"}), 406)
    for accept in ("application/fhir+json; fhirVersion=4.0", "application/json", "text/html, */*;q=0.8"):
        assert get(fhir_base, "Patient", riverside.staff, headers={"Accept": accept}).status_code == 200, accept
    assert outcome(get(fhir_base, "Patient/not-a-uuid", riverside.staff), 404)


def test_claims_are_for_billing_staff_only_as_on_the_json_api(fhir_base: str, signed_case: SignedCase,
                                                             riverside: Practice):
    for client in (riverside.staff, riverside.dentist):
        assert outcome(get(fhir_base, f"Claim/{signed_case.claim_id}", client), 403)["code"] == "forbidden"
        with pytest.raises(ForbiddenError):
            fhir(fhir_base, client).resources("Claim").search().fetch()
    for client in (riverside.billing, riverside.org_admin):
        assert get(fhir_base, f"Claim/{signed_case.claim_id}", client).status_code == 200


def test_a_deleted_patient_is_gone(fhir_base: str, riverside: Practice):
    patient = riverside.staff.post("/api/v1/patients", {"first_name": "Tim", "last_name": "Gone",
                                                        "birth_date": "1990-02-02", "sex": "M", "state": "CA"})
    patient_id = patient.get_json()["id"]
    assert riverside.org_admin.client.delete(f"/api/v1/patients/{patient_id}", headers={
        "Authorization": f"Bearer {riverside.org_admin.token}"}).status_code in (200, 204)

    assert outcome(get(fhir_base, f"Patient/{patient_id}", riverside.staff), 410)["code"] == "deleted"
    assert fhir(fhir_base, riverside.staff).resources("Patient").search(
        identifier=f"urn:uuid:{patient_id}").fetch_all() == []


# -- another practice's records --------------------------------------------------------------------------


def test_every_resource_of_another_practice_is_404_like_one_that_does_not_exist(
        app: Flask, fhir_base: str, signed_case: SignedCase, riverside: Practice, hillside: Practice):
    ids = case_ids(signed_case, riverside)
    assert set(ids) == set(READABLE_TYPES)
    for resource_type, resource_id in ids.items():
        client = riverside.billing if resource_type == "Claim" else riverside.staff
        assert get(fhir_base, f"{resource_type}/{resource_id}", client).status_code == 200, resource_type
    denied_before = len(list(audit_rows(app, "referral.access", "patient.access", "claim.access")))

    for outsider in (hillside.staff, hillside.dentist, hillside.billing, hillside.org_admin):
        for resource_type, resource_id in ids.items():
            issue = outcome(get(fhir_base, f"{resource_type}/{resource_id}", outsider), 404)
            missing = outcome(get(fhir_base, f"{resource_type}/{uuid.uuid4()}", outsider), 404)
            assert issue["diagnostics"] == f"{resource_type}/{resource_id} not found"
            assert missing["code"] == issue["code"] == "not-found"
        with pytest.raises(ResourceNotFound):
            fhir(fhir_base, outsider).reference("ServiceRequest", signed_case.referral_id).to_resource()

    denied = audit_rows(app, "referral.access", "patient.access", "claim.access")[denied_before:]
    assert denied
    assert all(event.outcome == "denied" for event in denied)
    # Each outsider's tries at the case's parts, the patient and coverage, and the claim were all recorded.
    assert {event.object_type for event in denied} == {"referral", "patient", "claim"}


def test_outsiders_find_nothing_of_another_practice_by_search(fhir_base: str, signed_case: SignedCase,
                                                               riverside: Practice, hillside: Practice):
    patient, based_on = f"Patient/{riverside.patient_id}", f"ServiceRequest/{signed_case.referral_id}"
    searches = [("ServiceRequest", {"patient": patient}), ("ServiceRequest", {}),
                ("Task", {"owner": f"Practitioner/{signed_case.reader.provider_id}"}),
                ("DiagnosticReport", {"based-on": based_on}), ("ImagingStudy", {"based-on": based_on}),
                ("Patient", {"identifier": f"urn:uuid:{riverside.patient_id}"})]
    for resource_type, params in searches:
        found = get(fhir_base, resource_type, hillside.staff, params=params).json()
        assert "entry" not in found, (resource_type, params)
        assert found.get("total", 0) == 0
    claims = get(fhir_base, "Claim", hillside.billing, params={"patient": patient}).json()
    assert (claims["total"], "entry" in claims) == (0, False)


def test_the_assigned_reader_reads_the_case_but_not_the_referring_practices_own_records(
        fhir_base: str, signed_case: SignedCase, riverside: Practice):
    reader = signed_case.reader.client
    ids = case_ids(signed_case, riverside)
    for resource_type in ("ServiceRequest", "Task", "ImagingStudy", "Media", "Observation", "DiagnosticReport",
                          "Composition", "Encounter"):
        assert get(fhir_base, f"{resource_type}/{ids[resource_type]}", reader).status_code == 200, resource_type
    # The reader's view of the order leaves the patient's coverage out, as the JSON API's view of the case does.
    assert "insurance" not in get(fhir_base, f"ServiceRequest/{signed_case.referral_id}", reader).json()
    assert "insurance" in get(fhir_base, f"ServiceRequest/{signed_case.referral_id}", riverside.staff).json()
    # As on the JSON API: the patient record, the practice and its providers belong to the referring practice.
    for resource_type in ("Patient", "Coverage", "Organization", "Practitioner", "PractitionerRole", "Claim"):
        assert outcome(get(fhir_base, f"{resource_type}/{ids[resource_type]}", reader), 404)


# -- the audit trail -------------------------------------------------------------------------------------


def test_every_read_and_search_is_audited(app: Flask, fhir_base: str, signed_case: SignedCase,
                                          riverside: Practice):
    get(fhir_base, f"Composition/{signed_case.report_id}", riverside.staff)
    get(fhir_base, f"Patient/{riverside.patient_id}", riverside.dentist)
    get(fhir_base, "DiagnosticReport", riverside.staff,
        params={"based-on": f"ServiceRequest/{signed_case.referral_id}"})
    get(fhir_base, "metadata")

    reads = audit_rows(app, "fhir.read")
    searches = audit_rows(app, "fhir.search")

    assert [(e.details["resource_type"], e.object_type, str(e.object_id)) for e in reads] == [
        ("Composition", "referral", signed_case.referral_id), ("Patient", "patient", riverside.patient_id)]
    assert str(reads[0].referral_id) == signed_case.referral_id
    assert all(str(e.actor_organization_id) == riverside.id and e.outcome == "success" for e in reads + searches)
    assert [(e.details["resource_type"], e.details["count"], e.details["parameters"]) for e in searches] == [
        ("DiagnosticReport", 1, ["based-on"])]
    assert str(searches[0].referral_id) == signed_case.referral_id


def test_a_claim_read_or_found_is_recorded_as_a_fhir_export_of_that_claim(
        app: Flask, fhir_base: str, signed_case: SignedCase, riverside: Practice):
    get(fhir_base, f"Claim/{signed_case.claim_id}", riverside.billing)
    get(fhir_base, "Claim", riverside.billing, params={"patient": f"Patient/{riverside.patient_id}"})

    exports = audit_rows(app, "claim.export_fhir")
    with app.extensions["referral.sessionmaker"]() as session:
        recorded = session.scalars(sa.select(ClaimExport.format).where(
            ClaimExport.claim_id == uuid.UUID(signed_case.claim_id))).all()

    assert [str(e.object_id) for e in exports] == [signed_case.claim_id] * 2
    assert recorded == ["fhir", "fhir"]
    assert [e.details["resource_type"] for e in audit_rows(app, "fhir.search")] == ["Claim"]


def test_a_referral_assigned_later_to_another_reader_leaves_the_first_readers_view(
        fhir_base: str, world: World, riverside: Practice, reader: Reader):
    referral_id = ready_referral(riverside)
    assert submit(riverside, referral_id).get_json()["assigned_provider_id"] == reader.provider_id
    assert get(fhir_base, f"Task/{referral_id}", reader.client).status_code == 200

    assert reader.client.post(f"/api/v1/referrals/{referral_id}/decline", {"reason": "Outside my scope"}
                              ).status_code == 200

    assert outcome(get(fhir_base, f"Task/{referral_id}", reader.client), 404)
    found = get(fhir_base, "Task", reader.client, params={"owner": f"Practitioner/{reader.provider_id}"}).json()
    assert found["total"] == 0
