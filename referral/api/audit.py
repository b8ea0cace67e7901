from __future__ import annotations

from typing import Any

from flask.views import MethodView

from referral.api.parsing import Blueprint
from referral.http.context import current_actor, db_session
from referral.models import AuditEvent
from referral.models.enums import Role
from referral.schemas.audit import AuditPageSchema, AuditQuerySchema
from referral.services import access, audit
from referral.services.pagination import page

blp = Blueprint("audit", __name__, description="Audit trail, for organization admins")


@blp.route("/audit-events")
class AuditEvents(MethodView):
    @blp.arguments(AuditQuerySchema, location="query")
    @blp.response(200, AuditPageSchema)
    def get(self, query: dict[str, Any]) -> Any:
        """Who did what to which record, when and from where"""
        actor = current_actor()
        access.require_role(actor, Role.ORG_ADMIN, Role.ADMIN)
        events = audit.visible_events(actor, query.get("referral_id"), query.get("user_id"), query.get("since"),
                                      query.get("until"), query.get("emergency"))
        items, next_cursor = page(db_session(), events,
                                  [AuditEvent.id], query.get("cursor"), query.get("limit"),
                                  descending=True)
        return {"items": items, "next_cursor": next_cursor}
