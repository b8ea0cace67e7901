from __future__ import annotations

from marshmallow import fields

from referral.schemas.common import DumpSchema, LoadSchema


class TurnaroundQuerySchema(LoadSchema):
    first = fields.Date(data_key="from", metadata={"description": "first day sent, YYYY-MM-DD (default: 30 days "
                                                                  "before 'to')"})
    last = fields.Date(data_key="to", metadata={"description": "last day sent, YYYY-MM-DD, included (default: today)"})


class TurnaroundFiguresSchema(DumpSchema):
    sent = fields.Integer(metadata={"description": "cases sent in the period"})
    accepted = fields.Integer()
    reported = fields.Integer(metadata={"description": "cases with a signed report"})
    median_hours_to_accept = fields.Float(allow_none=True)
    mean_hours_to_accept = fields.Float(allow_none=True)
    median_hours_to_report = fields.Float(allow_none=True)
    mean_hours_to_report = fields.Float(allow_none=True)
    overdue = fields.Integer(metadata={"description": "signed after the response deadline, or still open past it"})
    overdue_open = fields.Integer(metadata={"description": "still open past the response deadline"})


class PracticeTurnaroundSchema(TurnaroundFiguresSchema):
    organization_id = fields.UUID()
    name = fields.String()


class ReaderTurnaroundSchema(TurnaroundFiguresSchema):
    provider_id = fields.UUID(allow_none=True, metadata={"description": "null for cases no reader has taken"})
    name = fields.String()
    organization_id = fields.UUID(allow_none=True)


class TurnaroundSchema(DumpSchema):
    first = fields.Date(data_key="from")
    last = fields.Date(data_key="to")
    time_zone = fields.String(metadata={"description": "the zone whose days 'from' and 'to' are"})
    totals = fields.Nested(TurnaroundFiguresSchema)
    by_practice = fields.List(fields.Nested(PracticeTurnaroundSchema))
    by_reader = fields.List(fields.Nested(ReaderTurnaroundSchema))
