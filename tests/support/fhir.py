"""What the FHIR tests share: a signed case, reading the API with requests and fhirpy, and the audit rows."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import requests
import sqlalchemy as sa
from fhirpy import SyncFHIRClient
from flask import Flask

from referral.fhir.bundle import STUDY_DIGEST_LENGTH
from referral.models import AuditEvent
from tests.support.world import Client, Practice, Reader


@dataclass
class SignedCase:
    referral_id: str
    reader: Reader
    images: list[str]  # a DICOM periapical of 19, then an intraoral photo of 19
    report_id: str
    claim_id: str  # the referring practice's claim


FHIR_JSON = "application/fhir+json"


def fhir(base: str, client: Client) -> SyncFHIRClient:
    return SyncFHIRClient(base, authorization=f"Bearer {client.token}")


def get(base: str, path: str, client: Client | None = None, **kwargs: Any) -> requests.Response:
    headers = kwargs.pop("headers", {})
    if client is not None:
        headers["Authorization"] = f"Bearer {client.token}"
    return requests.get(f"{base}/{path}", headers=headers, timeout=30, **kwargs)


def outcome(response: requests.Response, status: int) -> dict[str, Any]:
    """The response is an OperationOutcome in FHIR JSON with the given status; its one issue."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith(FHIR_JSON)
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    (issue,) = body["issue"]
    assert issue["severity"] in ("error", "fatal")
    assert issue["diagnostics"]
    return issue


def audit_rows(app: Flask, *actions: str) -> list[AuditEvent]:
    with app.extensions["referral.sessionmaker"]() as session:
        return list(session.scalars(sa.select(AuditEvent).where(AuditEvent.action.in_(actions))
                                    .order_by(AuditEvent.at, AuditEvent.id)))


def case_ids(case: SignedCase, riverside: Practice) -> dict[str, str]:
    """An id of each readable type in the signed case."""
    dicom, photo = case.images
    return {
        "ServiceRequest": case.referral_id, "Task": case.referral_id, "ImagingStudy": study_id(case),
        "Media": photo, "Observation": dicom, "DiagnosticReport": case.report_id, "Composition": case.report_id,
        "Encounter": case.report_id, "Patient": riverside.patient_id, "Coverage": riverside.patient_id,
        "Organization": riverside.id, "Practitioner": riverside.dentist_provider_id,
        "PractitionerRole": riverside.dentist_provider_id, "Claim": case.claim_id,
    }


def study_id(case: SignedCase) -> str:
    """The id of the case's ImagingStudy: the referral's, and a digest of the DICOM file's Study Instance UID."""
    dicom = case.images[0]
    image = case.reader.client.get(f"/api/v1/images/{dicom}").get_json()
    study_uid = image["dicom"]["study_instance_uid"]
    return f"{case.referral_id}-{hashlib.sha256(study_uid.encode()).hexdigest()[:STUDY_DIGEST_LENGTH]}"
