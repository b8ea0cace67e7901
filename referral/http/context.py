"""What a request works with: its database session, the object store, the settings and who is asking.

One database session per request, made on first use and rolled back and closed when the request ends:
whatever a service did not commit is discarded (``referral.unit_of_work`` runs the steps that depend on
that).
"""

from __future__ import annotations

from typing import cast

from flask import Flask, current_app, g
from sqlalchemy.orm import Session, sessionmaker

from referral.config import Settings
from referral.errors import NotAuthenticated
from referral.services.actor import Actor
from referral.services.workflow import WorkflowSettings
from storage import Storage

SETTINGS = "referral.settings"
SESSION_FACTORY = "referral.sessionmaker"
STORE = "referral.storage"


def settings() -> Settings:
    return cast(Settings, current_app.extensions[SETTINGS])


def db_session() -> Session:
    if "db_session" not in g:
        factory = cast(sessionmaker[Session], current_app.extensions[SESSION_FACTORY])
        g.db_session = factory()
    return cast(Session, g.db_session)


def object_store() -> Storage:
    return cast(Storage, current_app.extensions[STORE])


def workflow_settings() -> WorkflowSettings:
    configured = settings()
    return WorkflowSettings(response_hours=configured.response_hours,
                            consent_required_states=configured.consent_required_states)


def current_actor() -> Actor:
    actor = g.get("actor")
    if actor is None:
        raise NotAuthenticated("Send an API token as 'Authorization: Bearer <token>'")
    return cast(Actor, actor)


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        # Anything not committed by a service is discarded.
        session.rollback()
        session.close()


def init_request_context(app: Flask) -> None:
    app.teardown_request(_close_session)
