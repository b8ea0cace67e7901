from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, post_load, validates_schema

from referral.schemas.common import DumpSchema, PageQuerySchema, PageSchema, StatusList

_CDT = re.compile(r"^D[0-9]{4}$")
# What the claims engine sets: hold while an edit of severity hold stands, ready otherwise.
CLAIM_STATUSES = ("ready", "hold")


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


class ClaimEditSchema(DumpSchema):
    severity = fields.String()
    rule = fields.String()
    message = fields.String()
    line_numbers = fields.List(fields.Integer())


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
    frequency = fields.String()
    total = fields.Decimal(as_string=True, metadata=MONEY)
    status = fields.String(metadata={"description": "ready, or hold while an edit blocks it"})
    generation = fields.Integer()
    lines = fields.List(fields.Nested(ClaimLineSchema))
    edits = fields.List(fields.Nested(ClaimEditSchema))


class ClaimListSchema(DumpSchema):
    claims = fields.List(fields.Nested(ClaimSchema))


class ClaimListQuerySchema(PageQuerySchema):
    status = StatusList(CLAIM_STATUSES, metadata={"description": "ready or hold, or both comma-separated"})
    referral_id = fields.UUID(metadata={"description": "only the claims of this referral"})


class ClaimPageSchema(PageSchema):
    items = fields.List(fields.Nested(ClaimSchema))
