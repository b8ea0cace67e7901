from __future__ import annotations

from typing import Any

from referral.api.parsing import Blueprint
from referral.http.context import current_actor, db_session
from referral.schemas.turnaround import TurnaroundQuerySchema, TurnaroundSchema
from referral.services import turnaround

blp = Blueprint("turnaround", __name__, description="How fast cases come back, for organization admins")


@blp.route("/reports/turnaround", methods=["GET"])
@blp.arguments(TurnaroundQuerySchema, location="query")
@blp.response(200, TurnaroundSchema)
def get_turnaround(query: dict[str, Any]) -> Any:
    """Time from sending to acceptance and to signed report, and overdue counts, per practice and per reader (org
    admin)"""
    return turnaround.turnaround(db_session(), current_actor(), query.get("first"), query.get("last"))
