from __future__ import annotations

from marshmallow import fields

from referral.schemas.common import DumpSchema, LoadSchema, Text
from referral.services.phrases import MAX_TEXT


class PhraseCreateSchema(LoadSchema):
    text = Text(MAX_TEXT, required=True, metadata={"description": f"plain text, 1 to {MAX_TEXT} characters"})


class PhraseSchema(DumpSchema):
    id = fields.UUID()
    text = fields.String()
    created_at = fields.DateTime()


class PhraseListSchema(DumpSchema):
    items = fields.List(fields.Nested(PhraseSchema))
