"""Per-request access to the database session, the object store and the authenticated actor."""

from __future__ import annotations

from typing import cast

from flask import Flask, current_app, g, request
from sqlalchemy.orm import Session, sessionmaker

from referral.errors import NotAuthenticated
from referral.models.enums import Role
from referral.services.actor import Actor
from referral.services.auth import authenticate
from referral.services.workflow import WorkflowSettings
from storage import Storage


def db_session() -> Session:
    if "db_session" not in g:
        factory = cast(sessionmaker[Session], current_app.extensions["referral.sessionmaker"])
        g.db_session = factory()
    return cast(Session, g.db_session)


def object_store() -> Storage:
    return cast(Storage, current_app.extensions["referral.storage"])


def workflow_settings() -> WorkflowSettings:
    return WorkflowSettings(
        response_hours=current_app.config["RESPONSE_HOURS"],
        consent_required_states=current_app.config["CONSENT_REQUIRED_STATES"],
    )


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


def _authenticate_request() -> None:
    """Every /api/v1 call needs a valid bearer token; the check runs before the body is read."""
    if not request.path.startswith("/api/v1/"):
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("Send an API token as 'Authorization: Bearer <token>'")
    user = authenticate(db_session(), token.strip())
    if user is None:
        raise NotAuthenticated("The API token is not valid, expired or revoked")
    g.actor = Actor(
        user_id=user.id,
        organization_id=user.organization_id,
        role=Role(user.role),
        provider_id=user.provider_id,
        ip_address=request.remote_addr,
        user_agent=request.user_agent.string or None,
    )


def init_request_context(app: Flask) -> None:
    app.before_request(_authenticate_request)
    app.teardown_request(_close_session)
