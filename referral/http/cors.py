"""CORS for DICOMweb only: browser viewers (OHIF) served from an origin of their own call ``/dicomweb``.

``DICOMWEB_CORS_ORIGINS`` lists the exact origins allowed; empty (the default) means no CORS at all. Nothing
here touches any other path: the pages and the JSON API stay same-origin.

- **Preflight** (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) under ``/dicomweb`` is
  answered here, before authentication, since browsers send no token on it. An allowed origin gets 204 with
  the allow headers; any other origin gets 403 with the JSON error shape and no CORS header. Either answer is
  the same for every path under the prefix, routed or not, so a preflight tells nothing about what exists.
- **Every other DICOMweb answer**, errors included (401, 404, 406, 429...), carries ``Access-Control-Allow-
  Origin`` and the exposed headers when its ``Origin`` is allowed, so the viewer can read why a call failed.
  With CORS configured, every DICOMweb answer says ``Vary: Origin``: it depends on the origin.
- No ``Access-Control-Allow-Credentials``: DICOMweb takes only a bearer token, never the pages' cookie, so a
  browser has no credentials to send (a viewer must not set ``withCredentials``).
"""

from __future__ import annotations

from flask import Flask, Response, request

from referral.http.context import settings
from referral.http.errors import error_response

DICOMWEB_PREFIX = "/dicomweb"
ALLOW_METHODS = "GET, POST, OPTIONS"
# What dicomweb-client and OHIF send: the token, the media types asked for, and the body's type on STOW-RS.
ALLOW_HEADERS = "Authorization, Accept, Content-Type"
# Content-Type and Content-Length are readable anyway; the rest are what a viewer needs to read from answers.
EXPOSE_HEADERS = "Content-Type, Content-Length, Content-Location, Content-Disposition, Warning, Retry-After"
# Seconds a browser may keep a preflight answer (browsers cap it: Chrome at 2 hours).
MAX_AGE = "600"
REFUSED = "This origin may not call DICOMweb from a browser; see DICOMWEB_CORS_ORIGINS in docs/dicomweb.md"


def _is_dicomweb(path: str) -> bool:
    return path == DICOMWEB_PREFIX or path.startswith(DICOMWEB_PREFIX + "/")


def _allowed_origin() -> str | None:
    """The request's ``Origin`` when it is on the list; browsers send it exactly as ``scheme://host[:port]``."""
    origin = request.headers.get("Origin")
    if origin and origin in settings().dicomweb_cors_origins:
        return origin
    return None


def _preflight() -> Response | None:
    if request.method != "OPTIONS" or not _is_dicomweb(request.path) or "Origin" not in request.headers \
            or "Access-Control-Request-Method" not in request.headers:
        return None
    origin = _allowed_origin()
    if origin is None:
        return error_response(403, REFUSED)
    response = Response(status=204)
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
    response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
    response.headers["Access-Control-Max-Age"] = MAX_AGE
    return response


def _add_cors_headers(response: Response) -> Response:
    if not settings().dicomweb_cors_origins or not _is_dicomweb(request.path):
        return response
    response.vary.add("Origin")
    origin = _allowed_origin()
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        if "Access-Control-Allow-Methods" not in response.headers:  # not on a preflight: there it is not asked for
            response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
    return response


def init_dicomweb_cors(app: Flask) -> None:
    """Registered before authentication (the preflight carries no token) and before the abuse limits."""
    app.before_request(_preflight)
    app.after_request(_add_cors_headers)
