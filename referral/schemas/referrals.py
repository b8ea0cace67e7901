from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates, validates_schema

from referral.fhir.terms import REASON_FOR_REFERRAL
from referral.models.enums import (
    REFERRAL_SPECIALTIES,
    ConsentGivenBy,
    ConsentMethod,
    Mode,
    Question,
    ReferralStatus,
    RestorabilityDecider,
    Scope,
    Specialty,
    Urgency,
)
from referral.schemas.common import (
    DumpSchema,
    LoadSchema,
    PageQuerySchema,
    PageSchema,
    PracticeDateTime,
    StatusList,
    Teeth,
    Text,
    one_of,
)
from referral.schemas.images import ImageSchema
from referral.schemas.patients import PatientSchema
from referral.services.referrals import is_overdue
from referral.validation import CAPTURE_PLACES_OF_SERVICE


class ConsentFormFieldsSchema(LoadSchema):
    """The consent form upload takes its file and nothing else: any other form field is refused (422)."""


class ConsentSchema(LoadSchema):
    given_by = fields.String(required=True, validate=one_of(ConsentGivenBy.values()))
    method = fields.String(required=True, validate=one_of(ConsentMethod.values()))
    given_at = PracticeDateTime(required=True, metadata={
        "description": "ISO 8601 with an offset, or a wall time without one, read in the practice's time zone"})


class ReferralCreateSchema(LoadSchema):
    patient_id = fields.UUID(required=True)
    referring_provider_id = fields.UUID(required=True)
    specialty = fields.String(required=True, validate=one_of([s.value for s in REFERRAL_SPECIALTIES]))
    reason = Text(2000, required=True)
    reason_code = fields.String(
        allow_none=True, validate=one_of(list(REASON_FOR_REFERRAL)),
        metadata={"description": "SNOMED CT code of the reason when one of the dental reasons for referral fits "
                                 "(e.g. 27355003 toothache); the free-text reason is still required"})
    teeth = Teeth(load_default=list)
    urgency = fields.String(required=True, validate=one_of(Urgency.values()))
    mode = fields.String(required=True, validate=one_of(Mode.values()))
    scope = fields.String(load_default=Scope.EVALUATE_ONLY.value, validate=one_of(Scope.values()))
    questions = fields.List(
        fields.String(validate=one_of(Question.values())), load_default=list, validate=validate.Length(max=3),
        metadata={"description": "what you ask the reader: diagnosis, treatment_plan, restorability (any of them)"})
    restorability_decided_by = fields.String(
        allow_none=True, validate=one_of(RestorabilityDecider.values()),
        metadata={"description": "with restorability asked: who decides it, referring_dentist (the reader advises) "
                                 "or reader"})
    target_provider_id = fields.UUID(allow_none=True)
    place_of_service = fields.String(metadata={"description": "CMS place-of-service code of the capture site; "
                                                              "defaults to the practice's default_place_of_service"})
    consent = fields.Nested(ConsentSchema, allow_none=True)

    @validates_schema
    def _question(self, data: dict[str, Any], **_kwargs: Any) -> None:
        asks = data.get("questions") or []
        if len(set(asks)) != len(asks):
            raise ValidationError("Name each question once.", "questions")
        if data.get("restorability_decided_by") and Question.RESTORABILITY.value not in asks:
            raise ValidationError("Only when restorability is one of the questions.", "restorability_decided_by")

    @validates("place_of_service")
    def _place_of_service(self, value: str, **_kwargs: Any) -> None:
        if value not in CAPTURE_PLACES_OF_SERVICE:
            codes = ", ".join(f"{code} {name}" for code, name in CAPTURE_PLACES_OF_SERVICE.items())
            raise ValidationError(f"Not a physical place of service for a capture. Use one of: {codes}.")


class ConsentDumpSchema(DumpSchema):
    given_by = fields.String()
    method = fields.String(allow_none=True)
    given_at = fields.DateTime()
    form_on_file = fields.Boolean()


class QuestionSchema(DumpSchema):
    asks = fields.List(fields.String(), metadata={"description": "diagnosis, treatment_plan, restorability"})
    restorability_decided_by = fields.String(allow_none=True)
    scope = fields.String(metadata={"description": "evaluate_only or evaluate_and_treat"})


class ReportStateSchema(DumpSchema):
    status = fields.String(metadata={"description": "none, draft or signed"})
    signed_at = fields.DateTime(allow_none=True)


class ReferralSchema(DumpSchema):
    id = fields.UUID()
    status = fields.Enum(ReferralStatus, by_value=True)
    organization_id = fields.UUID()
    patient_id = fields.UUID()
    accession_number = fields.String(metadata={
        "description": "the case's DICOM accession number (at most 16 characters, unique within the practice); "
                       "imaging software files images into the case by it"})
    study_instance_uid = fields.String(metadata={"description": "the DICOM Study Instance UID of the case"})
    referring_provider_id = fields.UUID()
    specialty = fields.Enum(Specialty, by_value=True)
    reason = fields.String()
    reason_code = fields.String(allow_none=True)
    teeth = Teeth()
    urgency = fields.Enum(Urgency, by_value=True)
    due_at = fields.DateTime()
    mode = fields.Enum(Mode, by_value=True)
    scope = fields.Enum(Scope, by_value=True)
    question = fields.Nested(QuestionSchema, metadata={"description": "what the referring dentist asks the reader"})
    place_of_service = fields.String()
    target_provider_id = fields.UUID(allow_none=True)
    assigned_provider_id = fields.UUID(allow_none=True)
    consent = fields.Nested(ConsentDumpSchema, allow_none=True)
    submitted_at = fields.DateTime(allow_none=True)
    accepted_at = fields.DateTime(allow_none=True)
    overdue = fields.Function(lambda r: is_overdue(r))
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class ReferralEventSchema(DumpSchema):
    id = fields.UUID()
    at = fields.DateTime()
    action = fields.String()
    from_status = fields.String()
    to_status = fields.String()
    actor_user_id = fields.UUID(allow_none=True)
    provider_id = fields.UUID(allow_none=True)
    reason = fields.String(allow_none=True)


class PatientSummarySchema(PatientSchema):
    """The patient as a reader needs them on the case, without coverage."""

    class Meta:
        exclude = ("coverage", "organization_id", "created_at")


class ReferralDetailSchema(ReferralSchema):
    patient = fields.Nested(PatientSummarySchema)
    images = fields.List(fields.Nested(ImageSchema))
    events = fields.List(fields.Nested(ReferralEventSchema))
    report = fields.Nested(ReportStateSchema)


class ReferralStateSchema(DumpSchema):
    id = fields.UUID()
    status = fields.Enum(ReferralStatus, by_value=True)


class ReferralListQuerySchema(PageQuerySchema):
    view = fields.String(validate=one_of(["inbox", "sent"]), metadata={
        "description": "inbox: cases assigned to you as reader (default for specialists); sent: your practice's"})
    status = StatusList(ReferralStatus.values(), metadata={"description": "one status or a comma-separated list"})
    urgency = fields.String(validate=one_of(Urgency.values()))
    overdue = fields.Boolean()
    q = Text(100, min_length=0, metadata={
        "description": "search: the start of the patient's last or first name (or \"Last, First\"), a tooth the "
                       "case names (19, #19, A) or the start of the accession number"})


class DeclineSchema(LoadSchema):
    reason = Text(1000, required=True)


class RetakeRequestSchema(LoadSchema):
    image_ids = fields.List(fields.UUID(), required=True, validate=validate.Length(min=1, max=100))
    reason = Text(1000, required=True, metadata={"description": "e.g. apex cut off, cone cut, movement"})


class CancelSchema(LoadSchema):
    reason = Text(1000, allow_none=True)


class ReferralPageSchema(PageSchema):
    items = fields.List(fields.Nested(ReferralSchema))
