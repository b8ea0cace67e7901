"""One log line per record: a JSON object (or plain text for a developer's terminal), with the
request id, and only fields from an allow-list.

Logs leave the PHI boundary: they go to files, collectors and support tickets. So a line carries ids,
codes, counts and timings, never names, birth dates, DICOM text, filenames, request bodies or query
strings. Messages are written that way by hand; the allow-list makes a careless
``log.info("...", extra={"patient_name": ...})`` harmless, and exception text (which can quote a
value) is left out: a traceback shows the code path and the exception type only.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from types import TracebackType
from typing import TextIO

from flask import g, has_request_context

# Fields a call may add with ``extra=``: ids, codes, counts and timings. Anything else is dropped.
ALLOWED_FIELDS = frozenset({
    "request_id", "method", "route", "status", "duration_ms", "bytes", "user_id", "organization_id",
    "referral_id", "image_id", "report_id", "claim_id", "event_id", "delivery_id", "webhook_id",
    "outcome", "count", "redacted_fields",
})
# What every LogRecord has, so that whatever else a record carries came from ``extra=``.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName",
}
# Libraries whose INFO and DEBUG lines quote data: SQLAlchemy logs result rows (patients among them),
# botocore request parameters and response bodies, urllib3 and the development server full URLs with
# their query strings. They stay at WARNING even when the root logger is turned up to DEBUG; the app
# writes its own access line.
QUIET_LIBRARIES = ("sqlalchemy.engine", "sqlalchemy.pool", "botocore", "boto3", "s3transfer", "urllib3", "werkzeug")
_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]


def _exception_without_text(exc_info: _ExcInfo) -> tuple[str, str]:
    """The exception's type and the frames it passed through; its message may quote a value."""
    exc_type, _, tb = exc_info
    name = exc_type.__name__ if exc_type is not None else "Exception"
    return name, "".join(traceback.format_tb(tb))


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record: the current request's, or None outside a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = g.get("request_id") if has_request_context() else None
        if request_id is not None or not hasattr(record, "request_id"):
            record.request_id = request_id
        return True


class AllowListFilter(logging.Filter):
    """Removes every ``extra=`` field not in ``ALLOWED_FIELDS`` and counts how many it removed."""

    def filter(self, record: logging.LogRecord) -> bool:
        dropped = [key for key in vars(record) if key not in _RECORD_ATTRIBUTES and key not in ALLOWED_FIELDS]
        for key in dropped:
            delattr(record, key)
        if dropped:
            record.redacted_fields = len(dropped)
        return True


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", "request_id", ...allowed fields}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        # Checked again here, so a handler built without AllowListFilter still writes nothing else.
        for key in sorted(ALLOWED_FIELDS.intersection(vars(record))):
            line.setdefault(key, getattr(record, key))
        if record.exc_info:
            line["exc_type"], line["traceback"] = _exception_without_text(record.exc_info)
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, default=str, ensure_ascii=False, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """``time level logger [request id] message`` for reading in a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = None
        return super().format(record)

    def formatException(self, ei: _ExcInfo) -> str:  # noqa: N802 - logging's name
        name, frames = _exception_without_text(ei)
        return f"Traceback (most recent call last):\n{frames}{name}"


class ConsoleHandler(logging.Handler):
    """Writes each record as one line to ``stream``, or to whatever ``sys.stderr`` is when it writes
    (so a test's captured stderr, or a worker's redirected one, gets the lines)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self._stream = stream

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            stream = self.stream
            stream.write(line + "\n")
            stream.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


def configure_logging(log_format: str = "json", stream: TextIO | None = None) -> ConsoleHandler:
    """Put one console handler on the root logger (replacing one an earlier call put there) and let the
    app's own loggers speak at INFO. Other libraries keep the root's level (WARNING by default)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, ConsoleHandler):
            root.removeHandler(handler)
            handler.close()
    handler = ConsoleHandler(stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    handler.addFilter(AllowListFilter())
    root.addHandler(handler)
    app_logger = logging.getLogger("referral")
    if app_logger.level == logging.NOTSET:
        app_logger.setLevel(logging.INFO)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler
