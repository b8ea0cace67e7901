"""A claim as a self-contained FHIR R4 Claim (type oral), built as a plain dict.

Patient, billing organization, practitioners and coverage travel as contained resources, so the Claim can be
posted or filed on its own without the receiver resolving anything on our server; each names the US Core
profile it meets. The referral the claim bills for is linked as ``referral``: a reference to its ServiceRequest
on the read API, with the ServiceRequest's identifier for a receiver that cannot resolve it. Teeth and areas
follow the HL7 Dental Data Exchange guide: item.bodySite in the ADA Universal tooth system, or the ADA oral area
system; codes are CDT.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from referral.billing.model import (
    Address,
    Claim,
    ClaimLine,
    CoverageFacts,
    PatientFacts,
    ProviderFacts,
    SubscriberFacts,
)
from referral.dental import AREAS

__all__ = ["to_fhir_claim"]

Resource = dict[str, Any]

CDT = "http://www.ada.org/cdt"
ADA_TOOTH = "http://terminology.hl7.org/CodeSystem/ADAUniversalToothDesignationSystem"
ADA_AREA = "http://terminology.hl7.org/CodeSystem/ADAAreaOralCavitySystem"
FDI_SURFACE = "http://terminology.hl7.org/CodeSystem/FDI-surface"
NPI = "http://hl7.org/fhir/sid/us-npi"
TAX_ID = "urn:oid:2.16.840.1.113883.4.4"
NUCC_TAXONOMY = "http://nucc.org/provider-taxonomy"
PLACE_OF_SERVICE = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"
PROCESS_PRIORITY = "http://terminology.hl7.org/CodeSystem/processpriority"
CARE_TEAM_ROLE = "http://terminology.hl7.org/CodeSystem/claimcareteamrole"
# The core role list has no "referring"; CARIN Blue Button's complement to it does.
CARIN_CARE_TEAM_ROLE = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBClaimCareTeamRole"
SUBSCRIBER_RELATIONSHIP = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"
COVERAGE_CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"
SELF_PAY = "http://terminology.hl7.org/CodeSystem/coverage-selfpay"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
URI = "urn:ietf:rfc:3986"
IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
_US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition"
PROFILES = {
    "Claim": "http://hl7.org/fhir/StructureDefinition/Claim",
    "Patient": f"{_US_CORE}/us-core-patient",
    "Organization": f"{_US_CORE}/us-core-organization",
    "Practitioner": f"{_US_CORE}/us-core-practitioner",
    "Coverage": f"{_US_CORE}/us-core-coverage",
    # US Core 3.1.1 has no RelatedPerson profile: the subscriber claims the base resource.
    "RelatedPerson": "http://hl7.org/fhir/StructureDefinition/RelatedPerson",
}

# Facial has no FDI code of its own; FDI's vestibular "V" (the surface facing lips or cheeks) is the same surface.
_FDI_SURFACE = {
    "M": ("M", "Mesial"),
    "O": ("O", "Occlusal"),
    "I": ("I", "Incisal"),
    "D": ("D", "Distal"),
    "B": ("B", "Buccal"),
    "F": ("V", "Ventral"),
    "L": ("L", "Lingual"),
}
_GENDER = {"F": "female", "M": "male", "U": "unknown"}
_RELATIONSHIP = {"self": "self", "spouse": "spouse", "child": "child", "other": "other"}
# The subscriber as the patient's relation (RelatedPerson.relationship): the parent of a child, the spouse of a spouse.
_SUBSCRIBER_ROLE = {"child": ("PRN", "parent"), "spouse": ("SPS", "spouse")}

_PATIENT, _BILLING, _COVERAGE, _RENDERING, _REFERRING = "patient", "billing", "coverage", "rendering", "referring"
_SUBSCRIBER = "subscriber"


def to_fhir_claim(claim: Claim, *, created: datetime | None = None, resource_id: str | None = None) -> Resource:
    """``created`` defaults to now; pass the time the claim was made when exporting it again later.
    ``resource_id`` is the Claim's id where it is served as a resource of its own (the read API)."""
    when = created or datetime.now(UTC)
    contained = [
        _patient(claim.patient),
        _organization(claim),
        _coverage(claim.coverage),
        _practitioner(_RENDERING, claim.rendering_provider),
    ]
    care_team = [
        {
            "sequence": 1,
            "provider": _ref(_RENDERING),
            "responsible": True,
            "role": _concept(CARE_TEAM_ROLE, "primary", "Primary provider"),
            "qualification": _concept(NUCC_TAXONOMY, claim.rendering_provider.taxonomy),
        }
    ]
    if claim.referring_provider is not None:
        contained.append(_practitioner(_REFERRING, claim.referring_provider))
        care_team.append(
            {
                "sequence": 2,
                "provider": _ref(_REFERRING),
                "role": _concept(CARIN_CARE_TEAM_ROLE, "referring", "Referring"),
                "qualification": _concept(NUCC_TAXONOMY, claim.referring_provider.taxonomy),
            }
        )
    resource: Resource = {
        "resourceType": "Claim",
        **({"id": resource_id} if resource_id else {}),
        "meta": _meta("Claim"),
        "contained": contained,
        "status": "active",
        "type": _concept(CLAIM_TYPE, "oral", "Oral"),
        "use": "claim",
        "patient": _ref(_PATIENT),
        "billablePeriod": {"start": claim.date_of_service.isoformat(), "end": claim.date_of_service.isoformat()},
        "created": when.isoformat(),
        "provider": _ref(_BILLING, claim.billing_organization.name),
        "priority": _concept(PROCESS_PRIORITY, "normal", "Normal"),
        "referral": {"reference": f"ServiceRequest/{claim.referral_id}",
                     "identifier": {"system": URI, "value": f"urn:uuid:{claim.referral_id}"}},
        "careTeam": care_team,
        "insurance": [{"sequence": 1, "focal": True, "coverage": _ref(_COVERAGE)}],
        "item": [_item(claim, line) for line in claim.lines],
        "total": _money(sum((line.charge for line in claim.lines), Decimal("0"))),
    }
    if claim.coverage is not None:
        resource["insurer"] = _payer(claim.coverage)
        subscriber = claim.coverage.subscriber
        if not claim.coverage.patient_is_subscriber and subscriber is not None:
            contained.append(_related_subscriber(subscriber, claim.coverage.relationship))
    return resource


def _item(claim: Claim, line: ClaimLine) -> Resource:
    item: Resource = {
        "sequence": line.number,
        "careTeamSequence": [1],
        "productOrService": _concept(CDT, line.code),
        "servicedDate": line.date_of_service.isoformat(),
        "locationCodeableConcept": _concept(PLACE_OF_SERVICE, claim.place_of_service),
        "quantity": {"value": line.quantity},
        "unitPrice": _money(line.fee),
        "net": _money(line.charge),
    }
    site = _body_site(line)
    if site is not None:
        item["bodySite"] = site
    if line.surfaces:
        item["subSite"] = [
            _concept(FDI_SURFACE, *_FDI_SURFACE[surface])
            for surface in line.surfaces.upper()
            if surface in _FDI_SURFACE
        ]
    return item


def _body_site(line: ClaimLine) -> Resource | None:
    teeth = list(dict.fromkeys(t for t in (line.tooth, *line.teeth) if t))
    if len(teeth) == 1:
        return _concept(ADA_TOOTH, teeth[0])
    # bodySite is a single concept whose codings must be synonyms, so several teeth can only be named in text
    # (as the referral bundle does).
    if teeth:
        return {"text": "teeth " + ", ".join(teeth)}
    if line.area:
        return _concept(ADA_AREA, line.area, AREAS.get(line.area))
    return None


def _patient(patient: PatientFacts) -> Resource:
    return {
        "resourceType": "Patient",
        "id": _PATIENT,
        "meta": _meta("Patient"),
        # The patient's id on the server, as the read API's Patient carries it.
        "identifier": [{"system": URI, "value": f"urn:uuid:{patient.id}"}],
        "name": [{"family": patient.last_name, "given": [patient.first_name]}],
        "gender": _GENDER.get(patient.sex, "unknown"),
        "birthDate": patient.birth_date.isoformat(),
        "address": [_address(patient.address) if patient.address else {"state": patient.state}],
    }


def _organization(claim: Claim) -> Resource:
    organization = claim.billing_organization
    return {
        "resourceType": "Organization",
        "id": _BILLING,
        "meta": _meta("Organization"),
        "active": True,
        "identifier": [
            {"system": NPI, "value": organization.npi},
            {"system": TAX_ID, "value": organization.tax_id.replace("-", "")},
        ],
        "name": organization.name,
        "address": [_address(organization.address)],
    }


def _practitioner(resource_id: str, provider: ProviderFacts) -> Resource:
    name: Resource = {"family": provider.last_name, "given": [provider.first_name]}
    if provider.credentials:
        name["suffix"] = [provider.credentials]
    return {
        "resourceType": "Practitioner",
        "id": resource_id,
        "meta": _meta("Practitioner"),
        "identifier": [{"system": NPI, "value": provider.npi}],
        "name": [name],
    }


def _coverage(coverage: CoverageFacts | None) -> Resource:
    if coverage is None:
        # R4 Claim needs an insurance entry; self-pay is a Coverage paid by the patient.
        return {
            "resourceType": "Coverage",
            "id": _COVERAGE,
            "meta": _meta("Coverage"),
            "status": "active",
            "type": _concept(SELF_PAY, "pay", "PAY"),
            "beneficiary": _ref(_PATIENT),
            "relationship": _concept(SUBSCRIBER_RELATIONSHIP, "self"),
            "payor": [_ref(_PATIENT)],
        }
    resource: Resource = {
        "resourceType": "Coverage",
        "id": _COVERAGE,
        "meta": _meta("Coverage"),
        "status": "active",
        "identifier": [{"type": _concept(IDENTIFIER_TYPE, "MB", "Member Number"), "value": coverage.member_id}],
        "type": {"text": "Dental insurance"},
        "subscriberId": coverage.member_id,
        "beneficiary": _ref(_PATIENT),
        "relationship": _concept(SUBSCRIBER_RELATIONSHIP, _RELATIONSHIP.get(coverage.relationship, "other")),
        "payor": [_payer(coverage)],
    }
    if coverage.relationship == "self":
        resource["subscriber"] = _ref(_PATIENT)
    elif coverage.subscriber is not None:
        # A dependant's coverage belongs to the subscriber, who also holds the policy.
        resource["subscriber"] = _ref(_SUBSCRIBER)
        resource["policyHolder"] = _ref(_SUBSCRIBER)
    if coverage.group_number:
        resource["class"] = [
            {
                "type": _concept(COVERAGE_CLASS, "group", "Group"),
                "value": coverage.group_number,
            }
        ]
    return resource


def _related_subscriber(subscriber: SubscriberFacts, relationship: str) -> Resource:
    resource: Resource = {
        "resourceType": "RelatedPerson",
        "meta": _meta("RelatedPerson"),
        "id": _SUBSCRIBER,
        "patient": _ref(_PATIENT),
        "name": [{"family": subscriber.last_name, "given": [subscriber.first_name]}],
    }
    role = _SUBSCRIBER_ROLE.get(relationship)
    if role is not None:
        resource["relationship"] = [_concept(ROLE_CODE, *role)]
    if subscriber.sex is not None:
        resource["gender"] = _GENDER.get(subscriber.sex, "unknown")
    if subscriber.birth_date is not None:
        resource["birthDate"] = subscriber.birth_date.isoformat()
    if subscriber.address is not None:
        resource["address"] = [_address(subscriber.address)]
    return resource


def _payer(coverage: CoverageFacts) -> Resource:
    # A logical reference: payer ids are assigned by clearinghouses and have no FHIR system of their own.
    return {"identifier": {"value": coverage.payer_id}, "display": coverage.payer_name}


def _address(address: Address) -> Resource:
    lines = [address.line1] + ([address.line2] if address.line2 else [])
    return {"line": lines, "city": address.city, "state": address.state, "postalCode": address.zip, "country": "US"}


def _meta(resource_type: str) -> Resource:
    return {"profile": [PROFILES[resource_type]]}


def _concept(system: str, code: str, display: str | None = None) -> Resource:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def _ref(resource_id: str, display: str | None = None) -> Resource:
    reference = {"reference": f"#{resource_id}"}
    if display:
        reference["display"] = display
    return reference


def _money(amount: Decimal) -> Resource:
    # A JSON number, not a Decimal: the dict is handed to json encoders that would write a Decimal as a string.
    cents = amount.quantize(Decimal("0.01"))
    value: int | float = int(cents) if cents == cents.to_integral_value() else float(cents)
    return {"value": value, "currency": "USD"}
