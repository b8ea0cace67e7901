from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates

from referral.models.enums import (
    ConsentGivenBy,
    ConsentMethod,
    Mode,
    ReferralStatus,
    Scope,
    Specialty,
    Urgency,
)
from referral.schemas.common import (
    DumpSchema,
    LoadSchema,
    PageQuerySchema,
    PageSchema,
    PastDateTime,
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
    given_at = PastDateTime(required=True)


class ReferralCreateSchema(LoadSchema):
    patient_id = fields.UUID(required=True)
    referring_provider_id = fields.UUID(required=True)
    specialty = fields.String(required=True, validate=one_of(Specialty.values()))
    reason = Text(2000, required=True)
    teeth = Teeth(load_default=list)
    urgency = fields.String(required=True, validate=one_of(Urgency.values()))
    mode = fields.String(required=True, validate=one_of(Mode.values()))
    scope = fields.String(load_default=Scope.EVALUATE_ONLY.value, validate=one_of(Scope.values()))
    target_provider_id = fields.UUID(allow_none=True)
    place_of_service = fields.String(load_default="11")
    consent = fields.Nested(ConsentSchema, allow_none=True)

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


class ReportStateSchema(DumpSchema):
    status = fields.String(metadata={"description": "none, draft or signed"})
    signed_at = fields.DateTime(allow_none=True)


class ReferralSchema(DumpSchema):
    id = fields.UUID()
    status = fields.Enum(ReferralStatus, by_value=True)
    organization_id = fields.UUID()
    patient_id = fields.UUID()
    referring_provider_id = fields.UUID()
    specialty = fields.Enum(Specialty, by_value=True)
    reason = fields.String()
    teeth = Teeth()
    urgency = fields.Enum(Urgency, by_value=True)
    due_at = fields.DateTime()
    mode = fields.Enum(Mode, by_value=True)
    scope = fields.Enum(Scope, by_value=True)
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


class DeclineSchema(LoadSchema):
    reason = Text(1000, required=True)


class RetakeRequestSchema(LoadSchema):
    image_ids = fields.List(fields.UUID(), required=True, validate=validate.Length(min=1, max=100))
    reason = Text(1000, required=True, metadata={"description": "e.g. apex cut off, cone cut, movement"})


class CancelSchema(LoadSchema):
    reason = Text(1000, allow_none=True)


class ReferralPageSchema(PageSchema):
    items = fields.List(fields.Nested(ReferralSchema))
