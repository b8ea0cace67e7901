from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from referral.api.context import current_actor, db_session
from referral.schemas.common import PageQuerySchema
from referral.schemas.patients import PatientCreateSchema, PatientPageSchema, PatientSchema
from referral.services import patients

blp = Blueprint("patients", __name__, description="Patients of the caller's organization")


@blp.route("/patients")
class Patients(MethodView):
    @blp.arguments(PatientCreateSchema)
    @blp.response(201, PatientSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Register a patient (staff, dentist)"""
        return patients.create_patient(db_session(), current_actor(), data)

    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, PatientPageSchema)
    def get(self, query: dict[str, Any]) -> Any:
        """Patients, newest first, a page at a time"""
        items, next_cursor = patients.list_patients(db_session(), current_actor(), query.get("cursor"),
                                                    query.get("limit"))
        return {"items": items, "next_cursor": next_cursor}


@blp.route("/patients/<uuid:patient_id>")
class PatientById(MethodView):
    @blp.response(200, PatientSchema)
    def get(self, patient_id: uuid.UUID) -> Any:
        """One patient"""
        return patients.read_patient(db_session(), current_actor(), patient_id)
