"""Two-step sign-in pages: the code asked for after the password, and enrolling or turning off an authenticator.

These are plain server-side forms (no script): they are used by a half-signed-in session, which has no page
shell and whose only other way out is signing out. Their forms carry the session's CSRF token.
"""

from __future__ import annotations

from typing import Any

import segno
from flask import g, redirect, request, url_for
from flask.typing import ResponseReturnValue
from markupsafe import Markup

from referral.errors import DomainError
from referral.http.context import db_session, settings
from referral.models import User, WebSession
from referral.services import mfa, web_auth
from referral.web import THROTTLED_MESSAGE, _page, _to_login, safe_next, web

WRONG_CODE = "That code is not right. Type the 6-digit code your authenticator app shows now, or a recovery code."
REUSED_CODE = ("That code was already used. Wait for your app to show the next code, or use another recovery "
               "code.")


def _key() -> bytes:
    return mfa.sealing_key(settings().secret_key)


def _refused_message(exc: mfa.CodeRefused) -> str:
    return REUSED_CODE if exc.reason == "reused" else WRONG_CODE


def _who(row: WebSession) -> tuple[User, Any]:
    user = db_session().get(User, row.user_id)
    if user is None:  # pragma: no cover - the session ends with its user
        raise LookupError(row.user_id)
    return user, web_auth.actor_for(user, request.remote_addr, request.user_agent.string or None)


@web.route("/login/code", methods=["GET", "POST"])
def mfa_verify() -> ResponseReturnValue:
    """The second step of signing in: a code from the authenticator app, or a recovery code."""
    row: WebSession | None = g.get("pending_session")
    if row is None or row.mfa_pending != web_auth.PENDING_CODE:
        if g.get("web_session") is not None:
            return redirect(url_for("web.index"), code=303)
        return _to_login(g.get("session_ended"))
    next_page = safe_next(request.values.get("next"))
    if request.method == "GET":
        return _page("mfa_code.html", csrf_token=row.csrf_token, next_page=next_page, error=None)
    _user, actor = _who(row)
    try:
        method = mfa.verify_sign_in(db_session(), row, _key(), request.form.get("code", ""), actor)
    except web_auth.SignInThrottled:
        return _page("mfa_code.html", 429, csrf_token=row.csrf_token, next_page=next_page, error=THROTTLED_MESSAGE)
    except mfa.CodeRefused as exc:
        return _page("mfa_code.html", 401, csrf_token=row.csrf_token, next_page=next_page,
                     error=_refused_message(exc))
    except DomainError as exc:
        return _page("mfa_code.html", exc.status_code, csrf_token=row.csrf_token, next_page=next_page,
                     error=exc.message)
    if method == "recovery":
        # Tell the person how many recovery codes are left, on the page where they can turn MFA off and on again.
        return redirect(url_for("web.mfa_settings", used_recovery=1), code=303)
    return redirect(next_page or url_for("web.index"), code=303)


def _qr_svg(uri: str) -> Markup:
    """The otpauth URI as an inline SVG QR code (markup, not a script or an image request)."""
    svg = segno.make(uri, error="m").svg_inline(scale=5, border=2, omitsize=True,
                                                    title="QR code for your authenticator app")
    return Markup(svg)  # noqa: S704 - segno's own SVG output; the URI is escaped by segno


@web.route("/settings/mfa", methods=["GET", "POST"])
def mfa_settings() -> ResponseReturnValue:
    """Enrol an authenticator (a signed-in user, or a half-signed-in one where MFA is required), see its state,
    or turn it off where it is not required."""
    full: WebSession | None = g.get("web_session")
    pending: WebSession | None = g.get("pending_session")
    row = full or (pending if pending is not None and pending.mfa_pending == web_auth.PENDING_ENROL else None)
    if row is None:
        return _to_login(g.get("session_ended"), request.path if request.method == "GET" else None)
    user, actor = _who(row)
    session = db_session()
    required = settings().mfa_required
    next_page = safe_next(request.values.get("next"))
    common: dict[str, Any] = {"csrf_token": row.csrf_token, "next_page": next_page, "required": required,
                              "half_signed_in": full is None, "email": user.email}
    enabled = mfa.is_enabled(session, user.id)
    if request.method == "POST":
        action = request.form.get("action", "")
        if action == "confirm" and not enabled:
            return _confirm(user, actor, row, common)
        if action == "disable" and enabled and full is not None:
            return _disable(user, actor, common)
        return _page("error.html", 400, title="Request refused",
                     message="This form does not fit the account's two-step sign-in now. Reload the page.")
    if enabled:
        notice = None
        if request.args.get("used_recovery"):
            left = mfa.recovery_codes_left(session, user.id)
            notice = (f"You signed in with a recovery code; it will not work again. {left} recovery codes are "
                      "left. If your phone is lost, ask your practice administrator to reset two-step sign-in.")
        return _page("mfa_status.html", notice=notice, codes_left=mfa.recovery_codes_left(session, user.id),
                     error=None, **common)
    return _enrol_page(user, actor, common)


def _enrol_page(user: User, actor: Any, common: dict[str, Any], status: int = 200,
                error: str | None = None) -> tuple[str, int]:
    enrolment = mfa.begin_enrolment(db_session(), user, _key(), actor)
    notice = "Two-step sign-in is now off for your account." if request.args.get("turned_off") else None
    return _page("mfa_enrol.html", status, secret=enrolment.secret, uri=enrolment.uri, qr=_qr_svg(enrolment.uri),
                 error=error, notice=notice, **common)


def _confirm(user: User, actor: Any, row: WebSession, common: dict[str, Any]) -> ResponseReturnValue:
    try:
        codes = mfa.confirm_enrolment(db_session(), user, _key(), request.form.get("code", ""), actor,
                                      web_session=row)
    except web_auth.SignInThrottled:
        return _enrol_page(user, actor, common, 429, THROTTLED_MESSAGE)
    except mfa.CodeRefused as exc:
        return _enrol_page(user, actor, common, 422, _refused_message(exc))
    # Shown once, in this response: only their hashes are kept.
    return _page("mfa_recovery_codes.html", codes=codes, continue_to=common["next_page"] or url_for("web.index"),
                 **common)


def _disable(user: User, actor: Any, common: dict[str, Any]) -> ResponseReturnValue:
    session = db_session()
    try:
        mfa.disable(session, user, _key(), request.form.get("code", ""), actor, required=common["required"])
    except web_auth.SignInThrottled:
        error, status = THROTTLED_MESSAGE, 429
    except mfa.CodeRefused as exc:
        error, status = _refused_message(exc), 422
    except DomainError as exc:
        error, status = exc.message, exc.status_code
    else:
        return redirect(url_for("web.mfa_settings", turned_off=1), code=303)
    return _page("mfa_status.html", status, notice=None, codes_left=mfa.recovery_codes_left(session, user.id),
                 error=error, **common)
