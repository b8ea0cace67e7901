from __future__ import annotations

from marshmallow import fields

from referral.schemas.common import DumpSchema, LoadSchema, Text
from referral.services.messages import MAX_BODY


class MessageCreateSchema(LoadSchema):
    body = Text(MAX_BODY, required=True, metadata={"description": f"plain text, 1 to {MAX_BODY} characters"})
    image_id = fields.UUID(allow_none=True, metadata={"description": "an image of this case the message is about"})


class MessageAuthorSchema(DumpSchema):
    user_id = fields.UUID()
    name = fields.String(metadata={"description": "the provider's name, or the role of a user without one"})
    role = fields.String()
    organization_id = fields.UUID(allow_none=True)
    practice = fields.String(allow_none=True)


class MessageSchema(DumpSchema):
    id = fields.UUID()
    author = fields.Nested(MessageAuthorSchema)
    created_at = fields.DateTime()
    body = fields.String()
    image_id = fields.UUID(allow_none=True)


class ConversationSchema(DumpSchema):
    items = fields.List(fields.Nested(MessageSchema), metadata={"description": "oldest first"})
    unread = fields.Integer(metadata={"description": "messages by others not yet marked read by you"})
    read_at = fields.DateTime(allow_none=True, metadata={"description": "when you last marked the case read"})


class ReadMarkSchema(DumpSchema):
    referral_id = fields.UUID()
    read_at = fields.DateTime()
    unread = fields.Integer()
