from __future__ import annotations

from marshmallow import fields

from referral.schemas.common import DumpSchema, PageQuerySchema, PageSchema


class AuditQuerySchema(PageQuerySchema):
    referral_id = fields.UUID()
    user_id = fields.UUID(metadata={"description": "who acted"})
    since = fields.AwareDateTime(metadata={"description": "from this time (inclusive), ISO 8601 with offset"})
    until = fields.AwareDateTime(metadata={"description": "before this time, ISO 8601 with offset"})
    emergency = fields.Boolean(metadata={"description": "true: only rows of reads made through emergency access; "
                                                        "false: only the others"})


class AuditEventSchema(DumpSchema):
    id = fields.UUID()
    at = fields.DateTime()
    actor_user_id = fields.UUID(allow_none=True)
    actor_organization_id = fields.UUID(allow_none=True)
    organization_id = fields.UUID(allow_none=True)
    action = fields.String()
    outcome = fields.String()
    object_type = fields.String()
    object_id = fields.UUID(allow_none=True)
    referral_id = fields.UUID(allow_none=True)
    ip_address = fields.String(allow_none=True)
    user_agent = fields.String(allow_none=True)
    details = fields.Dict(allow_none=True)
    emergency_access_id = fields.UUID(allow_none=True, metadata={
        "description": "the emergency access grant the actor reached the case through, if any"})


class AuditPageSchema(PageSchema):
    items = fields.List(fields.Nested(AuditEventSchema))
