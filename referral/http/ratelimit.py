"""Abuse limits, answered with 429, the JSON error shape and Retry-After.

* **Rejected API tokens, per address.** Every request to /api/v1 that sends an Authorization header is
  checked against the count of tokens rejected from its address *before* its own token is looked at, and
  a rejected token (a 401 from the token check) adds one to that count. Once the address is over the
  limit, every bearer call from it is refused until the window moves on, even one with a valid token: an
  address guessing tokens learns nothing from the answers, not even when a guess was right. Calls without
  the header (the pages' own calls with the session cookie) are not counted here; sign-in has its own
  throttle in the database (``services/web_auth``).
* **Uploads, per user.** The calls that take image bytes or start an upload (direct upload, start
  and complete of a direct-to-storage upload, creation of a resumable upload) share one count per
  authenticated user, whatever the outcome of each call. A resumable upload's chunks are not counted.

The two limits sit on either side of authentication, so each is a flask-limiter ``Limiter`` of its own:
the first is registered before the token check, the second after it (it is keyed by the user).

Each limiter runs only on the requests it limits. flask-limiter hooks every request (a before, an after and a
teardown function per limiter, each looking up the limits, the exemptions and a per-request context); here its
hooks are replaced by ones that first ask the same question as the limit's ``exempt_when`` and return at once when
the request is not theirs, so a plain read pays one path prefix test and one endpoint lookup, not the limiter's
work (measured in docs/benchmarks.md).

Counts live in ``RATELIMIT_STORAGE_URL``: ``memory://`` keeps them per process, ``redis://`` shares them
between every process. Should Redis be unreachable, counting goes on in memory (per process) instead of
refusing every request; flask-limiter logs the switch and returns to Redis when it answers again.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import partial, wraps
from typing import Any, cast

from flask import Flask, Response, g, request
from flask_limiter import ApplicationLimit, Limiter, RateLimitExceeded, RequestLimit
from flask_limiter.util import get_remote_address

from referral.config import Settings
from referral.http.context import SETTINGS
from referral.http.errors import error_response

# Moving windows: a client cannot double its allowance by straddling the edge of a fixed window.
STRATEGY = "moving-window"
# The views that take image bytes or hand out an upload form (flask-smorest names MethodViews
# "<blueprint>.<class>"); create_app fails if one of them is renamed.
UPLOAD_ENDPOINTS = frozenset({
    "images.ReferralImages",
    "images.ReferralImageUploads",
    "images.ReferralImageUploadCompletion",
    "tus.create_upload",
    "dicomweb.store_instances",
    "dicomweb.store_study_instances",
})
# A slow or unreachable Redis must not hold requests for long before the in-memory fallback takes over.
REDIS_TIMEOUT_SECONDS = 1

AUTH_FAILURES_MESSAGE = ("Too many requests with an API token that was not accepted came from this address; "
                         "try again later")
UPLOADS_MESSAGE = "Too many uploads in a short time; wait a little and send the rest"


def token_rejected() -> None:
    """Count this request as a rejected token (called by the token check before it answers 401)."""
    g.api_token_rejected = True


# The paths whose token checks count rejected tokens: the JSON API, the FHIR read API and DICOMweb.
TOKEN_PATHS = ("/api/v1/", "/fhir/R4/", "/dicomweb/")


def _sends_a_token() -> bool:
    return request.path.startswith(TOKEN_PATHS) and "Authorization" in request.headers


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


def _limiter(app: Flask, key_func: Callable[[], str], limit: ApplicationLimit, purpose: str,
             applies: Callable[[], bool]) -> Limiter:
    configured = cast(Settings, app.extensions[SETTINGS])
    url = configured.ratelimit_storage_url
    options: dict[str, str | int] = {}
    if url.startswith(("redis", "rediss")):
        options = {"socket_connect_timeout": REDIS_TIMEOUT_SECONDS, "socket_timeout": REDIS_TIMEOUT_SECONDS}
    limiter = Limiter(
        key_func=key_func,
        application_limits=[limit],
        strategy=STRATEGY,
        storage_uri=url,
        storage_options=options,
        key_prefix=f"{configured.ratelimit_key_prefix}/{purpose}",
        in_memory_fallback_enabled=True,
        swallow_errors=True,
        headers_enabled=False,
        # Unrouted paths under /api/v1 still check tokens, so they are counted too.
        request_identifier=lambda: request.endpoint or "unrouted",
    )
    limiter.init_app(app)
    _only_when(app, limiter, applies, purpose)
    app.extensions[f"referral.limiter.{purpose}"] = limiter
    return limiter


def _owned_by(function: object, limiter: Limiter) -> bool:
    """Whether a hook function is one flask-limiter registered for ``limiter`` (a bound method, or a partial)."""
    if getattr(function, "__self__", None) is limiter:
        return True
    return isinstance(function, partial) and bool(function.args) and function.args[0] is limiter


def _only_when(app: Flask, limiter: Limiter, applies: Callable[[], bool], purpose: str) -> None:
    """Put guards around the hooks ``limiter`` registered, in their places: a request the limit does not apply to
    skips all three; one it applies to runs them as flask-limiter would."""
    flag = f"referral.limited.{purpose}"

    def guard_before(hook: Callable[[], None]) -> Callable[[], None]:
        @wraps(hook)
        def before() -> None:
            if applies():
                request.environ[flag] = True
                hook()
        return before

    def guard_after(hook: Callable[[Response], Response]) -> Callable[[Response], Response]:
        def after(response: Response) -> Response:
            return hook(response) if request.environ.get(flag) else response
        return after

    def guard_teardown(hook: Callable[[BaseException | None], None]) -> Callable[[BaseException | None], None]:
        def teardown(exc: BaseException | None) -> None:
            if request.environ.get(flag):
                hook(exc)
        return teardown

    guards: list[tuple[dict[Any, list[Any]], Callable[[Any], Any]]] = [
        (cast(dict[Any, list[Any]], app.before_request_funcs), guard_before),
        (cast(dict[Any, list[Any]], app.after_request_funcs), guard_after),
        (cast(dict[Any, list[Any]], app.teardown_request_funcs), guard_teardown),
    ]
    for registry, guard in guards:
        hooks = registry.get(None, [])
        owned = [i for i, hook in enumerate(hooks) if _owned_by(hook, limiter)]
        if len(owned) != 1:
            raise RuntimeError(f"flask-limiter's hooks for {purpose} were not found where expected")
        hooks[owned[0]] = guard(hooks[owned[0]])


def init_auth_failure_limit(app: Flask) -> None:
    """Register before the token check, so an address over its limit is refused before its token is read."""
    limit = ApplicationLimit(
        cast(Settings, app.extensions[SETTINGS]).ratelimit_auth_failures,
        scope="auth-failures",
        exempt_when=lambda: not _sends_a_token(),
        deduct_when=_was_rejected,
        on_breach=_breach(AUTH_FAILURES_MESSAGE),
    )
    _limiter(app, get_remote_address, limit, "auth-failures", _sends_a_token)
    app.register_error_handler(RateLimitExceeded, _too_many_requests)


def init_upload_limit(app: Flask) -> None:
    """Register after the token check: the count is per authenticated user."""
    missing = UPLOAD_ENDPOINTS - set(app.view_functions)
    if missing:
        raise RuntimeError(f"upload limit names endpoints that do not exist: {sorted(missing)}")
    limit = ApplicationLimit(
        cast(Settings, app.extensions[SETTINGS]).ratelimit_uploads,
        scope="uploads",
        exempt_when=lambda: not _is_upload(),
        on_breach=_breach(UPLOADS_MESSAGE),
    )
    _limiter(app, _user_key, limit, "uploads", _is_upload)
