"""The one place that turns every error into the JSON shape ``{"code", "status", "message", "errors"}``."""

from __future__ import annotations

import logging
import traceback
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, jsonify
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from referral.errors import DomainError, NotAuthenticated
from storage import StorageUnavailable

# The logger keeps its established name: operators filter on it.
log = logging.getLogger("referral.errors")


def error_response(status: int, message: str, errors: dict[str, Any] | None = None) -> Response:
    payload: dict[str, Any] = {
        "code": status,
        "status": HTTPStatus(status).phrase,
        "message": message,
    }
    if errors:
        payload["errors"] = errors
    response = jsonify(payload)
    response.status_code = status
    return response


def _field_names(messages: Any) -> list[str]:
    names: list[str] = []
    if isinstance(messages, dict):
        for location_or_field, value in messages.items():
            if isinstance(value, dict) and location_or_field in ("json", "form", "files", "query", "headers"):
                names.extend(_field_names(value))
            else:
                names.append(str(location_or_field))
    return names


def _handle_http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    errors = data.get("messages") if isinstance(data, dict) else None
    message = data.get("message") if isinstance(data, dict) else None
    if errors and not message:
        # Field names in words ("birth date", not "birth_date"): people read this message.
        names = sorted({name.replace("_", " ") for name in _field_names(errors)})
        message = "Invalid input: " + ", ".join(names) if names else None
    if not message:
        message = exc.description or HTTPStatus(status).phrase
    response = error_response(status, message, errors)
    if status == 405 and hasattr(exc, "valid_methods") and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def _handle_domain_error(exc: DomainError) -> Response:
    return error_response(exc.status_code, exc.message, exc.errors)


def _handle_storage_unavailable(exc: StorageUnavailable) -> Response:
    log.warning("object store unavailable: %s", type(exc).__name__)
    return error_response(503, "The image store is unavailable; nothing was stored. Try again shortly.")


def _handle_database_unavailable(exc: OperationalError) -> Response:
    # Connection lost, server restarting, lock timeout: the transaction was rolled back, so nothing of this
    # request was committed unless an earlier step had already said so.
    log.warning("database unavailable: %s", type(exc.orig).__name__)
    return error_response(503, "The database is unavailable; try again shortly.")


def _handle_unexpected(exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        return _handle_http_exception(exc)
    # The traceback names code, not values; exception text can hold PHI, so it is not logged.
    log.error("unhandled %s\n%s", type(exc).__name__, "".join(traceback.format_tb(exc.__traceback__)))
    return error_response(500, "Internal server error")


def _handle_unauthenticated(exc: NotAuthenticated) -> Response:
    response = error_response(401, exc.message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def register_error_handlers(app: Flask, *, catch_unexpected: bool = True) -> None:
    """``catch_unexpected=False`` (the test app) lets a bug raise with its traceback instead of becoming a 500."""
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(NotAuthenticated, _handle_unauthenticated)
    app.register_error_handler(DomainError, _handle_domain_error)
    app.register_error_handler(StorageUnavailable, _handle_storage_unavailable)
    app.register_error_handler(OperationalError, _handle_database_unavailable)
    if catch_unexpected:
        catch_unexpected_errors(app)


def catch_unexpected_errors(app: Flask) -> None:
    """Answer a bug with a plain 500, logging its type and traceback but not its message (production)."""
    app.register_error_handler(Exception, _handle_unexpected)
