"""Abuse limits, answered with 429, the JSON error shape and Retry-After.

* **Rejected API tokens, per address.** Every request to /api/v1 that sends an Authorization header is
  checked against the count of tokens rejected from its address *before* its own token is looked at, and
  a rejected token (a 401 from the token check) adds one to that count. Once the address is over the
  limit, every bearer call from it is refused until the window moves on, even one with a valid token: an
  address guessing tokens learns nothing from the answers, not even when a guess was right. Calls without
  the header (the pages' own calls with the session cookie) are not counted here; sign-in has its own
  throttle in the database (``services/web_auth``).
* **Uploads, per user.** The three calls that take image bytes or start an upload (direct upload, start
  and complete of a direct-to-storage upload) share one count per authenticated user, whatever the
  outcome of each call.

The two limits sit on either side of authentication, so each is a flask-limiter ``Limiter`` of its own:
the first is registered before the token check, the second after it (it is keyed by the user).

Counts live in ``RATELIMIT_STORAGE_URL``: ``memory://`` keeps them per process, ``redis://`` shares them
between every process. Should Redis be unreachable, counting goes on in memory (per process) instead of
refusing every request; flask-limiter logs the switch and returns to Redis when it answers again.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from flask import Flask, Response, g, request
from flask_limiter import ApplicationLimit, Limiter, RateLimitExceeded, RequestLimit
from flask_limiter.util import get_remote_address

from referral.errors import error_response

# Moving windows: a client cannot double its allowance by straddling the edge of a fixed window.
STRATEGY = "moving-window"
# The views that take image bytes or hand out an upload form (flask-smorest names MethodViews
# "<blueprint>.<class>"); create_app fails if one of them is renamed.
UPLOAD_ENDPOINTS = frozenset({
    "images.ReferralImages",
    "images.ReferralImageUploads",
    "images.ReferralImageUploadCompletion",
})
# A slow or unreachable Redis must not hold requests for long before the in-memory fallback takes over.
REDIS_TIMEOUT_SECONDS = 1

AUTH_FAILURES_MESSAGE = ("Too many requests with an API token that was not accepted came from this address; "
                         "try again later")
UPLOADS_MESSAGE = "Too many uploads in a short time; wait a little and send the rest"


def token_rejected() -> None:
    """Count this request as a rejected token (called by the token check before it answers 401)."""
    g.api_token_rejected = True


def _sends_a_token() -> bool:
    return request.path.startswith("/api/v1/") and "Authorization" in request.headers


def _was_rejected(response: Response) -> bool:
    return response.status_code == 401 and bool(g.get("api_token_rejected"))


def _is_upload() -> bool:
    return request.method == "POST" and request.endpoint in UPLOAD_ENDPOINTS


def _user_key() -> str:
    # Registered after the token check, so an actor is always there; the address is a safe fallback.
    actor = g.get("actor")
    return f"user:{actor.user_id}" if actor is not None else f"address:{get_remote_address()}"


def _breach(message: str) -> Callable[[RequestLimit], Response]:
    def respond(limit: RequestLimit) -> Response:
        response = error_response(429, message)
        # when the oldest counted request leaves the window, so the next one is allowed
        response.headers["Retry-After"] = str(max(1, math.ceil(limit.window.reset_time - time.time())))
        return response

    return respond


def _too_many_requests(exc: RateLimitExceeded) -> Response:
    if isinstance(exc.response, Response):
        return exc.response
    return error_response(429, exc.description or "Too many requests")


def _limiter(app: Flask, key_func: Callable[[], str], limit: ApplicationLimit, purpose: str) -> Limiter:
    url = str(app.config["RATELIMIT_STORAGE_URL"])
    options: dict[str, str | int] = {}
    if url.startswith(("redis", "rediss")):
        options = {"socket_connect_timeout": REDIS_TIMEOUT_SECONDS, "socket_timeout": REDIS_TIMEOUT_SECONDS}
    limiter = Limiter(
        key_func=key_func,
        application_limits=[limit],
        strategy=STRATEGY,
        storage_uri=url,
        storage_options=options,
        key_prefix=f"{app.config['RATELIMIT_KEY_PREFIX']}/{purpose}",
        in_memory_fallback_enabled=True,
        swallow_errors=True,
        headers_enabled=False,
        # Unrouted paths under /api/v1 still check tokens, so they are counted too.
        request_identifier=lambda: request.endpoint or "unrouted",
    )
    limiter.init_app(app)
    app.extensions[f"referral.limiter.{purpose}"] = limiter
    return limiter


def init_auth_failure_limit(app: Flask) -> None:
    """Register before the token check, so an address over its limit is refused before its token is read."""
    limit = ApplicationLimit(
        str(app.config["RATELIMIT_AUTH_FAILURES"]),
        scope="auth-failures",
        exempt_when=lambda: not _sends_a_token(),
        deduct_when=_was_rejected,
        on_breach=_breach(AUTH_FAILURES_MESSAGE),
    )
    _limiter(app, get_remote_address, limit, "auth-failures")
    app.register_error_handler(RateLimitExceeded, _too_many_requests)


def init_upload_limit(app: Flask) -> None:
    """Register after the token check: the count is per authenticated user."""
    missing = UPLOAD_ENDPOINTS - set(app.view_functions)
    if missing:
        raise RuntimeError(f"upload limit names endpoints that do not exist: {sorted(missing)}")
    limit = ApplicationLimit(
        str(app.config["RATELIMIT_UPLOADS"]),
        scope="uploads",
        exempt_when=lambda: not _is_upload(),
        on_breach=_breach(UPLOADS_MESSAGE),
    )
    _limiter(app, _user_key, limit, "uploads")

