from __future__ import annotations

import json
import uuid

from flask import Response

from referral.api.fhir_rest import base_url
from referral.api.parsing import Blueprint
from referral.http.context import current_actor, db_session
from referral.services import exports

FHIR_JSON = "application/fhir+json"

blp = Blueprint("fhir", __name__, description="Referrals as HL7 FHIR R4 resources")

# Documentation only: the body is a FHIR resource, whose full schema is HL7's, not ours.
_BUNDLE_SCHEMA = {
    "type": "object",
    "properties": {
        "resourceType": {"type": "string", "enum": ["Bundle"]},
        "type": {"type": "string", "enum": ["collection"]},
        "timestamp": {"type": "string", "format": "date-time"},
        "entry": {"type": "array", "items": {"type": "object", "properties": {
            "fullUrl": {"type": "string",
                        "example": "https://example.org/fhir/R4/ServiceRequest/01a2025c-1ef6-77e7-a752-78431fbe91e6"},
            "resource": {"type": "object"},
        }}},
    },
    "externalDocs": {"url": "https://hl7.org/fhir/R4/bundle.html"},
}


@blp.route("/referrals/<uuid:referral_id>/fhir")
@blp.response(200, _BUNDLE_SCHEMA, content_type=FHIR_JSON,
              description="A FHIR R4 Bundle (type collection): ServiceRequest, Task, Patient, Coverage, "
              "Organization, Practitioner, PractitionerRole, ImagingStudy, Media and, once signed, the consult note "
              "(Composition, Encounter, DiagnosticReport with one Observation per image). Each entry's fullUrl is "
              "its address on the read API at /fhir/R4")
def referral_bundle(referral_id: uuid.UUID) -> Response:
    """The referral as a FHIR R4 Bundle (the referring practice and the assigned reader; audited)"""
    bundle = exports.fhir_bundle(db_session(), current_actor(), referral_id, base_url())
    response = Response(json.dumps(bundle, ensure_ascii=False), mimetype=FHIR_JSON)
    # The whole case with the patient's identity: no shared cache may keep it.
    response.headers["Cache-Control"] = "no-store"
    return response
