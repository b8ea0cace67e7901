from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView

from referral.api.parsing import Blueprint
from referral.http.context import current_actor, db_session, object_store
from referral.schemas.patients import (
    PatientCreateSchema,
    PatientPageSchema,
    PatientQuerySchema,
    PatientSchema,
    PatientUpdateSchema,
)
from referral.services import lifecycle, patients

blp = Blueprint("patients", __name__, description="Patients of the caller's organization")


@blp.route("/patients")
class Patients(MethodView):
    @blp.arguments(PatientCreateSchema)
    @blp.response(201, PatientSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Register a patient (staff, dentist)"""
        return patients.create_patient(db_session(), current_actor(), data)

    @blp.arguments(PatientQuerySchema, location="query")
    @blp.response(200, PatientPageSchema)
    def get(self, query: dict[str, Any]) -> Any:
        """Patients, newest first, a page at a time; `q` searches by name or birth date"""
        items, next_cursor = patients.list_patients(db_session(), current_actor(), query.get("cursor"),
                                                    query.get("limit"), search=query.get("q"))
        return {"items": items, "next_cursor": next_cursor}


@blp.route("/patients/<uuid:patient_id>")
class PatientById(MethodView):
    @blp.response(200, PatientSchema)
    def get(self, patient_id: uuid.UUID) -> Any:
        """One patient; 410 once the patient's record was deleted"""
        return patients.read_patient(db_session(), current_actor(), patient_id)

    @blp.arguments(PatientUpdateSchema)
    @blp.response(200, PatientSchema)
    @blp.alt_response(410, description="the patient's record was deleted")
    def patch(self, data: dict[str, Any], patient_id: uuid.UUID) -> Any:
        """Correct a patient's details (staff, dentist, billing, org admin): only the fields sent change, and
        `address` and `coverage` are replaced whole (`null` removes them). The claims of the patient's cases
        are re-checked in the same transaction, so a claim held for a missing address or subscriber becomes
        ready once it can be exported."""
        return patients.update_patient(db_session(), current_actor(), patient_id, data)

    @blp.response(204)
    @blp.alt_response(409, description="the patient has referrals still under way")
    @blp.alt_response(410, description="the patient's record was already deleted")
    def delete(self, patient_id: uuid.UUID) -> Any:
        """Delete the patient's record on request (the organization's admin or a platform admin): identity
        erased, images and consent forms deleted; cases, reports, claims and the audit trail keep the id"""
        lifecycle.delete_patient(db_session(), object_store(), current_actor(), patient_id)
        return None
