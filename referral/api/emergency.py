from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView

from referral.api.parsing import Blueprint
from referral.http.context import current_actor, db_session, settings
from referral.schemas.emergency import (
    EmergencyAccessPageSchema,
    EmergencyAccessQuerySchema,
    EmergencyAccessRequestSchema,
    EmergencyAccessSchema,
)
from referral.services import emergency

blp = Blueprint("emergency_access", __name__,
                description="Emergency (break-glass) access to a case, time-limited, audited and notified")


@blp.route("/referrals/<uuid:referral_id>/emergency-access", methods=["POST"])
@blp.arguments(EmergencyAccessRequestSchema)
@blp.response(201, EmergencyAccessSchema)
def open_case(data: dict[str, Any], referral_id: uuid.UUID) -> Any:
    """Open a case routed to your practice that you are not assigned to, for EMERGENCY_ACCESS_MINUTES, stating
    why (dentist, specialist; reads during it are audited and flagged, the admins are notified)"""
    return emergency.open_case(db_session(), current_actor(), referral_id, data["reason"],
                               minutes=settings().emergency_access_minutes)


@blp.route("/emergency-access")
class EmergencyAccessGrants(MethodView):
    @blp.arguments(EmergencyAccessQuerySchema, location="query")
    @blp.response(200, EmergencyAccessPageSchema)
    def get(self, query: dict[str, Any]) -> Any:
        """Emergency access grants in force (or all with active=false): an org admin's practice's members' and
        those on its cases; a dentist's or specialist's own"""
        items, next_cursor = emergency.list_grants(db_session(), current_actor(), active_only=query["active"],
                                                   referral_id=query.get("referral_id"), cursor=query.get("cursor"),
                                                   limit=query.get("limit"))
        return {"items": items, "next_cursor": next_cursor}
