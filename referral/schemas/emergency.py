from __future__ import annotations

from marshmallow import fields

from referral.models import EmergencyAccess
from referral.schemas.common import DumpSchema, LoadSchema, PageQuerySchema, PageSchema, Text
from referral.services.emergency import REASON_MAX_LENGTH, REASON_MIN_LENGTH, is_active
from referral.services.notices import KINDS


class EmergencyAccessRequestSchema(LoadSchema):
    reason = Text(REASON_MAX_LENGTH, min_length=REASON_MIN_LENGTH, required=True,
                  metadata={"description": f"why you need the case now ({REASON_MIN_LENGTH} to {REASON_MAX_LENGTH} "
                                           "characters); shown to the practices' org admins"})


class EmergencyAccessSchema(DumpSchema):
    id = fields.UUID()
    referral_id = fields.UUID()
    user_id = fields.UUID()
    organization_id = fields.UUID(metadata={"description": "the practice of the person given access"})
    case_organization_id = fields.UUID(metadata={"description": "the practice that referred the case"})
    reason = fields.String()
    starts_at = fields.DateTime()
    expires_at = fields.DateTime()
    active = fields.Method("_active", metadata={"description": "whether the grant is in force now"})

    def _active(self, grant: EmergencyAccess) -> bool:
        return is_active(grant)


class EmergencyAccessQuerySchema(PageQuerySchema):
    active = fields.Boolean(load_default=True, metadata={"description": "only grants in force now (default true)"})
    referral_id = fields.UUID()


class EmergencyAccessPageSchema(PageSchema):
    items = fields.List(fields.Nested(EmergencyAccessSchema))


class NoticeQuerySchema(PageQuerySchema):
    unread = fields.Boolean(load_default=False, metadata={"description": "only notices not yet marked read"})


class NoticeSchema(DumpSchema):
    id = fields.UUID()
    kind = fields.String(metadata={"description": f"one of {', '.join(KINDS)}"})
    organization_id = fields.UUID()
    actor_user_id = fields.UUID(allow_none=True)
    subject_user_id = fields.UUID(allow_none=True)
    referral_id = fields.UUID(allow_none=True)
    grant_id = fields.UUID(allow_none=True)
    details = fields.Dict(allow_none=True)
    created_at = fields.DateTime()
    read_at = fields.DateTime(allow_none=True)


class NoticePageSchema(PageSchema):
    items = fields.List(fields.Nested(NoticeSchema))


class NoticesReadSchema(DumpSchema):
    marked = fields.Integer(metadata={"description": "how many notices were unread"})
