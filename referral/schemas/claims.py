from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, post_load, validate, validates_schema

from referral.schemas.common import DumpSchema, LoadSchema, PageQuerySchema, PageSchema, StatusList

_CDT = re.compile(r"^D[0-9]{4}$")
# The claim life cycle: the engine sets hold (an edit of severity hold stands) or ready; exports, acknowledgements,
# remittances and billing staff move it on from there.
CLAIM_STATUSES = ("ready", "hold", "submitted", "accepted", "rejected", "paid", "partially_paid", "denied",
                  "appealed", "corrected", "closed")
NARRATIVE_LIMIT = 80


class FeeScheduleSchema(Schema):
    """The body is the schedule itself: ``{"D0707": 45.00, "D0391": 60}``."""

    class Meta:
        unknown = INCLUDE

    @validates_schema
    def _entries(self, data: dict[str, Any], **_kwargs: Any) -> None:
        errors: dict[str, list[str]] = {}
        if len(data) > 1000:
            raise ValidationError("At most 1000 codes.")
        for code, amount in data.items():
            if not isinstance(code, str) or not _CDT.match(code):
                errors[str(code)[:20]] = ["Not a CDT code number like D0707."]
                continue
            if isinstance(amount, bool) or not isinstance(amount, int | float | str):
                errors[code] = ["Give the fee as a number."]
                continue
            try:
                value = Decimal(str(amount))
            except InvalidOperation:
                errors[code] = ["Give the fee as a number."]
                continue
            if not value.is_finite() or value < 0 or value > Decimal("99999999.99") or value != value.quantize(
                    Decimal("0.01")):
                errors[code] = ["A fee is zero or more, in dollars and cents."]
        if errors:
            raise ValidationError(errors)

    @post_load
    def _to_decimals(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Decimal]:
        return {code: Decimal(str(amount)).quantize(Decimal("0.01")) for code, amount in data.items()}


class FeeScheduleDumpSchema(Schema):
    class Meta:
        unknown = INCLUDE


# Amounts travel as decimal strings ("105.00") so no client rounds them through a float.
MONEY = {"type": "string", "format": "decimal", "example": "105.00"}


class ClaimLineSchema(DumpSchema):
    number = fields.Integer()
    code = fields.String()
    tooth = fields.String(allow_none=True)
    teeth = fields.List(fields.String())
    area = fields.String(allow_none=True)
    surfaces = fields.String(allow_none=True)
    quantity = fields.Integer()
    fee = fields.Decimal(as_string=True, metadata=MONEY)
    date_of_service = fields.Date()
    control_number = fields.String()
    explanation = fields.String()
    rule = fields.String()
    image_ids = fields.List(fields.String())
    place_of_service = fields.String(allow_none=True, metadata={
        "description": "where this line was performed when that differs from the claim's place; null: the claim's"})
    date_basis = fields.String(allow_none=True, metadata={
        "description": "what the line's date is: capture (images taken), reading (report signed) or visit"})


class ClaimEditSchema(DumpSchema):
    severity = fields.String()
    rule = fields.String()
    message = fields.String()
    line_numbers = fields.List(fields.Integer())


class ClaimEventSchema(DumpSchema):
    when = fields.DateTime(attribute="created_at")
    who = fields.String(attribute="actor_label", metadata={"description": "who made the change: a user's e-mail, "
                                                                          "or the system"})
    user_id = fields.UUID(attribute="actor_user_id", allow_none=True)
    from_status = fields.String(data_key="from", allow_none=True,
                                metadata={"description": "the status before; null for the claim's first event"})
    to_status = fields.String(data_key="to", metadata={"description": "the status after (the same for a note)"})
    note = fields.String()


class ClaimSchema(DumpSchema):
    id = fields.UUID()
    referral_id = fields.UUID()
    billing_organization_id = fields.UUID()
    billing_npi = fields.Function(lambda claim: claim.billing_organization.npi)
    billing_tax_id = fields.Function(lambda claim: claim.billing_organization.tax_id)
    role = fields.String(metadata={"description": "capture, interpretation or single"})
    rendering_provider_id = fields.UUID()
    rendering_npi = fields.Function(lambda claim: claim.rendering_provider.npi)
    rendering_taxonomy = fields.Function(lambda claim: claim.rendering_provider.taxonomy)
    referring_provider_id = fields.UUID(allow_none=True)
    referring_npi = fields.Function(lambda claim: claim.referring_provider.npi if claim.referring_provider else None)
    place_of_service = fields.String()
    date_of_service = fields.Date()
    payer_id = fields.String(allow_none=True)
    payer_name = fields.String(allow_none=True)
    payer_profile = fields.String()
    frequency = fields.String(metadata={"description": "1 original, 7 replacement, 8 void"})
    original_claim_id = fields.UUID(allow_none=True,
                                    metadata={"description": "the claim this one replaces or voids"})
    original_payer_claim_number = fields.String(
        allow_none=True, metadata={"description": "the payer's number of the claim replaced or voided (REF*F8)"})
    total = fields.Decimal(as_string=True, metadata=MONEY)
    status = fields.String(metadata={"description": "life-cycle state: " + ", ".join(CLAIM_STATUSES)})
    generation = fields.Integer()
    narrative = fields.String(allow_none=True, metadata={"description": "the claim note the 837D carries (NTE)"})
    narrative_edited = fields.Boolean(metadata={"description": "billing wrote the narrative"})
    patient_control_number = fields.String(allow_none=True, metadata={
        "description": "CLM01 as sent; the payer's 277CA and 835 answer with it"})
    payer_claim_number = fields.String(allow_none=True, metadata={"description": "the payer's claim number"})
    submitted_at = fields.DateTime(allow_none=True)
    lines = fields.List(fields.Nested(ClaimLineSchema))
    edits = fields.List(fields.Nested(ClaimEditSchema))
    events = fields.List(fields.Nested(ClaimEventSchema), metadata={"description": "every status change, oldest first"})


class ClaimListSchema(DumpSchema):
    claims = fields.List(fields.Nested(ClaimSchema))


class ClaimListQuerySchema(PageQuerySchema):
    status = StatusList(CLAIM_STATUSES, metadata={"description": "one status or several, comma-separated"})
    referral_id = fields.UUID(metadata={"description": "only the claims of this referral"})


class ClaimPageSchema(PageSchema):
    items = fields.List(fields.Nested(ClaimSchema))


class NarrativeSchema(LoadSchema):
    narrative = fields.String(required=True, validate=validate.Length(min=1, max=1000), metadata={
        "description": f"the claim note; at most {NARRATIVE_LIMIT} characters once written for the 837D"})


class ClaimBatchRequestSchema(LoadSchema):
    claim_ids = fields.List(fields.UUID(), required=True, validate=validate.Length(min=1, max=500))


class ClaimBatchSchema(DumpSchema):
    id = fields.UUID()
    control_number = fields.Integer(metadata={"description": "the practice's interchange control number"})
    payer_id = fields.String()
    claim_ids = fields.List(fields.String())
    created_at = fields.DateTime()
    interchange = fields.String(metadata={"description": "the 837D file"})


class AdjustmentSchema(DumpSchema):
    group = fields.String()
    reason = fields.String()
    amount = fields.String(metadata=MONEY)
    explanation = fields.String()
    next_step = fields.String()


class RemittanceLineSchema(DumpSchema):
    claim_line_id = fields.UUID(allow_none=True)
    control_number = fields.String(allow_none=True)
    code = fields.String()
    submitted_code = fields.String(allow_none=True)
    charge = fields.Decimal(as_string=True, metadata=MONEY)
    paid = fields.Decimal(as_string=True, metadata=MONEY)
    adjustments = fields.List(fields.Nested(AdjustmentSchema))
    remarks = fields.List(fields.String())


class RemittanceClaimSchema(DumpSchema):
    claim_id = fields.UUID()
    status = fields.String()
    status_code = fields.String()
    charge = fields.Decimal(as_string=True, metadata=MONEY)
    paid = fields.Decimal(as_string=True, metadata=MONEY)
    patient_share = fields.Decimal(as_string=True, allow_none=True, metadata=MONEY)
    payer_claim_number = fields.String(allow_none=True)
    reversed = fields.Boolean()
    adjustments = fields.List(fields.Nested(AdjustmentSchema))
    lines = fields.List(fields.Nested(RemittanceLineSchema))


class RemittanceSchema(DumpSchema):
    id = fields.UUID()
    payer = fields.String(allow_none=True)
    payer_id = fields.String(allow_none=True)
    trace_number = fields.String()
    paid_total = fields.Decimal(as_string=True, metadata=MONEY)
    payment_date = fields.Date(allow_none=True)
    created_at = fields.DateTime()
    claims = fields.List(fields.Nested(RemittanceClaimSchema))
    unmatched = fields.List(fields.Dict())


class AcknowledgementSchema(DumpSchema):
    id = fields.UUID()
    kind = fields.String(metadata={"description": "999 or 277CA"})
    created_at = fields.DateTime()
    results = fields.List(fields.Dict(), metadata={"description": "per claim: claim_id, outcome, status, reasons"})
    unmatched = fields.List(fields.Dict())
