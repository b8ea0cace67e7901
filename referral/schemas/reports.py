from __future__ import annotations

from marshmallow import fields, validate

from referral.models.reports import DiagnosticQuality, ReportStatus
from referral.schemas.common import DumpSchema, LoadSchema, Text, one_of


class FindingSchema(LoadSchema):
    image_id = fields.UUID(required=True)
    crown = Text(2000, allow_none=True)
    roots = Text(2000, allow_none=True)
    pdl_space = Text(2000, allow_none=True)
    lamina_dura = Text(2000, allow_none=True)
    periapical_area = Text(2000, allow_none=True)
    bone_levels = Text(2000, allow_none=True)
    other = Text(2000, allow_none=True)
    diagnostic_quality = fields.String(load_default=DiagnosticQuality.ADEQUATE.value,
                                       validate=one_of(DiagnosticQuality.values()))


class ReportDraftSchema(LoadSchema):
    findings = fields.List(fields.Nested(FindingSchema), load_default=list, validate=validate.Length(max=200))
    impression = Text(5000, allow_none=True)
    recommendation = Text(5000, allow_none=True)
    answer = Text(5000, allow_none=True, metadata={"description": "your answer to the referring dentist's question"})
    evaluation_performed = fields.Boolean(load_default=False)


class AddendumCreateSchema(LoadSchema):
    text = Text(5000, required=True)


class FindingDumpSchema(DumpSchema):
    image_id = fields.String()
    crown = fields.String(allow_none=True)
    roots = fields.String(allow_none=True)
    pdl_space = fields.String(allow_none=True)
    lamina_dura = fields.String(allow_none=True)
    periapical_area = fields.String(allow_none=True)
    bone_levels = fields.String(allow_none=True)
    other = fields.String(allow_none=True)
    diagnostic_quality = fields.String()


class AddendumSchema(DumpSchema):
    id = fields.UUID()
    text = fields.String()
    provider_id = fields.UUID()
    signed_by_user_id = fields.UUID()
    signed_at = fields.DateTime()
    content_sha256 = fields.String()


class ReportSchema(DumpSchema):
    id = fields.UUID()
    referral_id = fields.UUID()
    status = fields.Enum(ReportStatus, by_value=True)
    reader_provider_id = fields.UUID()
    findings = fields.List(fields.Nested(FindingDumpSchema))
    impression = fields.String(allow_none=True)
    recommendation = fields.String(allow_none=True)
    answer = fields.String(allow_none=True, metadata={"description": "the answer to the referring dentist's question"})
    evaluation_performed = fields.Boolean()
    signed_at = fields.DateTime(allow_none=True)
    signed_by_user_id = fields.UUID(allow_none=True)
    content_sha256 = fields.String(allow_none=True)
    addenda = fields.List(fields.Nested(AddendumSchema))
    nondiagnostic_image_ids = fields.Function(
        lambda report: [f["image_id"] for f in report.findings if f.get("diagnostic_quality") == "nondiagnostic"],
        metadata={"description": "images judged not of diagnostic quality: not billed; ask for a retake"},
    )
