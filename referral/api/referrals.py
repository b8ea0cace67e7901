from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from referral.api.context import current_actor, db_session
from referral.schemas.referrals import (
    ReferralCreateSchema,
    ReferralDetailSchema,
    ReferralListQuerySchema,
    ReferralPageSchema,
)
from referral.services import referrals

blp = Blueprint("referrals", __name__, description="Referrals from a capturing office to a reader")


@blp.route("/referrals")
class Referrals(MethodView):
    @blp.arguments(ReferralCreateSchema)
    @blp.response(201, ReferralDetailSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Open a referral as a draft (staff, dentist)"""
        return referrals.create_referral(db_session(), current_actor(), data)

    @blp.arguments(ReferralListQuerySchema, location="query")
    @blp.response(200, ReferralPageSchema)
    def get(self, query: dict[str, Any]) -> Any:
        """Referrals the caller may see, newest first, a page at a time"""
        items, next_cursor = referrals.list_referrals(
            db_session(), current_actor(), query.get("status"), query.get("cursor"), query.get("limit")
        )
        return {"items": items, "next_cursor": next_cursor}


@blp.route("/referrals/<uuid:referral_id>")
class ReferralById(MethodView):
    @blp.response(200, ReferralDetailSchema)
    def get(self, referral_id: uuid.UUID) -> Any:
        """One referral with its images and report state (audited)"""
        return referrals.read_referral(db_session(), current_actor(), referral_id)
