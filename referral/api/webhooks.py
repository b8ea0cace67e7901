from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView

from referral.api.parsing import Blueprint
from referral.http.context import current_actor, db_session, settings
from referral.schemas.webhooks import (
    DeliveryPageSchema,
    DeliveryQuerySchema,
    WebhookCreateSchema,
    WebhookListSchema,
    WebhookSchema,
)
from referral.services import webhooks

blp = Blueprint("webhooks", __name__, description="Webhooks: signed event notifications (org admin)")


@blp.route("/webhooks")
class Webhooks(MethodView):
    @blp.arguments(WebhookCreateSchema)
    @blp.response(201, WebhookSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Register a webhook for some event types; the secret is never shown again"""
        return webhooks.create_webhook(db_session(), current_actor(), data,
                                       allow_private=settings().webhook_allow_private)

    @blp.response(200, WebhookListSchema)
    def get(self) -> Any:
        """The organization's webhooks"""
        return {"items": webhooks.list_webhooks(db_session(), current_actor())}


@blp.route("/webhooks/<uuid:webhook_id>")
class WebhookById(MethodView):
    @blp.response(200, WebhookSchema)
    def get(self, webhook_id: uuid.UUID) -> Any:
        """One webhook"""
        return webhooks.get_webhook(db_session(), current_actor(), webhook_id)

    @blp.response(204)
    def delete(self, webhook_id: uuid.UUID) -> None:
        """Delete a webhook; its pending deliveries are given up"""
        webhooks.delete_webhook(db_session(), current_actor(), webhook_id)


@blp.route("/webhooks/<uuid:webhook_id>/deliveries")
class WebhookDeliveries(MethodView):
    @blp.arguments(DeliveryQuerySchema, location="query")
    @blp.response(200, DeliveryPageSchema)
    def get(self, query: dict[str, Any], webhook_id: uuid.UUID) -> Any:
        """Delivery attempts to this webhook, newest first"""
        items, next_cursor = webhooks.list_deliveries(db_session(), current_actor(), webhook_id,
                                                      query.get("status"), query.get("cursor"), query.get("limit"))
        return {"items": items, "next_cursor": next_cursor}
