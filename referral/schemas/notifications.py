from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validates_schema

from referral.schemas.common import DumpSchema, LoadSchema
from referral.services.notifications import KINDS_BY_NAME


def _choice(name: str, **kwargs: Any) -> fields.Boolean:
    kind = KINDS_BY_NAME[name]
    default = "on" if kind.default else "off"
    return fields.Boolean(metadata={"description": f"email when {kind.description} (default {default})"}, **kwargs)


class NotificationPreferencesUpdateSchema(LoadSchema):
    """The emails to turn on (true) or off (false); choices left out keep their value."""

    routed = _choice("routed")
    report_signed = _choice("report_signed")
    retake_requested = _choice("retake_requested")
    declined = _choice("declined")
    message = _choice("message")
    access_alerts = _choice("access_alerts")

    @validates_schema
    def _not_empty(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if not data:
            raise ValidationError("Choose at least one email to turn on or off.")


class EmailChoicesSchema(DumpSchema):
    routed = _choice("routed")
    report_signed = _choice("report_signed")
    retake_requested = _choice("retake_requested")
    declined = _choice("declined")
    message = _choice("message")
    access_alerts = _choice("access_alerts")


class NotificationPreferencesSchema(DumpSchema):
    email = fields.Nested(EmailChoicesSchema)
    email_enabled = fields.Boolean(metadata={"description": "whether this server sends email at all (SMTP_URL set)"})
