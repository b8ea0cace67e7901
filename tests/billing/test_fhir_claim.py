"""Claims as FHIR R4 Claim resources, checked with the R4B models of fhir.resources (R4B leaves Claim, Coverage,
Patient, Practitioner and Organization as they were in R4)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fhir.resources.R4B.claim import Claim as FhirClaim
from fhir.resources.R4B.coverage import Coverage as FhirCoverage
from fhir.resources.R4B.relatedperson import RelatedPerson as FhirRelatedPerson

from referral.billing.fhir_claim import (
    ADA_AREA,
    ADA_TOOTH,
    CDT,
    FDI_SURFACE,
    NPI,
    PLACE_OF_SERVICE,
    to_fhir_claim,
)
from referral.billing.model import Address, Claim, SubscriberFacts
from tests.support.claims import (
    CHILD_MEDICAID,
    DELTA,
    ENDODONTIST,
    GP,
    LAKESHORE,
    capture_claim,
    child_claim,
    reader_claim,
    single_claim,
)

CREATED = datetime(2025, 3, 11, 9, 30, tzinfo=UTC)


def export(claim: Claim) -> dict[str, Any]:
    resource = to_fhir_claim(claim, created=CREATED)
    FhirClaim.model_validate(resource)
    return resource


def contained(resource: dict[str, Any], resource_id: str) -> dict[str, Any]:
    return next(r for r in resource["contained"] if r["id"] == resource_id)


def resolve(resource: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    assert reference["reference"].startswith("#")
    return contained(resource, reference["reference"][1:])


@pytest.mark.parametrize("make", [capture_claim, reader_claim, single_claim, child_claim])
def test_every_sample_claim_is_a_valid_r4_claim(make: Any) -> None:
    resource = export(make())
    # Money must reach JSON as numbers, not as Decimal-turned-string.
    assert json.loads(json.dumps(resource)) == resource


def test_the_claim_is_an_active_oral_claim_for_payment_with_normal_priority() -> None:
    resource = export(reader_claim())
    assert resource["status"] == "active"
    assert resource["type"]["coding"] == [
        {"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "oral", "display": "Oral"}
    ]
    assert resource["use"] == "claim"
    assert resource["priority"]["coding"][0]["code"] == "normal"
    assert resource["created"] == "2025-03-11T09:30:00+00:00"


def test_the_claim_is_self_contained_and_every_reference_resolves() -> None:
    resource = export(reader_claim())
    kinds = sorted(r["resourceType"] for r in resource["contained"])
    assert kinds == ["Coverage", "Organization", "Patient", "Practitioner", "Practitioner"]
    assert resolve(resource, resource["patient"])["resourceType"] == "Patient"
    assert resolve(resource, resource["provider"])["resourceType"] == "Organization"
    coverage = resolve(resource, resource["insurance"][0]["coverage"])
    assert resolve(resource, coverage["beneficiary"]) is resolve(resource, resource["patient"])
    for member in resource["careTeam"]:
        assert resolve(resource, member["provider"])["resourceType"] == "Practitioner"


def test_the_provider_is_the_billing_organization_with_its_npi() -> None:
    organization = resolve(export(reader_claim()), export(reader_claim())["provider"])
    assert organization["name"] == LAKESHORE.name
    assert {"system": NPI, "value": LAKESHORE.npi} in organization["identifier"]


def test_the_care_team_names_the_rendering_provider_as_primary_and_the_referring_provider() -> None:
    resource = export(reader_claim())
    rendering, referring = resource["careTeam"]
    assert rendering["sequence"] == 1
    assert rendering["role"]["coding"][0]["code"] == "primary"
    assert rendering["qualification"]["coding"][0]["code"] == ENDODONTIST.taxonomy
    assert resolve(resource, rendering["provider"])["identifier"] == [{"system": NPI, "value": ENDODONTIST.npi}]
    assert referring["role"]["coding"][0]["code"] == "referring"
    assert resolve(resource, referring["provider"])["identifier"] == [{"system": NPI, "value": GP.npi}]
    assert all(item["careTeamSequence"] == [1] for item in resource["item"])


def test_a_claim_without_a_referring_provider_has_a_care_team_of_one() -> None:
    resource = export(capture_claim())
    assert len(resource["careTeam"]) == 1
    assert sum(r["resourceType"] == "Practitioner" for r in resource["contained"]) == 1


def test_the_insurance_is_focal_and_its_coverage_names_the_payer_and_member() -> None:
    resource = export(capture_claim())
    assert resource["insurance"] == [{"sequence": 1, "focal": True, "coverage": {"reference": "#coverage"}}]
    coverage = contained(resource, "coverage")
    assert coverage["payor"] == [{"identifier": {"value": DELTA.payer_id}, "display": DELTA.payer_name}]
    assert coverage["subscriberId"] == DELTA.member_id
    assert coverage["relationship"]["coding"][0]["code"] == "self"
    assert coverage["class"][0]["value"] == DELTA.group_number


def test_a_dependants_coverage_says_how_the_patient_is_related_to_the_subscriber() -> None:
    coverage = contained(export(child_claim()), "coverage")
    assert coverage["relationship"]["coding"][0]["code"] == "child"
    assert coverage["payor"][0]["identifier"]["value"] == CHILD_MEDICAID.payer_id
    assert coverage["subscriberId"] == CHILD_MEDICAID.member_id  # the parent's member id


def test_a_dependants_coverage_names_the_subscriber_as_a_related_person_who_holds_the_policy() -> None:
    resource = export(child_claim())

    coverage = contained(resource, "coverage")
    subscriber = resolve(resource, coverage["subscriber"])
    assert resolve(resource, coverage["policyHolder"]) is subscriber
    assert subscriber == {
        "resourceType": "RelatedPerson",
        "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/RelatedPerson"]},
        "id": "subscriber",
        "patient": {"reference": "#patient"},
        "name": [{"family": "Nguyen", "given": ["Thi"]}],
        "relationship": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "PRN",
                         "display": "parent"}]}
        ],
    }
    FhirRelatedPerson.model_validate(subscriber)
    FhirCoverage.model_validate(coverage)


def test_the_subscribers_demographics_travel_when_known_and_a_spouse_is_named_as_spouse() -> None:
    holder = SubscriberFacts("Ana", "Lopez", date(1980, 1, 2), "F", Address("5 Elm St", "Madison", "WI", "53703"))
    claim = dataclasses.replace(
        capture_claim(), coverage=dataclasses.replace(DELTA, relationship="spouse", subscriber=holder)
    )

    subscriber = contained(export(claim), "subscriber")

    assert subscriber["gender"] == "female"
    assert subscriber["birthDate"] == "1980-01-02"
    assert subscriber["address"] == [
        {"line": ["5 Elm St"], "city": "Madison", "state": "WI", "postalCode": "53703", "country": "US"}
    ]
    assert subscriber["relationship"][0]["coding"][0]["code"] == "SPS"
    FhirRelatedPerson.model_validate(subscriber)


def test_an_other_relationship_names_the_subscriber_without_guessing_a_role() -> None:
    claim = dataclasses.replace(child_claim(), coverage=dataclasses.replace(CHILD_MEDICAID, relationship="other"))

    assert "relationship" not in contained(export(claim), "subscriber")


def test_a_patient_who_is_the_subscriber_has_no_related_person() -> None:
    resource = export(capture_claim())

    assert contained(resource, "coverage")["subscriber"] == {"reference": "#patient"}
    assert all(r["resourceType"] != "RelatedPerson" for r in resource["contained"])


def test_a_dependant_whose_subscriber_is_unknown_names_nobody_as_subscriber() -> None:
    claim = dataclasses.replace(child_claim(), coverage=dataclasses.replace(CHILD_MEDICAID, subscriber=None))

    coverage = contained(export(claim), "coverage")

    assert "subscriber" not in coverage
    assert "policyHolder" not in coverage


def test_a_claim_without_coverage_is_filed_as_self_pay() -> None:
    resource = export(dataclasses.replace(capture_claim(), coverage=None))
    coverage = contained(resource, "coverage")
    assert coverage["type"]["coding"][0]["code"] == "pay"
    assert coverage["payor"] == [{"reference": "#patient"}]
    assert "insurer" not in resource


def test_each_line_becomes_an_item_with_its_cdt_code_date_place_and_amounts() -> None:
    resource = export(single_claim())
    first, additional, bitewings = resource["item"]
    assert [item["sequence"] for item in resource["item"]] == [1, 2, 3]
    assert [item["productOrService"]["coding"][0] for item in resource["item"]] == [
        {"system": CDT, "code": "D0220"},
        {"system": CDT, "code": "D0230"},
        {"system": CDT, "code": "D0272"},
    ]
    assert first["servicedDate"] == "2025-03-10"
    assert first["locationCodeableConcept"]["coding"] == [{"system": PLACE_OF_SERVICE, "code": "11"}]
    assert additional["quantity"] == {"value": 2}
    assert additional["unitPrice"] == {"value": 26, "currency": "USD"}
    assert additional["net"] == {"value": 52, "currency": "USD"}
    assert bitewings["net"] == {"value": 48.5, "currency": "USD"}
    assert resource["total"] == {"value": 131.5, "currency": "USD"}


def test_a_tooth_is_the_items_body_site_in_the_ada_universal_system() -> None:
    items = export(capture_claim())["item"]
    assert items[0]["bodySite"]["coding"] == [{"system": ADA_TOOTH, "code": "19"}]
    assert items[1]["bodySite"]["coding"] == [{"system": ADA_TOOTH, "code": "30"}]
    assert "bodySite" not in items[2]


def test_an_area_is_the_body_site_in_the_ada_oral_area_system() -> None:
    additional = export(single_claim())["item"][1]
    assert additional["bodySite"]["coding"] == [{"system": ADA_AREA, "code": "10", "display": "upper right quadrant"}]


def test_several_teeth_on_one_line_are_named_in_the_body_site_text() -> None:
    bitewings = export(single_claim())["item"][2]
    assert bitewings["bodySite"] == {"text": "teeth 2, 3, 30, 31"}


def test_surfaces_become_fdi_surface_sub_sites() -> None:
    medicament = export(child_claim())["item"][2]
    assert medicament["bodySite"]["coding"] == [{"system": ADA_TOOTH, "code": "S"}]
    assert [s["coding"][0]["code"] for s in medicament["subSite"]] == ["D", "O"]
    assert all(s["coding"][0]["system"] == FDI_SURFACE for s in medicament["subSite"])


def test_a_facial_surface_is_sent_as_the_fdi_vestibular_code() -> None:
    claim = single_claim()
    line = dataclasses.replace(claim.lines[0], tooth="8", surfaces="FI")
    item = export(dataclasses.replace(claim, lines=(line,)))["item"][0]
    assert [s["coding"][0]["code"] for s in item["subSite"]] == ["V", "I"]


def test_the_patient_is_contained_with_name_birth_date_and_gender() -> None:
    patient = contained(export(child_claim()), "patient")
    assert patient["name"] == [{"family": "Nguyen", "given": ["Leo"]}]
    assert patient["birthDate"] == "2016-09-01"
    assert patient["gender"] == "male"
