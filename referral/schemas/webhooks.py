from __future__ import annotations

from marshmallow import fields, validate

from referral.models import DeliveryStatus
from referral.schemas.common import DumpSchema, LoadSchema, PageQuerySchema, PageSchema, one_of
from referral.services.outbox import EVENT_TYPES


class WebhookCreateSchema(LoadSchema):
    url = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    events = fields.List(
        fields.String(validate=one_of(list(EVENT_TYPES))),
        required=True,
        validate=validate.Length(min=1, max=len(EVENT_TYPES) * 2),
    )
    # Printable ASCII only, so the key bytes are the same whatever language the receiver is written in.
    secret = fields.String(
        required=True,
        load_only=True,
        validate=[
            validate.Length(min=32, max=256),
            validate.Regexp(r"^[\x20-\x7e]+\Z", error="Use printable ASCII characters only."),
        ],
        metadata={"description": "HMAC-SHA256 key, 32-256 printable ASCII characters; never shown again"},
    )


class WebhookSchema(DumpSchema):
    id = fields.UUID()
    url = fields.String()
    events = fields.List(fields.String(), attribute="event_types")
    active = fields.Boolean()
    created_at = fields.DateTime()


class WebhookListSchema(DumpSchema):
    items = fields.List(fields.Nested(WebhookSchema))


class DeliveryQuerySchema(PageQuerySchema):
    status = fields.String(validate=one_of(DeliveryStatus.values()))


class DeliverySchema(DumpSchema):
    id = fields.UUID()
    event_id = fields.UUID()
    event_type = fields.String()
    status = fields.Enum(DeliveryStatus, by_value=True)
    attempts = fields.Integer()
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    next_attempt_at = fields.DateTime(allow_none=True)
    delivered_at = fields.DateTime(allow_none=True)


class DeliveryPageSchema(PageSchema):
    items = fields.List(fields.Nested(DeliverySchema))
