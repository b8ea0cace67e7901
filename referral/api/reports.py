from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView

from referral.api.parsing import Blueprint
from referral.http.context import current_actor, db_session
from referral.schemas.reports import AddendumCreateSchema, AddendumSchema, ReportDraftSchema, ReportSchema
from referral.services import reports

blp = Blueprint("reports", __name__, description="Interpretation reports, signed by the reader")


@blp.route("/referrals/<uuid:referral_id>/report")
class ReferralReport(MethodView):
    @blp.response(200, ReportSchema)
    def get(self, referral_id: uuid.UUID) -> Any:
        """The report: signed for both sides, a draft only for its reader (audited)"""
        return reports.read_report(db_session(), current_actor(), referral_id)

    @blp.arguments(ReportDraftSchema)
    @blp.response(200, ReportSchema)
    def put(self, data: dict[str, Any], referral_id: uuid.UUID) -> Any:
        """Write or replace the draft (the assigned reader, once the case is accepted)"""
        return reports.draft(db_session(), current_actor(), referral_id, data)


@blp.route("/referrals/<uuid:referral_id>/report/sign", methods=["POST"])
@blp.response(200, ReportSchema)
def sign(referral_id: uuid.UUID) -> Any:
    """Sign the report; the referral becomes reported and the report never changes again"""
    return reports.sign(db_session(), current_actor(), referral_id)


@blp.route("/referrals/<uuid:referral_id>/report/addenda", methods=["POST"])
@blp.arguments(AddendumCreateSchema)
@blp.response(201, AddendumSchema)
def add_addendum(data: dict[str, Any], referral_id: uuid.UUID) -> Any:
    """Add a signed correction to a signed report (the reader)"""
    return reports.add_addendum(db_session(), current_actor(), referral_id, data["text"])
