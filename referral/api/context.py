"""Per-request access to the database session, the object store and the authenticated actor."""

from __future__ import annotations

import hmac
from datetime import timedelta
from typing import cast

from flask import Flask, current_app, g, request
from sqlalchemy.orm import Session, sessionmaker

from referral.errors import Forbidden, NotAuthenticated
from referral.models import User
from referral.models.enums import Role
from referral.ratelimit import token_rejected
from referral.services.actor import Actor
from referral.services.auth import authenticate
from referral.services.workflow import WorkflowSettings
from storage import Storage

CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


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


def _session_user() -> User | None:
    """The user of the browser session cookie, for the pages' own calls to the API.

    A cookie is sent by the browser on its own, so a state-changing call must also carry the session's
    CSRF token in the X-CSRF-Token header, which another site can neither read nor set."""
    from referral.services import web_auth
    from referral.web import SESSION_COOKIE

    cookie = request.cookies.get(SESSION_COOKIE, "")
    if not cookie:
        return None
    idle = timedelta(minutes=int(current_app.config.get("SESSION_IDLE_MINUTES") or 15))
    row, ended = web_auth.resume(db_session(), cookie, idle=idle)
    if row is None:
        raise NotAuthenticated("Your session has ended; sign in again" if ended else
                               "Send an API token as 'Authorization: Bearer <token>'")
    if request.method in UNSAFE_METHODS:
        supplied = request.headers.get(CSRF_HEADER, "")
        if not supplied or not hmac.compare_digest(supplied.encode(), row.csrf_token.encode()):
            raise Forbidden(f"A call made with the session cookie must send the page's {CSRF_HEADER} header")
    user = db_session().get(User, row.user_id)
    if user is None or not user.active:
        raise NotAuthenticated("Your session has ended; sign in again")
    return user


def _authenticate_request() -> None:
    """Every /api/v1 call needs a valid bearer token or, from the pages, the session cookie; the check
    runs before the body is read."""
    if not request.path.startswith("/api/v1/"):
        return
    header = request.headers.get("Authorization", "")
    if not header:
        user = _session_user()
        if user is None:
            raise NotAuthenticated("Send an API token as 'Authorization: Bearer <token>'")
    else:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            token_rejected()
            raise NotAuthenticated("Send an API token as 'Authorization: Bearer <token>'")
        user = authenticate(db_session(), token.strip())
        if user is None:
            token_rejected()
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
