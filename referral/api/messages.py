from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView

from referral.api.parsing import Blueprint
from referral.http.context import current_actor, db_session
from referral.schemas.messages import ConversationSchema, MessageCreateSchema, MessageSchema, ReadMarkSchema
from referral.services import messages

blp = Blueprint("messages", __name__, description="The conversation between the referring office and the reader")


@blp.route("/referrals/<uuid:referral_id>/messages")
class Messages(MethodView):
    @blp.response(200, ConversationSchema)
    def get(self, referral_id: uuid.UUID) -> Any:
        """The case's messages, oldest first, with your unread count (audited; billing has no access)"""
        return messages.list_messages(db_session(), current_actor(), referral_id)

    @blp.arguments(MessageCreateSchema)
    @blp.response(201, MessageSchema)
    def post(self, data: dict[str, Any], referral_id: uuid.UUID) -> Any:
        """Write to the other side of the case; messages never change, a correction is a new message"""
        return messages.post_message(db_session(), current_actor(), referral_id, data["body"], data.get("image_id"))


@blp.route("/referrals/<uuid:referral_id>/messages/read", methods=["POST"])
@blp.response(200, ReadMarkSchema)
def mark_read(referral_id: uuid.UUID) -> Any:
    """Mark everything on the case up to now as read by you: its messages and its status changes"""
    return messages.mark_read(db_session(), current_actor(), referral_id)
