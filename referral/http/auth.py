"""Who is asking, in one place for the API and the pages.

- An API call (``/api/v1/...``) carries a bearer token, or, from the pages' own scripts, the browser's
  session cookie. The check runs before the body is read.
- A page request carries the session cookie; the session is resumed once per request (the idle rule is
  applied on the server) and shared by the pages and any API call made with the cookie.
- A DICOMweb call (``/dicomweb/...``) carries a bearer token only: viewers and imaging software hold a
  token, and a route that stores images is never driven by a browser's cookie.
- A session still owing its second step (multi-factor sign-in) authenticates nothing: the API answers 401 and
  the pages send it back to that step.
- CSRF: a cookie is sent by the browser on its own, so every state-changing request made with the
  session cookie must also carry the session's CSRF token, which another site can neither read nor set:
  in the ``X-CSRF-Token`` header (the pages' API calls) or the ``csrf_token`` form field (page forms).
"""

from __future__ import annotations

import hmac
from datetime import timedelta
from typing import cast

from flask import Flask, g, request

from referral.errors import Forbidden, NotAuthenticated
from referral.http.context import db_session, settings
from referral.http.ratelimit import token_rejected
from referral.models import User, WebSession
from referral.models.enums import Role
from referral.services import web_auth
from referral.services.actor import Actor
from referral.services.auth import TokenUser, authenticate

SESSION_COOKIE = "referral_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_PREFIX = "/api/v1/"
DICOMWEB_PREFIX = "/dicomweb"
SESSION_STATUS_ENDPOINT = "web.session_status"
_WEB_SESSION = "referral.web_session"
_HOW_TO_AUTHENTICATE = "Send an API token as 'Authorization: Bearer <token>'"


def web_session() -> tuple[WebSession | None, str | None]:
    """The browser's live session and ``None``, or ``None`` and why it just ended (``idle``, ``expired``);
    resumed once per request (kept with the request, not in ``g``, which a test may share between requests)."""
    if _WEB_SESSION not in request.environ:
        idle = timedelta(minutes=settings().session_idle_minutes)
        # Asking how long the session has left is not activity; every other request is.
        touch = request.endpoint != SESSION_STATUS_ENDPOINT
        request.environ[_WEB_SESSION] = web_auth.resume(db_session(), request.cookies.get(SESSION_COOKIE, ""),
                                                        idle=idle, touch=touch)
    return cast(tuple[WebSession | None, str | None], request.environ[_WEB_SESSION])


def csrf_matches(row: WebSession, supplied: str | None) -> bool:
    return bool(supplied) and hmac.compare_digest((supplied or "").encode(), row.csrf_token.encode())


def needs_csrf() -> bool:
    return request.method in UNSAFE_METHODS


def _session_user() -> User:
    row, ended = web_session()
    if row is None:
        raise NotAuthenticated("Your session has ended; sign in again" if ended else _HOW_TO_AUTHENTICATE)
    if row.mfa_pending is not None:
        # Half signed in (password right, second step owed): the session cookie opens nothing in the API.
        raise NotAuthenticated("Finish signing in on the pages first: the two-step sign-in is not complete")
    if needs_csrf() and not csrf_matches(row, request.headers.get(CSRF_HEADER)):
        raise Forbidden(f"A call made with the session cookie must send the page's {CSRF_HEADER} header")
    user = db_session().get(User, row.user_id)
    if user is None or not user.active:
        raise NotAuthenticated("Your session has ended; sign in again")
    return user


def bearer_user(header: str) -> TokenUser:
    """The user of an ``Authorization: Bearer`` header; a refused token is counted against the address."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        token_rejected()
        raise NotAuthenticated(_HOW_TO_AUTHENTICATE)
    user = authenticate(db_session(), token.strip(), cache_seconds=settings().api_token_cache_seconds)
    if user is None:
        token_rejected()
        raise NotAuthenticated("The API token is not valid, expired or revoked")
    return user


def actor_of(user: User | TokenUser) -> Actor:
    return Actor(user_id=user.id, organization_id=user.organization_id, role=Role(user.role),
                 provider_id=user.provider_id, ip_address=request.remote_addr,
                 user_agent=request.user_agent.string or None)


def _is_dicomweb(path: str) -> bool:
    return path == DICOMWEB_PREFIX or path.startswith(DICOMWEB_PREFIX + "/")


def _authenticate_api_call() -> None:
    if _is_dicomweb(request.path):
        header = request.headers.get("Authorization", "")
        if not header:
            raise NotAuthenticated(_HOW_TO_AUTHENTICATE)
        g.actor = actor_of(bearer_user(header))
        return
    if not request.path.startswith(API_PREFIX):
        return
    header = request.headers.get("Authorization", "")
    if not header and not request.cookies.get(SESSION_COOKIE):
        raise NotAuthenticated(_HOW_TO_AUTHENTICATE)
    g.actor = actor_of(bearer_user(header) if header else _session_user())


def init_authentication(app: Flask) -> None:
    app.before_request(_authenticate_api_call)
