"""Code systems and the tables that carry our vocabularies over to FHIR R4 codes.

Every table is keyed by the full enum, so adding a referral status or an urgency without deciding its FHIR
code fails the import-time checks at the bottom instead of exporting a guess.
"""

from __future__ import annotations

from typing import Any

from referral.models.enums import ImageKind, ReferralStatus, Sex, Urgency

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
                        (PRIORITY, Urgency), (GENDER, Sex), (KIND_MODALITY, ImageKind), (KIND_LABEL, ImageKind)):
        missing = set(enum) - set(table)
        if missing:
            raise RuntimeError(f"FHIR mapping has no entry for {sorted(m.value for m in missing)}")


_check_complete()
