"""What the read API at /fhir/R4 serves: its resource types, their search parameters and the
CapabilityStatement that says so. The API checks requests against these same tables, so the statement
lists exactly what is answered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from referral.fhir import terms

FHIR_VERSION = "4.0.1"
FHIR_JSON = "application/fhir+json"
DEFAULT_COUNT = 25
MAX_COUNT = 100


@dataclass(frozen=True)
class SearchParameter:
    name: str
    type: str  # FHIR search parameter type: reference or token
    target: str | None  # for a reference: the resource type it names
    documentation: str
    definition: str


def _core(name: str) -> str:
    return f"http://hl7.org/fhir/SearchParameter/{name}"


SEARCH_PARAMETERS: dict[str, tuple[SearchParameter, ...]] = {
    "ServiceRequest": (
        SearchParameter("patient", "reference", "Patient", "The referrals of one patient",
                        _core("clinical-patient")),
        SearchParameter("status", "token", None, "draft, active, completed or revoked; several comma-separated",
                        _core("ServiceRequest-status")),
    ),
    "Task": (
        SearchParameter("owner", "reference", "Practitioner", "The cases assigned to one reader",
                        _core("Task-owner")),
    ),
    "DiagnosticReport": (
        SearchParameter("based-on", "reference", "ServiceRequest", "The signed report of one referral",
                        _core("DiagnosticReport-based-on")),
    ),
    "ImagingStudy": (
        SearchParameter("based-on", "reference", "ServiceRequest", "The DICOM images of one referral",
                        _core("ImagingStudy-basedon")),
    ),
    "Claim": (
        SearchParameter("patient", "reference", "Patient", "The practice's claims for one patient (billing staff)",
                        _core("Claim-patient")),
    ),
    "Patient": (
        SearchParameter("identifier", "token", None,
                        f"{terms.URI}|urn:uuid:<id>, the identifier every Patient carries",
                        _core("Patient-identifier")),
    ),
}

# Parameters every search takes besides its own: the page size, the server's own page token (only ever
# taken from a ``next`` link) and the format, which can only be JSON.
COMMON_SEARCH_PARAMETERS = ("_count", "_page_token", "_format")
JSON_FORMATS = frozenset({"json", "application/json", FHIR_JSON, "application/json+fhir"})

READABLE_TYPES: tuple[str, ...] = (
    "ServiceRequest", "Task", "Patient", "Coverage", "Organization", "Practitioner", "PractitionerRole",
    "ImagingStudy", "Media", "DiagnosticReport", "Observation", "Composition", "Encounter", "Claim",
)

_DOCUMENTATION = {
    "ServiceRequest": "A referral (the order), for the referring practice and the reader it is assigned to",
    "Task": "The fulfilment of a referral: its workflow status and owner",
    "Patient": "A patient of the caller's own practice",
    "Coverage": "A patient's dental coverage (same id as the patient)",
    "Organization": "The caller's own practice",
    "Practitioner": "A provider of the caller's own practice",
    "PractitionerRole": "A provider's role at the caller's own practice (same id as the provider)",
    "ImagingStudy": "The DICOM radiographs of a referral",
    "Media": "A photograph or non-DICOM image of a referral",
    "DiagnosticReport": "The reader's signed interpretation",
    "Observation": "The reader's findings on one image (same id as the image)",
    "Composition": "The signed report as a dental consult note (same id as the report)",
    "Encounter": "The reader's review the consult note was written in (same id as the report)",
    "Claim": "A claim of the caller's practice; billing staff only",
}


def capability_statement(base_url: str, software_version: str, published: str) -> dict[str, Any]:
    """The server's CapabilityStatement: read for every type it serves, search where it has parameters."""
    resources = []
    for resource_type in READABLE_TYPES:
        interactions = [{"code": "read"}]
        parameters = SEARCH_PARAMETERS.get(resource_type, ())
        if parameters:
            interactions.append({"code": "search-type"})
        resource: dict[str, Any] = {
            "type": resource_type,
            "profile": f"http://hl7.org/fhir/StructureDefinition/{resource_type}",
            "documentation": _DOCUMENTATION[resource_type],
            "interaction": interactions,
            "versioning": "no-version",
            "readHistory": False,
            "updateCreate": False,
            "conditionalCreate": False,
            "conditionalRead": "not-supported",
            "conditionalUpdate": False,
            "conditionalDelete": "not-supported",
        }
        if terms.PROFILES[resource_type] != resource["profile"]:
            resource["supportedProfile"] = [terms.PROFILES[resource_type]]
        if parameters:
            resource["searchParam"] = [
                {"name": p.name, "definition": p.definition, "type": p.type, "documentation": p.documentation}
                for p in parameters
            ]
        resources.append(resource)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": published,
        "publisher": "Teledentistry referral server",
        "kind": "instance",
        "software": {"name": "teledentistry-referral", "version": software_version},
        "implementation": {"description": "Read-only FHIR R4 API over the referral workflow", "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [{
            "mode": "server",
            "documentation": "Read-only: referrals are created and changed through the JSON API at /api/v1. "
            "Searches take _count (1-100) and return a searchset Bundle with a next link while more remain.",
            "security": {
                "cors": False,
                "description": "Every request but this statement needs 'Authorization: Bearer <API token>' with "
                "the access rules of the JSON API: a record of another practice answers 404.",
            },
            "resource": resources,
        }],
    }
