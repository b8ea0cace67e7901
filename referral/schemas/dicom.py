from __future__ import annotations

from marshmallow import fields, validate

from referral.schemas.common import DumpSchema, LoadSchema, Text


class DicomDeviceCreateSchema(LoadSchema):
    ae_title = fields.String(required=True, validate=validate.Length(min=1, max=64), metadata={
        "description": "the calling AE title the device presents (at most 16 characters, no backslash or control "
                       "characters; surrounding spaces are ignored); unique across the server"})
    host = fields.String(allow_none=True, validate=validate.Length(min=1, max=255), metadata={
        "description": "IP address or host name the device connects from; associations from any other address "
                       "are refused. Omit to accept the AE title from any address"})
    description = Text(200, required=True, metadata={"description": "e.g. Operatory 2 sensor"})


class DicomDeviceSchema(DumpSchema):
    id = fields.UUID()
    organization_id = fields.UUID()
    ae_title = fields.String()
    host = fields.String(allow_none=True)
    description = fields.String()
    created_at = fields.DateTime()


class DicomDeviceListSchema(DumpSchema):
    items = fields.List(fields.Nested(DicomDeviceSchema))
