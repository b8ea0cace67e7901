"""Web pages: sign-in, sessions and the page shell; the role pages are in ``pages``.

Pages authenticate with a server-side session (``referral_session`` cookie), never with API tokens, and
every state-changing form carries a CSRF token.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime, timedelta
from typing import Any, cast
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Flask, Response, g, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from referral import timezones
from referral.errors import DomainError, ValidationFailed
from referral.http.auth import CSRF_FIELD, CSRF_HEADER, SESSION_COOKIE, csrf_matches, needs_csrf, web_session
from referral.http.context import db_session, settings
from referral.models import Organization, User, WebSession
from referral.models.enums import Role
from referral.services import link_requests, notices, notifications, password_links, web_auth
from referral.services.actor import Actor

LOGIN_CSRF_COOKIE = "referral_login_csrf"
LOGIN_CSRF_MAX_AGE = 3600
GENERIC_SIGN_IN_FAILURE = "The email or password is not correct."
THROTTLED_MESSAGE = ("Too many failed sign-in attempts. Sign-in is paused for 15 minutes for this account "
                     "or network; try again later or ask your practice administrator.")

web = Blueprint("web", __name__, template_folder="templates", static_folder="static",
                static_url_path="/web/static")


def _cookie_secure() -> bool:
    return request.is_secure or settings().env == "production"


def _login_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings().secret_key, salt="referral.login-csrf")


def _pre_session_token(response: Response, nonce: str, path: str) -> None:
    """The signed half of a double-submitted form token (see ``_login_form``), as a cookie for ``path``."""
    response.set_cookie(LOGIN_CSRF_COOKIE, _login_serializer().dumps(nonce), max_age=LOGIN_CSRF_MAX_AGE,
                        httponly=True, samesite="Lax", secure=_cookie_secure(), path=path)


def _page(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    return render_template(template, **context), status


def _bad_request(message: str) -> tuple[str, int]:
    return _page("error.html", 400, title="Request refused", message=message)


def safe_next(target: str | None) -> str | None:
    """A page of this site to return to after signing in: a same-origin path (``/referrals/...``), never another
    host (``//evil.example``, ``https://...``, ``/\\evil``), never the sign-in or sign-out pages themselves."""
    if not target or len(target) > 2000 or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    if any(ord(ch) < 32 or ch in "\\" for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or parts.path.startswith(("/login", "/logout", "/session/")):
        return None
    return target


def _to_login(ended: str | None = None, next_page: str | None = None) -> BaseResponse:
    back_to = safe_next(next_page)
    arguments = {key: value for key, value in (("ended", ended), ("next", back_to if back_to != "/" else None))
                 if value}
    response = redirect(url_for("web.login") + (f"?{urlencode(arguments)}" if arguments else ""), code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _idle() -> timedelta:
    return timedelta(minutes=settings().session_idle_minutes)


def warning_seconds() -> int:
    """How long before an idle logoff the page offers to stay signed in: two minutes, or half the idle time
    when that is shorter."""
    return int(min(120, _idle().total_seconds() / 2))


def _minutes(value: float) -> str:
    whole = int(value) if float(value).is_integer() else value
    return f"{whole} minute" if whole == 1 else f"{whole} minutes"


@web.before_request
def _load_session() -> ResponseReturnValue | None:
    if request.endpoint == "web.static":
        return None
    row, ended = web_session()
    pending = row.mfa_pending if row is not None else None
    # A half-signed-in session (password right, second step owed) is not ``web_session``: no page sees a user.
    g.web_session = row if pending is None else None
    g.pending_session = row if pending is not None else None
    g.session_ended = ended
    if row is not None and pending is not None:
        return _second_step_gate(row, pending)
    if not needs_csrf() or request.endpoint in ("web.login", "web.set_password"):
        # These two forms are used before there is a session; they carry their own pre-session token.
        return None
    if request.endpoint == "web.keep_alive":
        # Called by the page's script, which reads JSON: no redirect to the sign-in page.
        if row is None:
            return jsonify(signed_in=False, seconds_left=0, ended=ended), 401
        if not csrf_matches(row, request.headers.get(CSRF_HEADER)):
            return jsonify(message="The request was missing its security token or it did not match your "
                                   "session. Reload the page."), 403
        return None
    if row is None:
        return _to_login(ended)
    if not csrf_matches(row, request.form.get(CSRF_FIELD)):
        return _bad_request("The form was missing its security token or it did not match your session. "
                            "Reload the page and try again.")
    return None


# What a half-signed-in session may open: its own step, signing out, or signing in afresh.
PENDING_ENDPOINTS = {
    web_auth.PENDING_CODE: frozenset({"web.mfa_verify", "web.logout", "web.login", "web.set_password"}),
    web_auth.PENDING_ENROL: frozenset({"web.mfa_settings", "web.mfa_qr", "web.logout", "web.login",
                                       "web.set_password"}),
}
PENDING_PAGES = {web_auth.PENDING_CODE: "web.mfa_verify", web_auth.PENDING_ENROL: "web.mfa_settings"}


def _second_step_gate(row: WebSession, pending: str) -> ResponseReturnValue | None:
    """Everything but the owed step (and signing out) sends a half-signed-in session to that step; its forms
    carry the session's CSRF token like any other."""
    if request.endpoint in ("web.keep_alive", "web.session_status"):
        return jsonify(signed_in=False, seconds_left=0, ended=None), 401
    if request.endpoint not in PENDING_ENDPOINTS.get(pending, frozenset()):
        return redirect(url_for(PENDING_PAGES.get(pending, "web.login")), code=303)
    if (needs_csrf() and request.endpoint not in ("web.login", "web.set_password")
            and not csrf_matches(row, request.form.get(CSRF_FIELD))):
        return _bad_request("The form was missing its security token or it did not match your session. "
                            "Reload the page and try again.")
    return None


@web.after_request
def _no_store(response: Response) -> Response:
    # Pages carry patient and claim data; nothing of them belongs in a shared browser's cache.
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _current() -> WebSession | None:
    return g.get("web_session")


def _login_form(status: int = 200, error: str | None = None, email: str = "") -> Response:
    """The sign-in form with a fresh pre-session CSRF token.

    There is no server-side session yet, so the token is double-submitted: a random value goes into the
    form, and the same value, signed with SECRET_KEY, into a cookie. Another site can make a browser post
    the form but can neither read the value nor set our cookie, so it cannot sign a victim into an
    account of its choosing (login CSRF). The signature ties the cookie to this server and expires it."""
    nonce = secrets.token_urlsafe(32)
    ended = request.args.get("ended")
    notice = None
    if ended == "idle":
        notice = (f"You were signed out after {_minutes(settings().session_idle_minutes)} without activity. "
                  "Sign in again to go back to your page; what you typed there is kept on this device.")
    elif ended == "expired":
        notice = "Your session reached its 12-hour limit. Please sign in again."
    next_page = safe_next(request.values.get("next"))
    response = Response(render_template("login.html", csrf_token=nonce, error=error, notice=notice, email=email,
                                        next_page=next_page), status=status)
    _pre_session_token(response, nonce, "/login")
    return response


def _login_token_ok() -> bool:
    supplied = request.form.get("csrf_token", "")
    try:
        expected = _login_serializer().loads(request.cookies.get(LOGIN_CSRF_COOKIE, ""), max_age=LOGIN_CSRF_MAX_AGE)
    except BadSignature:
        return False
    return isinstance(expected, str) and bool(supplied) and hmac.compare_digest(supplied.encode(), expected.encode())


@web.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    if request.method == "GET":
        if _current() is not None:
            return redirect(safe_next(request.args.get("next")) or url_for("web.index"), code=303)
        return _login_form()
    if not _login_token_ok():
        return _bad_request("The sign-in form had expired or was not sent from this site. Reload it and try again.")
    email = request.form.get("email", "")
    try:
        new = web_auth.sign_in(db_session(), email, request.form.get("password", ""),
                               ip_address=request.remote_addr, user_agent=request.user_agent.string or None,
                               mfa_required=settings().mfa_required)
    except web_auth.SignInThrottled:
        return _login_form(429, THROTTLED_MESSAGE, email)
    except web_auth.SignInRefused:
        return _login_form(401, GENERIC_SIGN_IN_FAILURE, email)
    # Back to the page the session ended on: it loads with the new session's CSRF token, and restores what was
    # typed there from the browser's own storage.
    return _signed_in_response(new.token, "/login", safe_next(request.form.get("next")), new.row.mfa_pending)


def _signed_in_response(token: str, cookie_path: str, next_page: str | None = None,
                        pending: str | None = None) -> BaseResponse:
    """The session cookie, and on to the page to go back to, or first to the second step the session owes
    (which carries that page along)."""
    target = next_page or url_for("web.index")
    if pending is not None:
        step = url_for(PENDING_PAGES.get(pending, "web.login"))
        target = step + (f"?{urlencode({'next': next_page})}" if next_page else "")
    response = redirect(target, code=303)
    # No max_age: a browser cookie that ends with the browser; the server enforces idle and absolute ends.
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Lax", secure=_cookie_secure(), path="/")
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=cookie_path)
    return response


def _set_password_form(token: str, email: str, status: int = 200, error: str | None = None) -> Response:
    nonce = secrets.token_urlsafe(32)
    response = Response(render_template("set_password.html", csrf_token=nonce, error=error, email=email,
                                        token=token, min_length=web_auth.PASSWORD_MIN_LENGTH),
                        status=status)
    _pre_session_token(response, nonce, f"{password_links.LINK_PATH}{token}")
    return response


def _link_unusable(exc: DomainError) -> tuple[str, int]:
    return _page("error.html", 410, title="Link no longer works", message=exc.message)


@web.route("/set-password/<token>", methods=["GET", "POST"])
def set_password(token: str) -> ResponseReturnValue:
    """The page a one-time link opens: choose a password, then be signed in."""
    session = db_session()
    try:
        user = password_links.check(session, token)
    except password_links.LinkNotUsable as exc:
        return _link_unusable(exc)
    if request.method == "GET":
        return _set_password_form(token, user.email)
    if not _login_token_ok():
        return _bad_request("The form had expired or was not sent from this site. Reload the page and try again.")
    password = request.form.get("password", "")
    if password != request.form.get("confirm", ""):
        return _set_password_form(token, user.email, 422, "The two passwords are not the same.")
    try:
        new = password_links.use(session, token, password, ip_address=request.remote_addr,
                                 user_agent=request.user_agent.string or None,
                                 mfa_required=settings().mfa_required)
    except password_links.LinkNotUsable as exc:
        return _link_unusable(exc)
    except ValidationFailed as exc:
        return _set_password_form(token, user.email, 422, exc.message)
    return _signed_in_response(new.token, f"{password_links.LINK_PATH}{token}", None, new.row.mfa_pending)


@web.post("/logout")
def logout() -> ResponseReturnValue:
    row = _current() or g.get("pending_session")
    if row is not None:
        web_auth.sign_out(db_session(), row)
    return _to_login()


@web.get("/session/status")
def session_status() -> ResponseReturnValue:
    """How long the browser's session has left; asking is not activity (the page's idle notice asks)."""
    row = _current()
    if row is None:
        return jsonify(signed_in=False, seconds_left=0, ended=g.get("session_ended"))
    return jsonify(signed_in=True, seconds_left=web_auth.seconds_left(row, _idle()))


@web.post("/session/keep-alive")
def keep_alive() -> ResponseReturnValue:
    """Typing or other use of a page counts as activity: the page calls this (at most about once a minute) and
    when the person chooses to stay signed in. The session was already renewed by resuming it."""
    row = _current()
    if row is None:
        return jsonify(signed_in=False, seconds_left=0), 401
    return jsonify(signed_in=True, seconds_left=web_auth.seconds_left(row, _idle()))


def viewer_zone() -> str | None:
    """The signed-in person's practice's time zone (None for a platform admin: times in UTC)."""
    if "viewer_zone" not in g:
        row = g.get("web_session")
        user = db_session().get(User, row.user_id) if row is not None else None
        org = db_session().get(Organization, user.organization_id) if user and user.organization_id else None
        g.viewer_zone = org.time_zone if org else None
    return cast(str | None, g.viewer_zone)


@web.app_template_filter("local_time")
def _local_time(moment: datetime | None) -> str:
    """A stored moment as the viewer reads it: in their practice's zone, with the zone named."""
    return timezones.describe(moment, viewer_zone())


@web.app_template_filter("local_date")
def _local_date(moment: datetime | None) -> str:
    return timezones.describe(moment, viewer_zone(), with_time=False)


@web.app_context_processor
def _shell_context() -> dict[str, Any]:
    row = g.get("web_session")
    if row is None:
        return {"signed_in": None}
    session = db_session()
    user = session.get(User, row.user_id)
    org = session.get(Organization, user.organization_id) if user and user.organization_id else None
    return {"signed_in": {"email": user.email if user else "", "role": Role(user.role).value if user else "",
                          "practice": org.name if org else "Platform administration", "csrf_token": row.csrf_token,
                          "member": org is not None, "news": _news_count(session, user),
                          "notices": notices.unread_count(session, user.id)
                          if user is not None and user.role == Role.ORG_ADMIN else 0,
                          "link_requests": _link_request_count(session, user),
                          "user_id": str(row.user_id), "idle_seconds": int(_idle().total_seconds()),
                          "warning_seconds": warning_seconds()}}


def _member_actor(user: User | None) -> Actor | None:
    if user is None or user.organization_id is None:
        return None
    return Actor(user_id=user.id, organization_id=user.organization_id, role=Role(user.role),
                 provider_id=user.provider_id)


def _news_count(session: Session, user: User | None) -> int:
    """How many of the person's cases have something new for them, for the count in the page header."""
    actor = _member_actor(user)
    return len(notifications.attention(session, actor)) if actor is not None else 0


def _link_request_count(session: Session, user: User | None) -> int:
    """How many requests for another login to read as the person's provider wait for their answer."""
    actor = _member_actor(user)
    return link_requests.count_pending(session, actor) if actor is not None else 0


def register_web(app: Flask) -> None:
    from referral.web import (  # noqa: F401  (attach the role, patient, set-up and two-step pages to the blueprint)
        admin,
        mfa_pages,
        offline,
        pages,
        patient_pages,
    )

    app.register_blueprint(web)
