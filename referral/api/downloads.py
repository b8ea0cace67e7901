"""Stored bytes sent back as attachments that a browser will never render in place."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

from flask import Response

_CHUNK = 256 * 1024


def _stream(body: BinaryIO) -> Iterator[bytes]:
    try:
        while chunk := body.read(_CHUNK):
            yield chunk
    finally:
        body.close()


def binary_content(*media_types: str) -> dict[str, Any]:
    """The OpenAPI ``content`` of a download that comes as one of ``media_types``."""
    return {media_type: {"schema": {"type": "string", "format": "binary"}} for media_type in media_types}


def attachment(body: BinaryIO, *, content_type: str, filename: str, size: int | None = None) -> Response:
    response = Response(_stream(body), mimetype=content_type, direct_passthrough=True)
    if size is not None:
        response.headers["Content-Length"] = str(size)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response
