"""Code systems and the tables that carry our vocabularies over to FHIR R4 codes.

Every table is keyed by the full enum, so adding a referral status or an urgency without deciding its FHIR
code fails the import-time checks at the bottom instead of exporting a guess.
"""

from __future__ import annotations

from typing import Any

from referral.models.enums import ImageKind, Mode, ReferralStatus, Sex, Urgency

SNOMED = "http://snomed.info/sct"
DICOM = "http://dicom.nema.org/resources/ontology/DCM"
ADA_TOOTH = "http://terminology.hl7.org/CodeSystem/ADAUniversalToothDesignationSystem"
ADA_AREA = "http://terminology.hl7.org/CodeSystem/ADAAreaOralCavitySystem"
NPI = "http://hl7.org/fhir/sid/us-npi"
TAX_ID = "urn:oid:2.16.840.1.113883.4.4"
URI = "urn:ietf:rfc:3986"
NUCC_TAXONOMY = "http://nucc.org/provider-taxonomy"
DIAGNOSTIC_SERVICE = "http://terminology.hl7.org/CodeSystem/v2-0074"
MEDIA_TYPE = "http://terminology.hl7.org/CodeSystem/media-type"
TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
LOINC = "http://loinc.org"
CDT = "http://www.ada.org/cdt"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ACT_CLASS = "http://terminology.hl7.org/CodeSystem/v3-ActClass"
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
SUBSCRIBER_RELATIONSHIP = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"
COVERAGE_CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"
DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
ENDPOINT_CONNECTION_TYPE = "http://terminology.hl7.org/CodeSystem/endpoint-connection-type"
DENTAL_CATEGORY = "http://hl7.org/fhir/us/dental-data-exchange/CodeSystem/dental-category"
# The C-CDA on FHIR extension by which a consult note names the order it answers.
ORDER_EXTENSION = "http://hl7.org/fhir/us/ccda/StructureDefinition/OrderExtension"

# The profiles each resource claims in meta.profile. The Dental Data Exchange guide (STU1) builds on US Core;
# its ServiceRequest profile's canonical URL has no "StructureDefinition/" segment, exactly as the guide
# publishes it. Resources the guide and US Core do not profile claim the base R4 definition.
_DDE = "http://hl7.org/fhir/us/dental-data-exchange"
_US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition"
_BASE = "http://hl7.org/fhir/StructureDefinition"
PROFILES: dict[str, str] = {
    "ServiceRequest": f"{_DDE}/dental-servicerequest",
    "Composition": f"{_DDE}/StructureDefinition/dental-consult-note",
    "Observation": f"{_DDE}/StructureDefinition/dental-findings",
    "Patient": f"{_US_CORE}/us-core-patient",
    "Organization": f"{_US_CORE}/us-core-organization",
    "Practitioner": f"{_US_CORE}/us-core-practitioner",
    "PractitionerRole": f"{_US_CORE}/us-core-practitionerrole",
    "Coverage": f"{_US_CORE}/us-core-coverage",
    "Encounter": f"{_US_CORE}/us-core-encounter",
    "DiagnosticReport": f"{_US_CORE}/us-core-diagnosticreport-note",
    "Task": f"{_BASE}/Task",
    "ImagingStudy": f"{_BASE}/ImagingStudy",
    "Media": f"{_BASE}/Media",
    "Claim": f"{_BASE}/Claim",
    "Endpoint": f"{_BASE}/Endpoint",
}


def meta(resource_type: str) -> dict[str, list[str]]:
    return {"profile": [PROFILES[resource_type]]}


# The HL7 Dental Data Exchange referral example uses exactly these two concepts.
REFERRAL_CATEGORY = {"system": SNOMED, "code": "14736009", "display": "Evaluation and management of patient"}
REFERRAL_CODE = {"system": SNOMED, "code": "103697008", "display": "Patient referral for dental care"}

# ServiceRequest is the order itself: it stays active while anyone is still working on it, whatever the
# step, and a cancelled order is "revoked" (the request-status code for a withdrawn authorisation).
SERVICE_REQUEST_STATUS: dict[ReferralStatus, str] = {
    ReferralStatus.DRAFT: "draft",
    ReferralStatus.ROUTED: "active",
    ReferralStatus.UNASSIGNED: "active",
    ReferralStatus.ACCEPTED: "active",
    ReferralStatus.RETAKE_REQUESTED: "active",
    ReferralStatus.REPORTED: "completed",
    ReferralStatus.CLOSED: "completed",
    ReferralStatus.CANCELLED: "revoked",
}

# Task tracks the fulfilment, so it carries the step; businessStatus keeps our exact status because the
# task-status codes are coarser than the workflow.
#   draft            -> draft      not yet sent
#   routed           -> requested  offered to a reader (the owner), who has not answered
#   unassigned       -> requested  sent, but no eligible reader: action is sought and there is no owner.
#                                  Not "ready", which means assignment and acceptance are already settled.
#   accepted         -> accepted   the reader agreed to do it
#   retake_requested -> on-hold    the reader started and is waiting on the capturing office's retakes
#   reported, closed -> completed  the signed report is the output
#   cancelled        -> cancelled
TASK_STATUS: dict[ReferralStatus, str] = {
    ReferralStatus.DRAFT: "draft",
    ReferralStatus.ROUTED: "requested",
    ReferralStatus.UNASSIGNED: "requested",
    ReferralStatus.ACCEPTED: "accepted",
    ReferralStatus.RETAKE_REQUESTED: "on-hold",
    ReferralStatus.REPORTED: "completed",
    ReferralStatus.CLOSED: "completed",
    ReferralStatus.CANCELLED: "cancelled",
}

# An emergency has the shortest response clock (4 hours): "stat" is the request-priority code for it.
PRIORITY: dict[Urgency, str] = {
    Urgency.ROUTINE: "routine",
    Urgency.URGENT: "urgent",
    Urgency.EMERGENCY: "stat",
}

# Reasons for referral that have a code, from the guide's DentalReasonForReferral value set (SNOMED CT). A
# referral names one of these in ``reason_code`` when it fits; its free text always travels as well.
REASON_FOR_REFERRAL: dict[str, str] = {
    "27355003": "Toothache",
    "11114002": "Sore gums",
    "309685001": "Swollen gums",
    "80967001": "Dental caries",
    "397869004": "Dental trauma",
    "65124004": "Swelling",
    "1071000119107": "Oral lesion",
    "298376001": "Temporomandibular joint painful on movement",
    "82212003": "Erosion of teeth",
    "87715008": "Xerostomia",
    "110299009": "Poor oral hygiene",
    "6288001": "Accretion on teeth",
    "128477000": "Abscess",
    "234972003": "Disturbance of tooth eruption or exfoliation",
    "47944004": "Malocclusion of teeth",
}

# SNOMED CT's "entire permanent tooth" concepts for the ADA Universal numbers 1-32, which the guide's tooth
# value set lists beside SNODENT: a permanent tooth carries both codings (they mean the same tooth), so a
# partner reading either system finds it. Primary and supernumerary teeth carry the ADA coding alone. SNOMED
# names these concepts in more than one way, so no display is sent; the comments name the tooth.
PERMANENT_TOOTH_SNOMED: dict[str, str] = {
    "1": "245566003",  # upper right third molar
    "2": "245567007",  # upper right second molar
    "3": "245568002",  # upper right first molar
    "4": "245570006",  # upper right second premolar
    "5": "245571005",  # upper right first premolar
    "6": "245572003",  # upper right canine
    "7": "245574002",  # upper right lateral incisor
    "8": "245575001",  # upper right central incisor
    "9": "245587008",  # upper left central incisor
    "10": "245586004",  # upper left lateral incisor
    "11": "245584001",  # upper left canine
    "12": "245583007",  # upper left first premolar
    "13": "245582002",  # upper left second premolar
    "14": "245579007",  # upper left first molar
    "15": "245578004",  # upper left second molar
    "16": "245577009",  # upper left third molar
    "17": "245602006",  # lower left third molar
    "18": "245603001",  # lower left second molar
    "19": "245604007",  # lower left first molar
    "20": "245606009",  # lower left second premolar
    "21": "245607000",  # lower left first premolar
    "22": "245608005",  # lower left canine
    "23": "245610007",  # lower left lateral incisor
    "24": "245611006",  # lower left central incisor
    "25": "245600003",  # lower right central incisor
    "26": "245599001",  # lower right lateral incisor
    "27": "245597004",  # lower right canine
    "28": "245596008",  # lower right first premolar
    "29": "245595007",  # lower right second premolar
    "30": "245592005",  # lower right first molar
    "31": "245591003",  # lower right second molar
    "32": "245590002",  # lower right third molar
}

# The consult note: its document type and the sections the guide requires, each with its LOINC code.
CONSULT_NOTE_TYPE = {"system": LOINC, "code": "34756-7", "display": "Dentistry Consult note"}
SECTION_REASON_FOR_VISIT = {"system": LOINC, "code": "29299-5", "display": "Reason for visit"}
SECTION_ASSESSMENT = {"system": LOINC, "code": "51848-0", "display": "Evaluation note"}
SECTION_PLAN_OF_TREATMENT = {"system": LOINC, "code": "18776-5", "display": "Plan of care note"}
SECTION_PROCEDURES = {"system": LOINC, "code": "47519-4", "display": "History of Procedures Document"}
SECTION_DENTAL_FINDINGS = {"system": LOINC, "code": "8704-9"}
SECTION_PAYERS = {"system": LOINC, "code": "48768-6", "display": "Payment sources Document"}

# The signed interpretation: a diagnostic imaging report (LOINC document code), in US Core's Radiology category.
REPORT_CODE = {"system": LOINC, "code": "18748-4", "display": "Diagnostic imaging study"}
REPORT_CATEGORY = [{"system": LOINC, "code": "LP29684-5", "display": "Radiology"},
                   {"system": DIAGNOSTIC_SERVICE, "code": "RAD", "display": "Radiology"}]
# Each finding is the reader's narrative observation on one radiograph.
FINDING_CODE = {"system": LOINC, "code": "18782-3", "display": "Radiology Study observation (narrative)"}
DENTAL = {"system": DENTAL_CATEGORY, "code": "dental", "display": "Dental"}

# The reader's review: a virtual encounter; asynchronous review of images without the patient present is an
# indirect encounter, a live session a direct one.
VIRTUAL = {"system": ACT_CODE, "code": "VR", "display": "virtual"}
ENCOUNTER_TYPE: dict[Mode, dict[str, str]] = {
    Mode.ASYNCHRONOUS: {"system": SNOMED, "code": "185316007", "display": "Indirect encounter"},
    Mode.SYNCHRONOUS: {"system": SNOMED, "code": "308335008", "display": "Patient encounter procedure"},
}
PRIMARY_PERFORMER = {"system": PARTICIPATION_TYPE, "code": "PPRF", "display": "primary performer"}
CARE_PROVISION = {"system": ACT_CLASS, "code": "PCPR", "display": "care provision"}
MEMBER_NUMBER = {"system": IDENTIFIER_TYPE, "code": "MB", "display": "Member Number"}

GENDER: dict[Sex, str] = {Sex.FEMALE: "female", Sex.MALE: "male", Sex.UNKNOWN: "unknown"}

# For images that are not DICOM (or whose header does not say), the modality follows from what the
# capturing office filed the image as: DICOM's own codes for those acquisitions.
_IO = {"system": DICOM, "code": "IO", "display": "Intra-oral Radiography"}
_PX = {"system": DICOM, "code": "PX", "display": "Panoramic X-Ray"}
_DX = {"system": DICOM, "code": "DX", "display": "Digital Radiography"}
_XC = {"system": DICOM, "code": "XC", "display": "External-camera Photography"}
KIND_MODALITY: dict[ImageKind, dict[str, str]] = {
    ImageKind.PERIAPICAL: _IO,
    ImageKind.BITEWING: _IO,
    ImageKind.OCCLUSAL: _IO,
    ImageKind.COMPLETE_SERIES: _IO,
    ImageKind.PANORAMIC: _PX,
    ImageKind.CEPHALOMETRIC: _DX,
    ImageKind.EXTRAORAL_POSTERIOR: _DX,
    ImageKind.PHOTO_INTRAORAL: _XC,
    ImageKind.PHOTO_EXTRAORAL: _XC,
}
MODALITY_DISPLAY = {coding["code"]: coding["display"] for coding in (_IO, _PX, _DX, _XC)}

KIND_LABEL: dict[ImageKind, str] = {
    ImageKind.PERIAPICAL: "periapical radiograph",
    ImageKind.BITEWING: "bitewing radiograph",
    ImageKind.OCCLUSAL: "occlusal radiograph",
    ImageKind.PANORAMIC: "panoramic radiograph",
    ImageKind.CEPHALOMETRIC: "cephalometric radiograph",
    ImageKind.EXTRAORAL_POSTERIOR: "extraoral posterior radiograph",
    ImageKind.COMPLETE_SERIES: "complete series of radiographs",
    ImageKind.PHOTO_INTRAORAL: "intraoral photograph",
    ImageKind.PHOTO_EXTRAORAL: "extraoral photograph",
}

FINDING_LABELS = {
    "crown": "Crown",
    "roots": "Roots",
    "pdl_space": "PDL space",
    "lamina_dura": "Lamina dura",
    "periapical_area": "Periapical area",
    "bone_levels": "Bone levels",
    "other": "Other",
    "diagnostic_quality": "Diagnostic quality",
}


def coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    result = {"system": system, "code": code}
    if display:
        result["display"] = display
    return result


def _check_complete() -> None:
    for table, enum in ((SERVICE_REQUEST_STATUS, ReferralStatus), (TASK_STATUS, ReferralStatus),
                        (PRIORITY, Urgency), (GENDER, Sex), (KIND_MODALITY, ImageKind), (KIND_LABEL, ImageKind),
                        (ENCOUNTER_TYPE, Mode)):
        missing = set(enum) - set(table)
        if missing:
            raise RuntimeError(f"FHIR mapping has no entry for {sorted(m.value for m in missing)}")


_check_complete()
