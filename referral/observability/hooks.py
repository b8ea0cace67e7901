"""The request id, one access line and one histogram sample per request, and ``/metrics``."""

from __future__ import annotations

import ipaddress
import logging
import re
import time
import uuid
from collections.abc import Iterable
from typing import cast

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import CollectorRegistry
from sqlalchemy.orm import Session, sessionmaker

from referral.http.context import settings
from referral.http.errors import error_response
from referral.observability import metrics
from referral.observability.logs import configure_logging

REQUEST_ID_HEADER = "X-Request-ID"
# What a proxy or a client may hand us as a request id: short, and nothing that could break a log
# line or a header. Anything else is replaced by one of ours.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,127}")
# Probes and scrapes every few seconds would drown the access log; they are logged when they fail.
_QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
_PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")

access_log = logging.getLogger("referral.access")
observability = Blueprint("observability", __name__)


def request_id_for(incoming: str | None) -> str:
    if incoming and _VALID_REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def _start_request() -> None:
    g.request_started = time.perf_counter()
    g.request_id = request_id_for(request.headers.get(REQUEST_ID_HEADER))


def _user_id() -> uuid.UUID | None:
    actor = g.get("actor")
    if actor is not None:
        return cast(uuid.UUID, actor.user_id)
    web_session = g.get("web_session")
    return cast(uuid.UUID, web_session.user_id) if web_session is not None else None


def _finish_request(response: Response) -> Response:
    seconds = time.perf_counter() - g.get("request_started", time.perf_counter())
    # The rule's template, never the concrete path: no ids multiplying the series, no query string.
    route = request.url_rule.rule if request.url_rule is not None else None
    # A client may send any token as a method; only the standard ones are repeated.
    method = request.method if request.method in metrics.HTTP_METHODS else "other"
    metrics.observe_request(method, route, response.status_code, seconds)
    response.headers[REQUEST_ID_HEADER] = g.get("request_id") or request_id_for(None)
    quiet = route in _QUIET_ROUTES and response.status_code < 400
    access_log.log(
        logging.DEBUG if quiet else logging.INFO,
        "%s %s %s", method, route or metrics.UNMATCHED_ROUTE, response.status_code,
        extra={
            "method": method,
            "route": route,
            "status": response.status_code,
            "duration_ms": round(seconds * 1000, 1),
            # None when the body is streamed without a declared length.
            "bytes": response.content_length,
            "user_id": _user_id(),
        },
    )
    return response


def _allowed(address: str | None, networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


@observability.get("/metrics")
def prometheus_metrics() -> Response:
    # No token: scrapers do not carry one, and the series hold no PHI. Still only for the deployment's
    # own network, and never through the public proxy, whose own address would look private.
    relayed = any(header in request.headers for header in _PROXY_HEADERS)
    if relayed or not _allowed(request.remote_addr, settings().metrics_allow):
        return error_response(403, "Metrics are served only to the addresses in METRICS_ALLOW, not through a proxy")
    registry = cast(CollectorRegistry, current_app.extensions["referral.metrics"])
    body, content_type = metrics.exposition(registry, request.headers.get("Accept"))
    response = Response(body, content_type=content_type)
    response.headers["Cache-Control"] = "no-store"
    return response


def init_observability(app: Flask) -> None:
    """Before the API and pages are registered, so the request id exists before authentication runs and
    the access line is written after every other response hook."""
    configure_logging(app.config.get("LOG_FORMAT") or "json")
    factory = cast(sessionmaker[Session], app.extensions["referral.sessionmaker"])
    app.extensions["referral.metrics"] = metrics.build_registry(factory, app.config.get("PROMETHEUS_MULTIPROC_DIR"))
    app.before_request(_start_request)
    app.after_request(_finish_request)
    app.register_blueprint(observability)
