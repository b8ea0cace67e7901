"""A referral as a FHIR R4 Bundle of type collection, built as plain dicts from the stored rows.

Only what the rows say is exported. Where FHIR requires an element that we never stored (the DICOM series and
instance UIDs), the value is derived from our own ids so that every export of a case gives the same one.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.orm import Session

from referral.db import utcnow
from referral.dental import AREAS
from referral.fhir import terms
from referral.imaging.sniff import ImageFormat
from referral.models import Image, Organization, Patient, Provider, Referral, Report
from referral.models.enums import ReferralStatus
from referral.models.reports import ReportStatus

Resource = dict[str, Any]

IMAGE_CONTENT_PATH = "/api/v1/images/{id}/content"

# DICOM UIDs are dotted digits of at most 64 characters and a modality is a short code string. Header text
# is stored as read, so anything else is treated as absent rather than copied into a FHIR code.
_DICOM_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
_DICOM_CODE = re.compile(r"[A-Z0-9_]{1,16}")


def urn(resource_id: uuid.UUID) -> str:
    return f"urn:uuid:{resource_id}"


def reference(resource_id: uuid.UUID, display: str | None = None) -> dict[str, str]:
    result = {"reference": urn(resource_id)}
    if display:
        result["display"] = display
    return result


def _derived_id(owner: uuid.UUID, role: str) -> uuid.UUID:
    """An id for a resource that has no row of its own (the Task of a referral, a PractitionerRole):
    name-based, so repeated exports name it the same."""
    return uuid.uuid5(owner, role)


def _dicom_uid_from(value: uuid.UUID) -> str:
    # ITU-T X.667: a UUID read as one integer under the 2.25 arc is a valid DICOM UID.
    return f"2.25.{value.int}"


def _timestamp(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _date(value: date) -> str:
    return value.isoformat()


def _header(image: Image, key: str, pattern: re.Pattern[str], max_length: int) -> str | None:
    value = (image.dicom or {}).get(key)
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value if len(value) <= max_length and pattern.fullmatch(value) else None


def _tooth_concept(tooth: str) -> Resource:
    return {"coding": [terms.coding(terms.ADA_TOOTH, tooth)]}


def _site_concept(teeth: list[str], area: str | None) -> Resource | None:
    """Where an image or finding is, as one CodeableConcept.

    Its codings must all mean the same thing, so several teeth cannot be several codings: they are named in
    the text instead."""
    if len(teeth) == 1:
        return _tooth_concept(teeth[0])
    if teeth:
        return {"text": "teeth " + ", ".join(teeth)}
    if area:
        return {"coding": [terms.coding(terms.ADA_AREA, area, AREAS.get(area))]}
    return None


def _site_coding(teeth: list[str], area: str | None) -> dict[str, Any] | None:
    """ImagingStudy.series.bodySite is a single Coding, so it is set only when one code says it all."""
    if len(teeth) == 1:
        return terms.coding(terms.ADA_TOOTH, teeth[0])
    if not teeth and area:
        return terms.coding(terms.ADA_AREA, area, AREAS.get(area))
    return None


def _describe(image: Image) -> str:
    label = terms.KIND_LABEL[image.kind]
    if len(image.teeth) == 1:
        return f"{label}, tooth {image.teeth[0]}"
    if image.teeth:
        return f"{label}, teeth {', '.join(image.teeth)}"
    if image.area:
        return f"{label}, {AREAS.get(image.area, image.area)}"
    return label


def _compact(resource: Resource) -> Resource:
    """Drop empty elements: FHIR forbids empty arrays, objects and strings."""
    return {key: value for key, value in resource.items() if value not in (None, [], {}, "")}


class _Case:
    """The rows one export needs, each read once."""

    def __init__(self, session: Session, referral: Referral) -> None:
        self.session = session
        self.referral = referral
        self.patient: Patient = referral.patient
        self.referring: Provider = referral.referring_provider
        self.reader = self.provider(referral.assigned_provider_id)
        report = referral.interpretation
        # A draft is the reader's own working copy: only a signed report leaves the system.
        self.report: Report | None = report if report is not None and report.status == ReportStatus.SIGNED else None
        self.report_reader = self.provider(self.report.reader_provider_id) if self.report else None
        self.images: list[Image] = list(referral.images)
        self.dicom: list[tuple[Image, str, str]] = []
        self.media_images: list[Image] = []
        for image in self.images:
            instance = self.instance_of(image)
            if instance is None:
                self.media_images.append(image)
            else:
                self.dicom.append((image, *instance))
        self.dicom_images = [image for image, _, _ in self.dicom]

    def provider(self, provider_id: uuid.UUID | None) -> Provider | None:
        return self.session.get(Provider, provider_id) if provider_id is not None else None

    def organization(self, organization_id: uuid.UUID) -> Organization | None:
        return self.session.get(Organization, organization_id)

    @staticmethod
    def instance_of(image: Image) -> tuple[str, str] | None:
        """The (modality, SOP class UID) that make an image an ImagingStudy instance; None sends it to Media.

        ImagingStudy needs both, so a DICOM file whose header lacks either is exported as Media with its
        bytes' content type rather than with a made-up SOP class."""
        if image.file_format != ImageFormat.DICOM:
            return None
        modality = _header(image, "modality", _DICOM_CODE, 16)
        sop_class = _header(image, "sop_class_uid", _DICOM_UID, 64)
        if modality is None or sop_class is None:
            return None
        return modality, sop_class

    def practitioners(self) -> list[Provider]:
        capturers = [self.provider(image.captured_by_provider_id) for image in self.images]
        seen: dict[uuid.UUID, Provider] = {}
        for provider in (self.referring, *capturers, self.reader, self.report_reader):
            if provider is not None and provider.id not in seen:
                seen[provider.id] = provider
        return list(seen.values())

    def organizations(self, practitioners: Iterable[Provider]) -> list[Organization]:
        ids = dict.fromkeys([self.referral.organization_id, self.patient.organization_id,
                             *(p.organization_id for p in practitioners)])
        return [org for org in (self.organization(i) for i in ids) if org is not None]

    @property
    def task_id(self) -> uuid.UUID:
        return _derived_id(self.referral.id, "Task")

    @property
    def study_id(self) -> uuid.UUID:
        return _derived_id(self.referral.id, "ImagingStudy")


def referral_bundle(session: Session, referral: Referral, *, timestamp: datetime | None = None) -> dict[str, Any]:
    """The referral, its people, images and signed report as one FHIR R4 ``collection`` Bundle.

    Every entry's ``fullUrl`` is ``urn:uuid:<id>`` and every reference between entries uses those URNs, so
    the Bundle resolves on its own."""
    case = _Case(session, referral)
    practitioners = case.practitioners()
    resources: list[tuple[uuid.UUID, Resource]] = [
        (referral.id, _service_request(case)),
        (case.task_id, _task(case)),
        (case.patient.id, _patient(case.patient)),
    ]
    resources += [(org.id, _organization(org)) for org in case.organizations(practitioners)]
    resources += [(p.id, _practitioner(p)) for p in practitioners]
    resources += [(_derived_id(p.id, "PractitionerRole"), _practitioner_role(p)) for p in practitioners]
    if case.dicom_images:
        resources.append((case.study_id, _imaging_study(case)))
    resources += [(image.id, _media(case, image)) for image in case.media_images]
    if case.report is not None:
        resources.append((case.report.id, _diagnostic_report(case, case.report)))
        resources += _observations(case, case.report)
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": _timestamp(timestamp or utcnow()),
        "entry": [{"fullUrl": urn(resource_id), "resource": _with_id(resource, resource_id)}
                  for resource_id, resource in resources],
    }


def _with_id(resource: Resource, resource_id: uuid.UUID) -> Resource:
    rest = {key: value for key, value in resource.items() if key != "resourceType"}
    return {"resourceType": resource["resourceType"], "id": str(resource_id), **rest}


def _image_reference(case: _Case, image: Image) -> dict[str, str]:
    if image in case.dicom_images:
        series = case.dicom_images.index(image) + 1
        return reference(case.study_id, f"Series {series}: {_describe(image)}")
    return reference(image.id, _describe(image))


def _service_request(case: _Case) -> Resource:
    referral = case.referral
    return _compact({
        "resourceType": "ServiceRequest",
        "identifier": [{"system": terms.URI, "value": urn(referral.id)}],
        "status": terms.SERVICE_REQUEST_STATUS[referral.status],
        "intent": "plan",
        "category": [{"coding": [terms.REFERRAL_CATEGORY]}],
        "priority": terms.PRIORITY[referral.urgency],
        "code": {"coding": [terms.REFERRAL_CODE]},
        "subject": reference(case.patient.id),
        "authoredOn": _timestamp(referral.created_at),
        "requester": reference(case.referring.id),
        "performerType": {"text": referral.specialty.value.replace("_", " ")},
        "performer": [reference(case.reader.id)] if case.reader else None,
        "reasonCode": [{"text": referral.reason}],
        "bodySite": [_tooth_concept(tooth) for tooth in referral.teeth],
        "supportingInfo": ([reference(case.study_id)] if case.dicom_images else [])
        + [reference(image.id) for image in case.media_images],
    })


def _status_reason(referral: Referral) -> str | None:
    """Why the case is where it is: the reason given for the step that put it there, if one was."""
    for event in reversed(referral.events):
        if event.to_status == referral.status.value:
            return event.reason
    return None


def _task(case: _Case) -> Resource:
    referral = case.referral
    reason = _status_reason(referral) if referral.status != ReferralStatus.DRAFT else None
    return _compact({
        "resourceType": "Task",
        "basedOn": [reference(referral.id)],
        "status": terms.TASK_STATUS[referral.status],
        "statusReason": {"text": reason} if reason else None,
        "businessStatus": {"text": referral.status.value},
        "intent": "order",
        "priority": terms.PRIORITY[referral.urgency],
        "code": {"coding": [terms.coding(terms.TASK_CODE, "fulfill", "Fulfill the focal request")]},
        "focus": reference(referral.id),
        "for": reference(case.patient.id),
        "authoredOn": _timestamp(referral.created_at),
        "lastModified": _timestamp(referral.updated_at),
        "requester": reference(case.referring.id),
        "owner": reference(case.reader.id) if case.reader else None,
        # The response deadline only runs once the case has been sent.
        "restriction": {"period": {"end": _timestamp(referral.due_at)}} if referral.submitted_at else None,
        "output": [{"type": {"text": "Signed interpretation report"},
                    "valueReference": reference(case.report.id)}] if case.report else None,
    })


def _patient(patient: Patient) -> Resource:
    if patient.is_deleted:
        # The record was deleted on request: the id still joins the case together, nothing says who it was.
        return _compact({
            "resourceType": "Patient",
            "identifier": [{"system": terms.URI, "value": urn(patient.id)}],
            "active": False,
            "managingOrganization": reference(patient.organization_id),
        })
    return _compact({
        "resourceType": "Patient",
        "identifier": [{"system": terms.URI, "value": urn(patient.id)}],
        "name": [{"family": patient.last_name, "given": [patient.first_name]}],
        "gender": terms.GENDER[patient.sex],
        "birthDate": _date(patient.birth_date),
        "address": [{"state": patient.state}],
        "managingOrganization": reference(patient.organization_id),
    })


def _organization(org: Organization) -> Resource:
    return _compact({
        "resourceType": "Organization",
        "identifier": [{"system": terms.NPI, "value": org.npi}, {"system": terms.TAX_ID, "value": org.tax_id}],
        "name": org.name,
        "telecom": [{"system": "phone", "value": org.phone}] if org.phone else None,
        "address": [_compact({
            "line": [line for line in (org.address_line1, org.address_line2) if line],
            "city": org.city,
            "state": org.state,
            "postalCode": org.zip,
        })],
    })


def _practitioner(provider: Provider) -> Resource:
    return _compact({
        "resourceType": "Practitioner",
        "identifier": [{"system": terms.NPI, "value": provider.npi}],
        "name": [{"family": provider.last_name, "given": [provider.first_name]}],
        "qualification": [{"code": {"text": provider.credentials}}] if provider.credentials else None,
    })


def _practitioner_role(provider: Provider) -> Resource:
    # Practitioner has no link to its practice in R4; the role is what ties the two together.
    return {
        "resourceType": "PractitionerRole",
        "practitioner": reference(provider.id),
        "organization": reference(provider.organization_id),
        "specialty": [{"coding": [terms.coding(terms.NUCC_TAXONOMY, provider.taxonomy)]}],
    }


def _modality_coding(code: str) -> dict[str, Any]:
    return terms.coding(terms.DICOM, code, terms.MODALITY_DISPLAY.get(code))


def _imaging_study(case: _Case) -> Resource:
    """One study for the case, one series per DICOM image.

    Intake does not keep the header's series and SOP instance UIDs, and FHIR requires both, so when the stored
    header lacks them they are derived from our ids: the instance UID is ``2.25.<image id as an integer>`` (the
    image id can be read back from it) and the series UID comes from a name-based UUID of the image id."""
    series = []
    modalities: dict[str, dict[str, Any]] = {}
    for number, (image, modality, sop_class) in enumerate(case.dicom, start=1):
        modalities.setdefault(modality, _modality_coding(modality))
        header_series_uid = _header(image, "series_instance_uid", _DICOM_UID, 64)
        header_instance_uid = _header(image, "sop_instance_uid", _DICOM_UID, 64)
        series.append(_compact({
            "uid": header_series_uid or _dicom_uid_from(_derived_id(image.id, "series")),
            "number": number,
            "modality": _modality_coding(modality),
            "description": _describe(image),
            "numberOfInstances": 1,
            "bodySite": _site_coding(image.teeth, image.area),
            "started": _timestamp(image.captured_at),
            "performer": [{"actor": reference(image.captured_by_provider_id)}],
            "instance": [{
                "uid": header_instance_uid or _dicom_uid_from(image.id),
                "sopClass": {"system": terms.URI, "code": f"urn:oid:{sop_class}"},
                "number": 1,
            }],
        }))
    return _compact({
        "resourceType": "ImagingStudy",
        "status": "available",
        "modality": list(modalities.values()),
        "subject": reference(case.patient.id),
        "basedOn": [reference(case.referral.id)],
        "started": _timestamp(min(image.captured_at for image in case.dicom_images)),
        "referrer": reference(case.referring.id),
        "numberOfSeries": len(series),
        "numberOfInstances": len(series),
        "reasonCode": [{"text": text} for text in dict.fromkeys(image.reason for image in case.dicom_images)],
        "series": series,
    })


def _media(case: _Case, image: Image) -> Resource:
    header_modality = _header(image, "modality", _DICOM_CODE, 16)
    modality = _modality_coding(header_modality) if header_modality else terms.KIND_MODALITY[image.kind]
    return _compact({
        "resourceType": "Media",
        # Attachment.hash is defined as SHA-1, which we do not keep; the SHA-256 we do keep (and serve as
        # the content's ETag) travels as an RFC 6920 "nih" URI, which carries the hex digest unchanged.
        "identifier": [
            {"system": terms.URI, "value": urn(image.id)},
            {"type": {"text": "SHA-256 of the stored bytes"}, "system": terms.URI,
             "value": f"nih:sha-256;{image.sha256}"},
        ],
        "basedOn": [reference(case.referral.id)],
        "status": "completed",
        "type": {"coding": [terms.coding(terms.MEDIA_TYPE, "image", "Image")]},
        "modality": {"coding": [modality]},
        "view": {"text": terms.KIND_LABEL[image.kind]},
        "subject": reference(case.patient.id),
        "createdDateTime": _timestamp(image.captured_at),
        "issued": _timestamp(image.created_at),
        "operator": reference(image.captured_by_provider_id),
        "reasonCode": [{"text": image.reason}],
        "bodySite": _site_concept(image.teeth, image.area),
        "height": image.height if image.height and image.height > 0 else None,
        "width": image.width if image.width and image.width > 0 else None,
        # A deleted image's bytes are no longer kept: the attachment still says what they were, not where.
        "content": _compact({
            "contentType": image.content_type,
            "url": None if image.is_deleted else IMAGE_CONTENT_PATH.format(id=image.id),
            "size": image.size,
        }),
    })


def _effective(images: list[Image]) -> dict[str, Any]:
    times = sorted({image.captured_at for image in images})
    if not times:
        return {}
    if len(times) == 1:
        return {"effectiveDateTime": _timestamp(times[0])}
    return {"effectivePeriod": {"start": _timestamp(times[0]), "end": _timestamp(times[-1])}}


def _conclusion(report: Report) -> str:
    # R4's DiagnosticReport has no note element, so the recommendation and the signed addenda join the
    # impression here, each marked, rather than being lost.
    parts = [report.impression or ""]
    if report.recommendation:
        parts.append(f"Recommendation: {report.recommendation}")
    parts += [f"Addendum signed {_timestamp(addendum.signed_at)}: {addendum.text}" for addendum in report.addenda]
    return "\n\n".join(part for part in parts if part)


def _observation_id(report: Report, image_id: str) -> uuid.UUID:
    return _derived_id(report.id, f"finding:{image_id}")


def _findings(case: _Case, report: Report) -> list[tuple[dict[str, Any], Image]]:
    by_id = {str(image.id): image for image in case.images}
    return [(finding, by_id[finding["image_id"]]) for finding in report.findings if finding.get("image_id") in by_id]


def _diagnostic_report(case: _Case, report: Report) -> Resource:
    reader = reference(report.reader_provider_id)
    return _compact({
        "resourceType": "DiagnosticReport",
        "identifier": [{"system": terms.URI, "value": urn(report.id)}],
        "basedOn": [reference(case.referral.id)],
        # Addenda are signed additions to a final report: "appended" in diagnostic-report-status.
        "status": "appended" if report.addenda else "final",
        "category": [{"coding": [terms.coding(terms.DIAGNOSTIC_SERVICE, "RAD", "Radiology")]}],
        "code": {"text": "Dental radiograph interpretation"},
        "subject": reference(case.patient.id),
        **_effective(case.images),
        "issued": _timestamp(report.signed_at) if report.signed_at else None,
        "performer": [reader],
        "resultsInterpreter": [reader],
        "result": [reference(_observation_id(report, finding["image_id"])) for finding, _ in _findings(case, report)],
        "imagingStudy": [reference(case.study_id)] if case.dicom_images else None,
        "media": [{"link": reference(image.id)} for image in case.media_images],
        "conclusion": _conclusion(report),
    })


def _observations(case: _Case, report: Report) -> list[tuple[uuid.UUID, Resource]]:
    """The reader's findings, one Observation per image, each field a component."""
    result = []
    for finding, image in _findings(case, report):
        components = [
            {"code": {"text": terms.FINDING_LABELS.get(key, key.replace("_", " "))}, "valueString": str(value)}
            for key, value in finding.items()
            if key != "image_id" and value not in (None, "")
        ]
        result.append((_observation_id(report, finding["image_id"]), _compact({
            "resourceType": "Observation",
            "status": "final",
            "category": [{"coding": [terms.coding(terms.OBSERVATION_CATEGORY, "imaging", "Imaging")]}],
            "code": {"text": "Findings on one dental image"},
            "subject": reference(case.patient.id),
            "effectiveDateTime": _timestamp(image.captured_at),
            "issued": _timestamp(report.signed_at) if report.signed_at else None,
            "performer": [reference(report.reader_provider_id)],
            "bodySite": _site_concept(image.teeth, image.area),
            "derivedFrom": [_image_reference(case, image)],
            "component": components,
        })))
    return result
