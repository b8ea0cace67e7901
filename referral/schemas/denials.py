from __future__ import annotations

from marshmallow import fields, validate

from referral.schemas.claims import MONEY
from referral.schemas.common import DumpSchema, LoadSchema, Text


class DenialAdjustmentSchema(DumpSchema):
    group = fields.String(metadata={"description": "CO, PR, PI or OA"})
    reason = fields.String(metadata={"description": "the claim adjustment reason code"})
    amount = fields.String(metadata=MONEY)
    explanation = fields.String(metadata={"description": "what the group and code mean, in plain words"})


class DenialRemarkSchema(DumpSchema):
    code = fields.String()
    meaning = fields.String()


class DenialSchema(DumpSchema):
    claim_id = fields.UUID()
    claim_status = fields.String()
    patient = fields.String(metadata={"description": "Last, First"})
    payer_name = fields.String(allow_none=True)
    payer_claim_number = fields.String(allow_none=True, metadata={"description": "835 CLP07"})
    remittance_id = fields.UUID()
    trace_number = fields.String()
    date_of_service = fields.Date()
    line_number = fields.Integer(allow_none=True, metadata={"description": "None: the whole claim was denied"})
    code = fields.String(allow_none=True)
    tooth = fields.String(allow_none=True)
    charge = fields.Decimal(as_string=True, metadata=MONEY)
    paid = fields.Decimal(as_string=True, metadata=MONEY)
    denied = fields.Boolean(metadata={"description": "true when nothing was paid for the line"})
    adjustments = fields.List(fields.Nested(DenialAdjustmentSchema))
    remarks = fields.List(fields.Nested(DenialRemarkSchema))
    reason = fields.String(metadata={"description": "why the payer did not pay, in plain words"})
    action = fields.String(metadata={"description": "send_attachment, review_history, fix_field, resubmit, "
                                                    "check_coverage, check_provider, other_payer, appeal, review"})
    next_step = fields.String()
    field = fields.String(allow_none=True, metadata={"description": "for fix_field: what to correct"})


class DenialListSchema(DumpSchema):
    items = fields.List(fields.Nested(DenialSchema))


class CorrectionSchema(LoadSchema):
    frequency = fields.String(required=True, validate=validate.OneOf(["7", "8"], error="Must be 7 (replacement) "
                                                                                       "or 8 (void)."))
    payer_claim_number = Text(50, metadata={"description": "the payer's claim number (835 CLP07); defaults to "
                                                           "the one on file"})
    note = Text(500, metadata={"description": "why, kept with the claim's events"})


class AppealSchema(LoadSchema):
    note = Text(500, metadata={"description": "kept with the claim's appealed event"})
