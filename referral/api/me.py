from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView

from referral.api.parsing import Blueprint
from referral.http.context import current_actor, db_session, settings
from referral.models import AdminNotice
from referral.schemas.emergency import NoticePageSchema, NoticeQuerySchema, NoticesReadSchema
from referral.schemas.notifications import NotificationPreferencesSchema, NotificationPreferencesUpdateSchema
from referral.schemas.phrases import PhraseCreateSchema, PhraseListSchema, PhraseSchema
from referral.services import notices, notifications, phrases
from referral.services.pagination import page

blp = Blueprint("me", __name__, description="The signed-in person's own settings")


@blp.route("/me/notifications")
class MyNotifications(MethodView):
    @blp.response(200, NotificationPreferencesSchema)
    def get(self) -> Any:
        """Which emails you get (members of a practice)"""
        return notifications.get_preferences(db_session(), current_actor(),
                                             email_enabled=settings().smtp_url is not None)

    @blp.arguments(NotificationPreferencesUpdateSchema)
    @blp.response(200, NotificationPreferencesSchema)
    def put(self, data: dict[str, Any]) -> Any:
        """Turn emails on or off; choices left out keep their value (audited)"""
        return notifications.update_preferences(db_session(), current_actor(), data,
                                                email_enabled=settings().smtp_url is not None)


@blp.route("/me/phrases")
class MyPhrases(MethodView):
    @blp.response(200, PhraseListSchema)
    def get(self) -> Any:
        """Your reusable phrases for report fields, oldest first (readers only)"""
        return {"items": phrases.list_phrases(db_session(), current_actor())}

    @blp.arguments(PhraseCreateSchema)
    @blp.response(201, PhraseSchema)
    @blp.alt_response(409, description="you already have this phrase, or already keep the most phrases allowed")
    def post(self, data: dict[str, Any]) -> Any:
        """Keep a new phrase (1 to 500 characters, at most 100 phrases; the same text twice is refused, 409)"""
        return phrases.add_phrase(db_session(), current_actor(), data["text"])


@blp.route("/me/phrases/<uuid:phrase_id>", methods=["DELETE"])
@blp.response(204)
def delete_phrase(phrase_id: uuid.UUID) -> Any:
    """Delete one of your phrases; anyone else's phrase id answers 404"""
    phrases.delete_phrase(db_session(), current_actor(), phrase_id)
    return None


@blp.route("/me/notices")
class MyNotices(MethodView):
    @blp.arguments(NoticeQuerySchema, location="query")
    @blp.response(200, NoticePageSchema)
    def get(self, query: dict[str, Any]) -> Any:
        """Access notices for you as an org admin: emergency access, new logins, role and provider-link changes in
        your practice, newest first"""
        session = db_session()
        items, next_cursor = page(session, notices.list_notices(session, current_actor(), unread_only=query["unread"]),
                                  [AdminNotice.id], query.get("cursor"), query.get("limit"), descending=True)
        return {"items": items, "next_cursor": next_cursor}


@blp.route("/me/notices/read", methods=["POST"])
@blp.response(200, NoticesReadSchema)
def mark_notices_read() -> Any:
    """Mark all your notices read (org admin)"""
    return {"marked": notices.mark_read(db_session(), current_actor())}
