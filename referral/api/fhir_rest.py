"""The read-only FHIR R4 API at /fhir/R4: metadata, read by id and search, answered in application/fhir+json.

It speaks FHIR rather than the JSON API's dialect: every error is an OperationOutcome with the HTTP status the
JSON API would give (401 without a valid bearer token, 403 for a role that may not, 404 for anything of another
practice, 410 for a deleted patient), unknown search parameters are refused with 400, and writes are 405.
Authentication is by API token only: the browser session cookie of the pages is not accepted here.
"""

from __future__ import annotations

import json
import logging
import traceback
from http import HTTPStatus
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, g, request
from sqlalchemy.exc import OperationalError
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

from referral.db import utcnow
from referral.errors import DomainError, NotAuthenticated, NotFound, ValidationFailed
from referral.fhir.capability import (
    COMMON_SEARCH_PARAMETERS,
    DEFAULT_COUNT,
    FHIR_JSON,
    JSON_FORMATS,
    MAX_COUNT,
    READABLE_TYPES,
    SEARCH_PARAMETERS,
    capability_statement,
)
from referral.http.auth import actor_of, bearer_user
from referral.http.context import current_actor, db_session, settings
from referral.services import fhir_api
from referral.services.actor import Actor

log = logging.getLogger(__name__)

FHIR_PREFIX = "/fhir/R4"
ALLOWED_METHODS = "GET, HEAD"
_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]

blp = Blueprint("fhir_r4", __name__, url_prefix=FHIR_PREFIX)


class BadRequest(DomainError):
    """A request FHIR's rules refuse with 400: an unknown or malformed search parameter."""


class NotAcceptable(DomainError):
    status_code = 406


class MethodNotAllowed(DomainError):
    status_code = 405


# The OperationOutcome issue type for each status an answer can have.
_ISSUE_CODES = {
    400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported", 406: "not-supported",
    409: "conflict", 410: "deleted", 413: "too-costly", 415: "not-supported", 422: "invalid", 429: "throttled",
    500: "exception", 503: "transient",
}


def base_url() -> str:
    return request.url_root.rstrip("/") + FHIR_PREFIX


def fhir_response(body: dict[str, Any], status: int = 200) -> Response:
    response = Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=FHIR_JSON)
    # Patients' records: no shared cache may keep them.
    response.headers["Cache-Control"] = "no-store"
    return response


def operation_outcome(status: int, message: str, expression: list[str] | None = None) -> Response:
    issue: dict[str, Any] = {
        "severity": "fatal" if status >= 500 else "error",
        "code": _ISSUE_CODES.get(status, "processing"),
        "diagnostics": message,
    }
    if expression:
        issue["expression"] = expression
    response = fhir_response({"resourceType": "OperationOutcome", "issue": [issue]}, status)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="fhir"'
    if status == 405:
        response.headers["Allow"] = ALLOWED_METHODS
    return response


# NotAuthenticated is named on its own: the app's handler for exactly that class would otherwise win.
@blp.errorhandler(NotAuthenticated)
@blp.errorhandler(DomainError)
def _domain_error(exc: DomainError) -> Response:
    return operation_outcome(exc.status_code, exc.message, sorted(exc.errors) if exc.errors else None)


@blp.errorhandler(429)
def _too_many_requests(exc: HTTPException) -> Response:
    # The limiter's own answer (JSON, with Retry-After) becomes an OperationOutcome with the same wait.
    limited = getattr(exc, "response", None)
    message = "Too many requests"
    if isinstance(limited, Response) and limited.is_json:
        message = (limited.get_json(silent=True) or {}).get("message", message)
    response = operation_outcome(429, message)
    if isinstance(limited, Response) and "Retry-After" in limited.headers:
        response.headers["Retry-After"] = limited.headers["Retry-After"]
    return response


@blp.errorhandler(OperationalError)
def _database_unavailable(exc: OperationalError) -> Response:
    log.warning("database unavailable: %s", type(exc.orig).__name__)
    return operation_outcome(503, "The database is unavailable; try again shortly.")


@blp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    return operation_outcome(status, exc.description or HTTPStatus(status).phrase)


@blp.errorhandler(Exception)
def _unexpected(exc: Exception) -> Response:
    if settings().env == "test":
        raise exc  # a bug in a test shows its traceback, as on the JSON API
    # As the JSON API does: the traceback names code, not values; the exception's text can hold PHI.
    log.error("unhandled %s\n%s", type(exc).__name__, "".join(traceback.format_tb(exc.__traceback__)))
    return operation_outcome(500, "Internal server error")


@blp.before_request
def _check_request() -> None:
    """GET only; JSON only; a bearer token for everything but the CapabilityStatement."""
    if request.method not in ("GET", "HEAD"):
        raise MethodNotAllowed("This FHIR API is read-only; changes are made through the JSON API at /api/v1")
    requested = request.args.get("_format")
    if requested is not None and requested not in JSON_FORMATS:
        raise NotAcceptable("Only JSON is served: use _format=json or leave it out")
    if not _accepts_json():
        raise NotAcceptable("Only application/fhir+json is served")
    if request.endpoint == "fhir_r4.metadata":
        return
    g.actor = _authenticate()


_JSON_MEDIA_TYPES = frozenset({FHIR_JSON, "application/json", "application/*", "*/*"})


def _accepts_json() -> bool:
    """No Accept header, or one that takes JSON; FHIR's own parameters (``;fhirVersion=4.0``) are ignored."""
    accept = request.accept_mimetypes
    if not accept:
        return True
    return any(value.split(";")[0].strip().lower() in _JSON_MEDIA_TYPES and quality > 0 for value, quality in accept)


def _authenticate() -> Actor:
    # Bearer tokens only, checked like the JSON API's: the pages' session cookie is not accepted here.
    header = request.headers.get("Authorization", "")
    if not header:
        raise NotAuthenticated("Send an API token as 'Authorization: Bearer <token>'")
    return actor_of(bearer_user(header))


def _software_version() -> str:
    try:
        return version("teledentistry-referral")
    except PackageNotFoundError:
        return "unknown"


@blp.route("/metadata", methods=_ALL_METHODS)
def metadata() -> Response:
    """The CapabilityStatement: what this server reads and searches. Public, as FHIR clients expect."""
    return fhir_response(capability_statement(base_url(), _software_version(), utcnow().date().isoformat()))


def _resource_type(name: str) -> str:
    if name not in READABLE_TYPES:
        raise NotFound(f"This server has no resources of type {name!r}; see {FHIR_PREFIX}/metadata")
    return name


@blp.route("/<resource_type>/<resource_id>", methods=_ALL_METHODS)
def read(resource_type: str, resource_id: str) -> Response:
    resource = fhir_api.read(db_session(), current_actor(), _resource_type(resource_type), resource_id, base_url())
    return fhir_response(resource)


def _count(raw: list[str]) -> int:
    if not raw:
        return DEFAULT_COUNT
    if len(raw) > 1 or not raw[0].isdigit() or not 1 <= int(raw[0]) <= MAX_COUNT:
        raise BadRequest(f"_count must be one whole number from 1 to {MAX_COUNT}", {"_count": ["Invalid."]})
    return int(raw[0])


def _parse_search(resource_type: str, args: MultiDict[str, str]) -> fhir_api.Search:
    declared = {p.name: p for p in SEARCH_PARAMETERS.get(resource_type, ())}
    if not declared:
        raise MethodNotAllowed(f"{resource_type} is read by id only; see {FHIR_PREFIX}/metadata")
    unknown = sorted(set(args) - set(declared) - set(COMMON_SEARCH_PARAMETERS))
    if unknown:
        # Modifiers (patient:missing) and chains (patient.name) are not supported either: they are unknown names.
        raise BadRequest(f"Unknown search parameter(s) for {resource_type}: {', '.join(unknown)}. "
                         f"Supported: {', '.join(declared)}, _count", {name: ["Not supported."] for name in unknown})
    criteria: dict[str, list[list[str]]] = {}
    for name in declared:
        groups = [raw.split(",") for raw in args.getlist(name)]
        if not groups:
            continue
        values = [value for group in groups for value in group]
        if any(not value.strip() for value in values):
            raise BadRequest(f"Search parameter {name} has an empty value", {name: ["Empty value."]})
        if name == "status" and resource_type == "ServiceRequest":
            wrong = sorted(set(values) - set(fhir_api.REFERRAL_STATUSES_BY_REQUEST_STATUS))
            if wrong:
                allowed = ", ".join(fhir_api.REFERRAL_STATUSES_BY_REQUEST_STATUS)
                raise BadRequest(f"Unknown ServiceRequest status {', '.join(wrong)}; use one of {allowed}",
                                 {name: ["Unknown code."]})
        criteria[name] = groups
    tokens = args.getlist("_page_token")
    if len(tokens) > 1:
        raise BadRequest("_page_token is given once, as the next link carries it", {"_page_token": ["Repeated."]})
    return fhir_api.Search(resource_type=resource_type, criteria=criteria, count=_count(args.getlist("_count")),
                           page_token=tokens[0] if tokens else None)


def _link(resource_type: str, search: fhir_api.Search, page_token: str | None) -> str:
    pairs = [(name, ",".join(group)) for name, groups in sorted(search.criteria.items()) for group in groups]
    pairs.append(("_count", str(search.count)))
    if page_token:
        pairs.append(("_page_token", page_token))
    return f"{base_url()}/{resource_type}?{urlencode(pairs)}"


@blp.route("/<resource_type>", methods=_ALL_METHODS)
def search(resource_type: str) -> Response:
    query = _parse_search(_resource_type(resource_type), request.args)
    try:
        result = fhir_api.search(db_session(), current_actor(), query, base_url())
    except ValidationFailed as exc:
        # The only thing a checked search can still get wrong is a page token that was not ours.
        raise BadRequest(exc.message, exc.errors) from None
    links = [{"relation": "self", "url": _link(resource_type, query, query.page_token)}]
    if result.next_page_token:
        links.append({"relation": "next", "url": _link(resource_type, query, result.next_page_token)})
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "timestamp": utcnow().isoformat(),
    }
    if result.total is not None:
        bundle["total"] = result.total
    bundle["link"] = links
    if result.resources:
        bundle["entry"] = [{"fullUrl": f"{base_url()}/{r['resourceType']}/{r['id']}", "resource": r,
                            "search": {"mode": "match"}} for r in result.resources]
    return fhir_response(bundle)


@blp.route("/", methods=_ALL_METHODS, defaults={"rest": ""})
@blp.route("/<path:rest>", methods=_ALL_METHODS)
def unknown(rest: str) -> Response:
    raise NotFound(f"Nothing is served at {FHIR_PREFIX}/{rest}; see {FHIR_PREFIX}/metadata")
