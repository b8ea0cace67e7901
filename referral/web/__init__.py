"""Web pages: sign-in, sessions and the page shell; the role pages are in ``pages``.

Pages authenticate with a server-side session (``referral_session`` cookie), never with API tokens, and
every state-changing form carries a CSRF token.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.wrappers import Response as BaseResponse

from referral.api.context import db_session
from referral.models import Organization, User, WebSession
from referral.models.enums import Role
from referral.services import web_auth

SESSION_COOKIE = "referral_session"
LOGIN_CSRF_COOKIE = "referral_login_csrf"
LOGIN_CSRF_MAX_AGE = 3600
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
GENERIC_SIGN_IN_FAILURE = "The email or password is not correct."
THROTTLED_MESSAGE = ("Too many failed sign-in attempts. Sign-in is paused for 15 minutes for this account "
                     "or network; try again later or ask your practice administrator.")

web = Blueprint("web", __name__, template_folder="templates", static_folder="static",
                static_url_path="/web/static")


def _cookie_secure() -> bool:
    return request.is_secure or current_app.config.get("APP_ENV") == "production"


def _login_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="referral.login-csrf")


def _page(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    return render_template(template, **context), status


def _bad_request(message: str) -> tuple[str, int]:
    return _page("error.html", 400, title="Request refused", message=message)


def _to_login(ended: str | None = None) -> BaseResponse:
    response = redirect(url_for("web.login", ended=ended) if ended else url_for("web.login"), code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@web.before_request
def _load_session() -> ResponseReturnValue | None:
    if request.endpoint == "web.static":
        return None
    idle = timedelta(minutes=int(current_app.config.get("SESSION_IDLE_MINUTES") or 15))
    row, ended = web_auth.resume(db_session(), request.cookies.get(SESSION_COOKIE, ""), idle=idle)
    g.web_session = row
    g.session_ended = ended
    if request.method not in UNSAFE_METHODS or request.endpoint == "web.login":
        return None
    if row is None:
        return _to_login(ended)
    supplied = request.form.get("csrf_token", "")
    if not hmac.compare_digest(supplied.encode(), row.csrf_token.encode()):
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
        notice = (f"You were signed out after {current_app.config.get('SESSION_IDLE_MINUTES', 15)} minutes "
                  "without activity.")
    elif ended == "expired":
        notice = "Your session reached its 12-hour limit. Please sign in again."
    response = Response(render_template("login.html", csrf_token=nonce, error=error, notice=notice, email=email),
                        status=status)
    response.set_cookie(LOGIN_CSRF_COOKIE, _login_serializer().dumps(nonce), max_age=LOGIN_CSRF_MAX_AGE,
                        httponly=True, samesite="Lax", secure=_cookie_secure(), path="/login")
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
            return redirect(url_for("web.index"), code=303)
        return _login_form()
    if not _login_token_ok():
        return _bad_request("The sign-in form had expired or was not sent from this site. Reload it and try again.")
    email = request.form.get("email", "")
    try:
        new = web_auth.sign_in(db_session(), email, request.form.get("password", ""),
                               ip_address=request.remote_addr, user_agent=request.user_agent.string or None)
    except web_auth.SignInThrottled:
        return _login_form(429, THROTTLED_MESSAGE, email)
    except web_auth.SignInRefused:
        return _login_form(401, GENERIC_SIGN_IN_FAILURE, email)
    response = redirect(url_for("web.index"), code=303)
    # No max_age: a browser cookie that ends with the browser; the server enforces idle and absolute ends.
    response.set_cookie(SESSION_COOKIE, new.token, httponly=True, samesite="Lax", secure=_cookie_secure(), path="/")
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@web.post("/logout")
def logout() -> ResponseReturnValue:
    row = _current()
    if row is not None:
        web_auth.sign_out(db_session(), row)
    return _to_login()


@web.app_context_processor
def _shell_context() -> dict[str, Any]:
    row = g.get("web_session")
    if row is None:
        return {"signed_in": None}
    session = db_session()
    user = session.get(User, row.user_id)
    org = session.get(Organization, user.organization_id) if user and user.organization_id else None
    return {"signed_in": {"email": user.email if user else "", "role": Role(user.role).value if user else "",
                          "practice": org.name if org else "Platform administration", "csrf_token": row.csrf_token}}


def register_web(app: Flask) -> None:
    from referral.web import pages  # noqa: F401  (attaches the role pages to the blueprint)

    app.register_blueprint(web)
