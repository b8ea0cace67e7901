"""Security headers on every response, API and pages alike."""

from __future__ import annotations

import base64
import hashlib
import re

from flask import Flask, Response, request

PAGE_POLICY = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
_DOCS_PATH = "/api/docs"
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def _docs_policy(response: Response) -> str:
    """flask-smorest's Swagger page boots from one inline script. Rather than allow every inline script,
    the policy names the hash of the one actually served, so it stays right when the config changes.
    Swagger UI sets inline styles on its elements, which needs 'unsafe-inline' for styles only."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode() + "'"
        for body in _INLINE_SCRIPT.findall(response.get_data())
    )
    return ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            f"script-src 'self' {hashes}; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def _add_headers(response: Response) -> Response:
    if "Content-Security-Policy" not in response.headers:
        # Responses that set their own policy (documents) keep it.
        if request.path == _DOCS_PATH and response.mimetype == "text/html" and not response.direct_passthrough:
            response.headers["Content-Security-Policy"] = _docs_policy(response)
        else:
            response.headers["Content-Security-Policy"] = PAGE_POLICY
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if request.is_secure:
        # Only over TLS: a browser ignores it on plain HTTP, and sending it there would claim what is not so.
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    return response


def register_security_headers(app: Flask) -> None:
    app.after_request(_add_headers)
