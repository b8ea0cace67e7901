"""A referral's FHIR R4 resources, built as plain dicts from the stored rows, alone or as a collection Bundle.

Only what the rows say is exported. DICOM images become one ImagingStudy per Study Instance UID of their
headers, with their own series and SOP instance UIDs. Images stored before those UIDs were kept (or whose
headers lack them) share one study of the case, and the UIDs FHIR requires are derived from our own ids so
that every export of a case gives the same ones.

Every resource has the id it has on the read API (``/fhir/R4/<type>/<id>``), and references between them are
relative (``Patient/<id>``), so a Bundle entry and a read of the same resource are the same resource. A
resource with no row of its own takes the id of the row it comes from: the Task and the ImagingStudy of a
referral have the referral's id, a patient's Coverage the patient's, a provider's PractitionerRole the
provider's, a signed report's Composition and Encounter the report's, and a finding the image's. Ids are
unique per resource type, which is all FHIR asks, and the read API finds the owning row from the id alone.
"""

from __future__ import annotations

import hashlib
import html
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
from referral.models.enums import ReferralStatus, SubscriberRelationship
from referral.models.reports import ReportStatus

Resource = dict[str, Any]

IMAGE_CONTENT_PATH = "/api/v1/images/{id}/content"
REPORT_DOCUMENT_PATH = "/api/v1/referrals/{id}/documents/report.pdf"

# DICOM UIDs are dotted digits of at most 64 characters and a modality is a short code string. Header text
# is stored as read, so anything else is treated as absent rather than copied into a FHIR code.
_DICOM_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
_DICOM_CODE = re.compile(r"[A-Z0-9_]{1,16}")
# Hex digits of a Study Instance UID's SHA-256 in its ImagingStudy's id (after the referral's id).
STUDY_DIGEST_LENGTH = 12


def urn(resource_id: uuid.UUID) -> str:
    return f"urn:uuid:{resource_id}"


def reference(resource_type: str, resource_id: uuid.UUID | str, display: str | None = None) -> dict[str, str]:
    result = {"reference": f"{resource_type}/{resource_id}"}
    if display:
        result["display"] = display
    return result


def _derived_id(owner: uuid.UUID, role: str) -> uuid.UUID:
    """A name-based id for something that is not a resource of its own (a DICOM series without a UID)."""
    return uuid.uuid5(owner, role)


def _identifier(resource_id: uuid.UUID) -> dict[str, str]:
    return {"system": terms.URI, "value": urn(resource_id)}


def _narrative(text: str) -> dict[str, str]:
    """Text as generated XHTML narrative; everything the user typed is escaped."""
    paragraphs = "".join(f"<p>{html.escape(part)}</p>" for part in text.split("\n") if part.strip())
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{paragraphs}</div>'}


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
    codings = [terms.coding(terms.ADA_TOOTH, tooth)]
    if tooth in terms.PERMANENT_TOOTH_SNOMED:
        codings.append(terms.coding(terms.SNOMED, terms.PERMANENT_TOOTH_SNOMED[tooth]))
    return {"coding": codings}


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

    def __init__(self, session: Session, referral: Referral, base_url: str, with_coverage: bool) -> None:
        self.session = session
        self.referral = referral
        self.base_url = base_url.rstrip("/")
        self.with_coverage = with_coverage
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
        # One ImagingStudy per Study Instance UID, in the order their first images were added.
        self.studies: dict[str | None, list[tuple[Image, str, str]]] = {}
        for entry in self.dicom:
            self.studies.setdefault(_header(entry[0], "study_instance_uid", _DICOM_UID, 64), []).append(entry)

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
        return self.referral.id

    def study_id(self, study_uid: str | None) -> str:
        """The ImagingStudy's id: the referral's id for the case's own study (images without a Study Instance
        UID), or the referral's id and a digest of the UID, so that a read by id finds its case from the id."""
        if study_uid is None:
            return str(self.referral.id)
        return f"{self.referral.id}-{hashlib.sha256(study_uid.encode()).hexdigest()[:STUDY_DIGEST_LENGTH]}"

    def study_of(self, image: Image) -> str:
        return self.study_id(_header(image, "study_instance_uid", _DICOM_UID, 64))

    @property
    def study_ids(self) -> list[str]:
        return [self.study_id(uid) for uid in self.studies]

    @property
    def has_coverage(self) -> bool:
        """Coverage is exported when the patient has one and the export is for someone who may see it."""
        return self.with_coverage and has_coverage(self.patient)


def has_coverage(patient: Patient) -> bool:
    return not patient.is_deleted and bool(patient.coverage_payer_id and patient.coverage_member_id)


def case_resources(session: Session, referral: Referral, base_url: str, *, with_coverage: bool) -> list[Resource]:
    """The referral, its people, coverage, images and (once signed) consult note, each with its id.

    ``base_url`` is the read API's base (``https://host/fhir/R4``); the PractitionerRoles name it as the
    endpoint through which the practices' records are read. ``with_coverage`` says whether the export is for
    someone who may see the patient's coverage: without it there is no Coverage, no ServiceRequest.insurance
    and no payers section."""
    case = _Case(session, referral, base_url, with_coverage)
    practitioners = case.practitioners()
    resources: list[Resource] = [
        _service_request(case),
        _task(case),
        patient_resource(case.patient),
    ]
    if case.has_coverage:
        resources.append(coverage_resource(case.patient))
    organizations = case.organizations(practitioners)
    resources += [organization_resource(org) for org in organizations]
    resources += [practitioner_resource(p) for p in practitioners]
    by_id = {org.id: org for org in organizations}
    resources += [practitioner_role_resource(p, by_id.get(p.organization_id), case.base_url) for p in practitioners]
    resources += [_imaging_study(case, uid, entries) for uid, entries in case.studies.items()]
    resources += [_media(case, image) for image in case.media_images]
    if case.report is not None:
        resources += [
            _composition(case, case.report),
            _encounter(case, case.report),
            _diagnostic_report(case, case.report),
            *_observations(case, case.report),
        ]
    return resources


def referral_bundle(session: Session, referral: Referral, *, base_url: str, with_coverage: bool,
                    timestamp: datetime | None = None) -> dict[str, Any]:
    """The referral's resources as one FHIR R4 ``collection`` Bundle.

    Every entry's ``fullUrl`` is the resource's address on the read API under ``base_url``, so the relative
    references between entries resolve inside the Bundle and, for a client that may, on the server too."""
    base = base_url.rstrip("/")
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": _timestamp(timestamp or utcnow()),
        "entry": [{"fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}", "resource": resource}
                  for resource in case_resources(session, referral, base, with_coverage=with_coverage)],
    }


def _resource(resource_type: str, resource_id: uuid.UUID | str, body: Resource) -> Resource:
    """A resource in FHIR's usual order: type, id, meta, then its elements, with empty ones dropped."""
    return {"resourceType": resource_type, "id": str(resource_id), "meta": terms.meta(resource_type),
            **_compact(body)}


def _image_reference(case: _Case, image: Image) -> dict[str, str]:
    if image in case.dicom_images:
        return reference("ImagingStudy", case.study_of(image), _describe(image))
    return reference("Media", image.id, _describe(image))


def _reason_concept(referral: Referral) -> Resource:
    """The free-text reason, coded too when the referral named one of the guide's reasons for referral."""
    concept: Resource = {"text": referral.reason}
    if referral.reason_code in terms.REASON_FOR_REFERRAL:
        concept = {"coding": [terms.coding(terms.SNOMED, referral.reason_code,
                                           terms.REASON_FOR_REFERRAL[referral.reason_code])], **concept}
    return concept


def _requested_period(referral: Referral) -> dict[str, str]:
    """When the work is wanted: from the moment the case is sent (or, before that, made) to the response
    deadline its urgency set."""
    return {"start": _timestamp(referral.submitted_at or referral.created_at), "end": _timestamp(referral.due_at)}


def _service_request(case: _Case) -> Resource:
    referral = case.referral
    return _resource("ServiceRequest", referral.id, {
        "identifier": [_identifier(referral.id)],
        "status": terms.SERVICE_REQUEST_STATUS[referral.status],
        # The referral asks the reader to act on it: an order, not a plan.
        "intent": "order",
        "category": [{"coding": [terms.REFERRAL_CATEGORY]}],
        "priority": terms.PRIORITY[referral.urgency],
        "code": {"coding": [terms.REFERRAL_CODE]},
        "subject": reference("Patient", case.patient.id),
        "occurrencePeriod": _requested_period(referral),
        "authoredOn": _timestamp(referral.created_at),
        "requester": reference("Practitioner", case.referring.id),
        "performerType": {"text": referral.specialty.value.replace("_", " ")},
        "performer": [reference("Practitioner", case.reader.id)] if case.reader else None,
        "reasonCode": [_reason_concept(referral)],
        "insurance": [reference("Coverage", case.patient.id)] if case.has_coverage else None,
        "bodySite": [_tooth_concept(tooth) for tooth in referral.teeth],
        "supportingInfo": [reference("ImagingStudy", study_id) for study_id in case.study_ids]
        + [reference("Media", image.id) for image in case.media_images],
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
    return _resource("Task", case.task_id, {
        "basedOn": [reference("ServiceRequest", referral.id)],
        "status": terms.TASK_STATUS[referral.status],
        "statusReason": {"text": reason} if reason else None,
        "businessStatus": {"text": referral.status.value},
        "intent": "order",
        "priority": terms.PRIORITY[referral.urgency],
        "code": {"coding": [terms.coding(terms.TASK_CODE, "fulfill", "Fulfill the focal request")]},
        "focus": reference("ServiceRequest", referral.id),
        "for": reference("Patient", case.patient.id),
        "authoredOn": _timestamp(referral.created_at),
        "lastModified": _timestamp(referral.updated_at),
        "requester": reference("Practitioner", case.referring.id),
        "owner": reference("Practitioner", case.reader.id) if case.reader else None,
        # The response deadline only runs once the case has been sent.
        "restriction": {"period": {"end": _timestamp(referral.due_at)}} if referral.submitted_at else None,
        "output": [{"type": {"text": "Signed interpretation report"},
                    "valueReference": reference("DiagnosticReport", case.report.id)}] if case.report else None,
    })


def patient_resource(patient: Patient) -> Resource:
    if patient.is_deleted:
        # The record was deleted on request: the id still joins the case together, nothing says who it was.
        # US Core wants a name and a gender: the name is marked as withheld, the gender as unknown. (US Core 3.1.1
        # puts the data-absent reason on the name; later versions want it on the patient, where R4 allows no
        # extension of that kind.)
        masked = [{"url": terms.DATA_ABSENT_REASON, "valueCode": "masked"}]
        return _resource("Patient", patient.id, {
            "identifier": [_identifier(patient.id)],
            "active": False,
            "name": [{"extension": masked}],
            "gender": "unknown",
            "managingOrganization": reference("Organization", patient.organization_id),
        })
    return _resource("Patient", patient.id, {
        "identifier": [_identifier(patient.id)],
        "active": True,
        "name": [{"family": patient.last_name, "given": [patient.first_name]}],
        "gender": terms.GENDER[patient.sex],
        "birthDate": _date(patient.birth_date),
        "address": [_compact({
            "line": [line for line in (patient.address_line1, patient.address_line2) if line],
            "city": patient.city,
            "state": patient.state,
            "postalCode": patient.zip,
        })],
        "managingOrganization": reference("Organization", patient.organization_id),
    })


_RELATIONSHIP_DISPLAY = {"self": "Self", "spouse": "Spouse", "child": "Child", "other": "Other"}


def coverage_resource(patient: Patient) -> Resource:
    """The patient's dental coverage as kept on the patient's record; its id is the patient's."""
    relationship = (patient.coverage_relationship or SubscriberRelationship.SELF).value
    return _resource("Coverage", patient.id, {
        "identifier": [{"type": {"coding": [terms.MEMBER_NUMBER]}, "value": patient.coverage_member_id}],
        "status": "active",
        "type": {"text": "Dental insurance"},
        "subscriber": reference("Patient", patient.id) if relationship == "self" else None,
        "subscriberId": patient.coverage_member_id,
        "beneficiary": reference("Patient", patient.id),
        "relationship": {"coding": [terms.coding(terms.SUBSCRIBER_RELATIONSHIP, relationship,
                                                 _RELATIONSHIP_DISPLAY[relationship])]},
        # A logical reference: payer ids are assigned by clearinghouses and have no FHIR system of their own.
        "payor": [_compact({"identifier": {"value": patient.coverage_payer_id},
                            "display": patient.coverage_payer_name})],
        "class": [{"type": {"coding": [terms.coding(terms.COVERAGE_CLASS, "group", "Group")]},
                   "value": patient.coverage_group_number}] if patient.coverage_group_number else None,
    })


def organization_resource(org: Organization) -> Resource:
    return _resource("Organization", org.id, {
        "identifier": [{"system": terms.NPI, "value": org.npi}, {"system": terms.TAX_ID, "value": org.tax_id}],
        # Every organization on file is a practice in business; none is kept once it stops.
        "active": True,
        "name": org.name,
        "telecom": [{"system": "phone", "value": org.phone}] if org.phone else None,
        "address": [_compact({
            "line": [line for line in (org.address_line1, org.address_line2) if line],
            "city": org.city,
            "state": org.state,
            "postalCode": org.zip,
            "country": "US",
        })],
    })


def practitioner_resource(provider: Provider) -> Resource:
    return _resource("Practitioner", provider.id, {
        "identifier": [{"system": terms.NPI, "value": provider.npi}],
        "name": [{"family": provider.last_name, "given": [provider.first_name]}],
        "qualification": [{"code": {"text": provider.credentials}}] if provider.credentials else None,
    })


def practitioner_role_resource(provider: Provider, organization: Organization | None, base_url: str) -> Resource:
    """Practitioner has no link to its practice in R4; the role is what ties the two together. The practice's
    phone (when on file) and the read API, as a contained Endpoint, are how to reach them."""
    return _resource("PractitionerRole", provider.id, {
        "contained": [{
            "resourceType": "Endpoint",
            "id": "fhir",
            "meta": terms.meta("Endpoint"),
            "status": "active",
            "connectionType": terms.coding(terms.ENDPOINT_CONNECTION_TYPE, "hl7-fhir-rest", "HL7 FHIR"),
            "payloadType": [{"text": "FHIR R4 resources of the practice's referrals"}],
            "address": base_url.rstrip("/"),
        }],
        "active": True,
        "practitioner": reference("Practitioner", provider.id),
        "organization": reference("Organization", provider.organization_id),
        "specialty": [{"coding": [terms.coding(terms.NUCC_TAXONOMY, provider.taxonomy)]}],
        "telecom": [{"system": "phone", "value": organization.phone}] if organization and organization.phone else None,
        "endpoint": [{"reference": "#fhir"}],
    })


def _modality_coding(code: str) -> dict[str, Any]:
    return terms.coding(terms.DICOM, code, terms.MODALITY_DISPLAY.get(code))


def _imaging_study(case: _Case, study_uid: str | None, entries: list[tuple[Image, str, str]]) -> Resource:
    """One study: its series are the headers' Series Instance UIDs, each listing its SOP instances.

    Images without the header's UIDs (stored before they were kept) get derived ones: the instance UID is
    ``2.25.<image id as an integer>`` (the image id can be read back from it) and the series UID comes from
    a name-based UUID of the image id, one series per such image."""
    images = [image for image, _, _ in entries]
    series_by_uid: dict[str, list[tuple[Image, str, str]]] = {}
    for entry in entries:
        image = entry[0]
        uid = _header(image, "series_instance_uid", _DICOM_UID, 64) or _dicom_uid_from(
            _derived_id(image.id, "series"))
        series_by_uid.setdefault(uid, []).append(entry)
    series = []
    modalities: dict[str, dict[str, Any]] = {}
    for number, (series_uid, members) in enumerate(series_by_uid.items(), start=1):
        first, modality, _ = members[0]
        modalities.setdefault(modality, _modality_coding(modality))
        teeth = list(dict.fromkeys(tooth for image, _, _ in members for tooth in image.teeth))
        areas = {image.area for image, _, _ in members}
        series.append(_compact({
            "uid": series_uid,
            "number": number,
            "modality": _modality_coding(modality),
            "description": _describe(first) if len(members) == 1 else None,
            "numberOfInstances": len(members),
            "bodySite": _site_coding(teeth, areas.pop() if len(areas) == 1 else None),
            "started": _timestamp(min(image.captured_at for image, _, _ in members)),
            "performer": [{"actor": reference("Practitioner", provider_id)} for provider_id in
                          dict.fromkeys(image.captured_by_provider_id for image, _, _ in members)],
            "instance": [_compact({
                "uid": _header(image, "sop_instance_uid", _DICOM_UID, 64) or _dicom_uid_from(image.id),
                "sopClass": {"system": terms.URI, "code": f"urn:oid:{sop_class}"},
                "number": _instance_number(image) or index,
                "title": _describe(image),
            }) for index, (image, _, sop_class) in enumerate(members, start=1)],
        }))
    accession = next((value for value in (_accession(image) for image in images) if value), None)
    return _resource("ImagingStudy", case.study_id(study_uid), {
        "identifier": ([{"system": "urn:dicom:uid", "value": f"urn:oid:{study_uid}"}] if study_uid else [])
        + ([{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN"}]},
             "value": accession}] if accession else []) or None,
        "status": "available",
        "modality": list(modalities.values()),
        "subject": reference("Patient", case.patient.id),
        "basedOn": [reference("ServiceRequest", case.referral.id)],
        "started": _timestamp(min(image.captured_at for image in images)),
        "referrer": reference("Practitioner", case.referring.id),
        "numberOfSeries": len(series),
        "numberOfInstances": len(images),
        "reasonCode": [{"text": text} for text in dict.fromkeys(image.reason for image in images)],
        "series": series,
    })


def _instance_number(image: Image) -> int | None:
    value = (image.dicom or {}).get("instance_number")
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31 else None


def _accession(image: Image) -> str | None:
    value = (image.dicom or {}).get("accession_number")
    return value.strip() if isinstance(value, str) and value.strip() else None


def _media(case: _Case, image: Image) -> Resource:
    header_modality = _header(image, "modality", _DICOM_CODE, 16)
    modality = _modality_coding(header_modality) if header_modality else terms.KIND_MODALITY[image.kind]
    return _resource("Media", image.id, {
        # Attachment.hash is defined as SHA-1, which we do not keep; the SHA-256 we do keep (and serve as
        # the content's ETag) travels as an RFC 6920 "nih" URI, which carries the hex digest unchanged.
        "identifier": [
            _identifier(image.id),
            {"type": {"text": "SHA-256 of the stored bytes"}, "system": terms.URI,
             "value": f"nih:sha-256;{image.sha256}"},
        ],
        "basedOn": [reference("ServiceRequest", case.referral.id)],
        "status": "completed",
        "type": {"coding": [terms.coding(terms.MEDIA_TYPE, "image", "Image")]},
        "modality": {"coding": [modality]},
        "view": {"text": terms.KIND_LABEL[image.kind]},
        "subject": reference("Patient", case.patient.id),
        "createdDateTime": _timestamp(image.captured_at),
        "issued": _timestamp(image.created_at),
        "operator": reference("Practitioner", image.captured_by_provider_id),
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


def _effective(images: list[Image], report: Report) -> dict[str, Any]:
    times = sorted({image.captured_at for image in images})
    if not times:
        # Nothing was captured (every image removed): the report speaks for the moment it was signed.
        return {"effectiveDateTime": _timestamp(report.signed_at or report.updated_at)}
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


def _findings(case: _Case, report: Report) -> list[tuple[dict[str, Any], Image]]:
    by_id = {str(image.id): image for image in case.images}
    return [(finding, by_id[finding["image_id"]]) for finding in report.findings if finding.get("image_id") in by_id]


def _signed(report: Report) -> str:
    return _timestamp(report.signed_at or report.updated_at)


def _diagnostic_report(case: _Case, report: Report) -> Resource:
    reader = reference("Practitioner", report.reader_provider_id)
    return _resource("DiagnosticReport", report.id, {
        "identifier": [_identifier(report.id)],
        "basedOn": [reference("ServiceRequest", case.referral.id)],
        # Addenda are signed additions to a final report: "appended" in diagnostic-report-status.
        "status": "appended" if report.addenda else "final",
        "category": [{"coding": terms.REPORT_CATEGORY}],
        "code": {"coding": [terms.REPORT_CODE], "text": "Dental radiograph interpretation"},
        "subject": reference("Patient", case.patient.id),
        "encounter": reference("Encounter", report.id),
        **_effective(case.images, report),
        "issued": _signed(report),
        "performer": [reader],
        "resultsInterpreter": [reader],
        "result": [reference("Observation", image.id) for _, image in _findings(case, report)],
        "imagingStudy": [reference("ImagingStudy", study_id) for study_id in case.study_ids] or None,
        "media": [{"link": reference("Media", image.id)} for image in case.media_images],
        "conclusion": _conclusion(report),
        "presentedForm": [{"contentType": "application/pdf", "title": "Signed interpretation report",
                           "url": REPORT_DOCUMENT_PATH.format(id=case.referral.id)}],
    })


def _finding_text(finding: dict[str, Any]) -> str:
    return "; ".join(f"{terms.FINDING_LABELS.get(key, key.replace('_', ' '))}: {value}"
                     for key, value in finding.items() if key != "image_id" and value not in (None, ""))


def _observations(case: _Case, report: Report) -> list[Resource]:
    """The reader's findings, one Observation per image: the whole reading as its value, each field a component.

    An Observation's id is its image's: a signed report has one finding per image."""
    result = []
    for finding, image in _findings(case, report):
        components = [
            {"code": {"text": terms.FINDING_LABELS.get(key, key.replace("_", " "))}, "valueString": str(value)}
            for key, value in finding.items()
            if key != "image_id" and value not in (None, "")
        ]
        result.append(_resource("Observation", image.id, {
            "status": "final",
            "category": [{"coding": [terms.DENTAL]},
                         {"coding": [terms.coding(terms.OBSERVATION_CATEGORY, "imaging", "Imaging")]}],
            "code": {"coding": [terms.FINDING_CODE], "text": "Findings on one dental image"},
            "subject": reference("Patient", case.patient.id),
            "encounter": reference("Encounter", report.id),
            "effectiveDateTime": _timestamp(image.captured_at),
            "issued": _signed(report),
            "performer": [reference("Practitioner", report.reader_provider_id)],
            "valueString": _finding_text(finding) or "No findings recorded",
            "bodySite": _site_concept(image.teeth, image.area),
            "derivedFrom": [_image_reference(case, image)],
            "component": components,
        }))
    return result


def _review_period(case: _Case, report: Report) -> dict[str, str]:
    start = case.referral.accepted_at or report.created_at
    return {"start": _timestamp(start), "end": _signed(report)}


def _encounter(case: _Case, report: Report) -> Resource:
    """The reader's review of the case: a virtual encounter, the one the consult note was written in."""
    reader = case.report_reader
    return _resource("Encounter", report.id, {
        "status": "finished",
        "class": terms.VIRTUAL,
        "type": [{"coding": [terms.ENCOUNTER_TYPE[case.referral.mode]]}],
        "subject": reference("Patient", case.patient.id),
        "basedOn": [reference("ServiceRequest", case.referral.id)],
        "participant": [{"type": [{"coding": [terms.PRIMARY_PERFORMER]}],
                         "individual": reference("Practitioner", report.reader_provider_id)}],
        "period": _review_period(case, report),
        "reasonCode": [_reason_concept(case.referral)],
        "serviceProvider": reference("Organization", reader.organization_id) if reader else None,
    })


def _section(title: str, code: dict[str, str], text: str, entries: list[dict[str, str]] | None = None) -> Resource:
    return _compact({"title": title, "code": {"coding": [code]}, "text": _narrative(text), "entry": entries})


def _composition(case: _Case, report: Report) -> Resource:
    """The signed report as the guide's Dental Consult Note: the order it answers, the reason, the reader's
    assessment and plan, what was done and the findings, with the DiagnosticReport as the assessment's entry."""
    reader = case.report_reader
    findings = _findings(case, report)
    interpreted = [_describe(image) for _, image in findings] or [_describe(image) for image in case.images]
    sections = [
        _section("Reason for visit", terms.SECTION_REASON_FOR_VISIT, case.referral.reason,
                 [reference("ServiceRequest", case.referral.id)]),
        _section("Assessment", terms.SECTION_ASSESSMENT, _conclusion(report) or "No impression recorded",
                 [reference("DiagnosticReport", report.id)]),
        _section("Plan of treatment", terms.SECTION_PLAN_OF_TREATMENT,
                 report.recommendation or "No treatment recommended by the reader"),
        _section("Procedures", terms.SECTION_PROCEDURES,
                 "Remote interpretation of " + ("; ".join(interpreted) or "the case's images")),
        _section("Dental findings", terms.SECTION_DENTAL_FINDINGS,
                 "\n".join(f"{_describe(image)}: {_finding_text(finding) or 'no findings recorded'}"
                           for finding, image in findings) or "No findings recorded",
                 [reference("Observation", image.id) for _, image in findings]),
    ]
    if case.has_coverage:
        sections.append(_section("Payers", terms.SECTION_PAYERS,
                                 f"{case.patient.coverage_payer_name or case.patient.coverage_payer_id}",
                                 [reference("Coverage", case.patient.id)]))
    return _resource("Composition", report.id, {
        "extension": [{"url": terms.ORDER_EXTENSION, "valueReference": reference("ServiceRequest", case.referral.id)}],
        "identifier": _identifier(report.id),
        # A signed report with addenda was changed after it was final.
        "status": "amended" if report.addenda else "final",
        "type": {"coding": [terms.CONSULT_NOTE_TYPE]},
        "subject": reference("Patient", case.patient.id),
        "encounter": reference("Encounter", report.id),
        "date": _signed(report),
        "author": [reference("Practitioner", report.reader_provider_id)],
        "title": "Dental consult note",
        "attester": [{"mode": "legal", "time": _signed(report),
                      "party": reference("Practitioner", report.reader_provider_id)}],
        "custodian": reference("Organization", reader.organization_id) if reader else None,
        "event": [{"code": [{"coding": [terms.CARE_PROVISION]}], "period": _review_period(case, report)}],
        "section": sections,
    })
