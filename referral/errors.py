"""Domain errors raised by services. ``referral.http.errors`` turns each into the JSON error shape with the
status it names; nothing here knows about HTTP requests."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status_code = 400

    def __init__(self, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors


class NotAuthenticated(DomainError):
    status_code = 401


class Forbidden(DomainError):
    status_code = 403


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class Gone(DomainError):
    """The record existed and was deleted on purpose (a retention period, a patient's deletion)."""

    status_code = 410


class PayloadTooLarge(DomainError):
    status_code = 413


class UnsupportedMediaType(DomainError):
    status_code = 415


class ChecksumMismatch(DomainError):
    """A resumable upload's chunk whose bytes do not match the checksum sent with them (tus: 460)."""

    status_code = 460


class ValidationFailed(DomainError):
    status_code = 422


class ServiceUnavailable(DomainError):
    status_code = 503
