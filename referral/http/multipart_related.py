"""``multipart/related`` bodies, as DICOMweb sends and answers them.

Reading: the request body is spooled to a temporary file (the app's body size limit applies), then cut at
the boundary; each part is copied into a ``HashingSpool`` so it reaches the intake hashed and counted, like
a file of a form upload. Writing: parts are streamed one after another from their sources.
"""

from __future__ import annotations

import mmap
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, BinaryIO

from werkzeug.datastructures import Headers
from werkzeug.http import parse_options_header

from referral.errors import DomainError, UnsupportedMediaType
from referral.http.uploads import HashingSpool

MAX_PARTS = 100
_CHUNK = 256 * 1024
_HEADERS_LIMIT = 8 * 1024


class MalformedBody(DomainError):
    """400: a multipart body that cannot be cut into its parts."""


@dataclass
class Part:
    content_type: str | None
    spool: HashingSpool


def media_type(header: str | None) -> tuple[str, dict[str, str]]:
    value, options = parse_options_header(header or "")
    return value.lower(), {key.lower(): val for key, val in options.items()}


def _part_headers(raw: bytes) -> Headers:
    headers = Headers()
    for line in raw.decode("latin-1").split("\r\n"):
        name, sep, value = line.partition(":")
        if sep and name.strip():
            headers.add(name.strip(), value.strip())
    return headers


def read_parts(stream: IO[bytes], content_type: str | None, *, part_type: str, limit: int,
               directory: str | None) -> list[Part]:
    """The parts of a ``multipart/related`` body whose root type is ``part_type``. Refuses (415) another
    media type or another ``type``; refuses (400) a body without a boundary, without parts or cut short."""
    kind, options = media_type(content_type)
    if kind != "multipart/related":
        raise UnsupportedMediaType(f"Send the instances as multipart/related; type=\"{part_type}\"")
    declared = options.get("type")
    if declared is not None and declared.lower() != part_type:
        raise UnsupportedMediaType(f"This server stores only {part_type} parts, not {declared}")
    boundary = options.get("boundary")
    if not boundary:
        raise MalformedBody("The multipart body has no boundary parameter")
    with tempfile.TemporaryFile(dir=directory) as body:
        shutil.copyfileobj(stream, body, _CHUNK)
        body.flush()  # mmap sees the file, not what is still in the buffer
        size = body.tell()
        if size == 0:
            raise MalformedBody("The request body is empty")
        with mmap.mmap(body.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _cut(data, size, boundary.encode("latin-1"), limit=limit, directory=directory,
                        part_type=part_type)


def _cut(data: mmap.mmap, size: int, boundary: bytes, *, limit: int, directory: str | None,
         part_type: str) -> list[Part]:
    marker = b"--" + boundary
    delimiter = b"\r\n" + marker
    position = data.find(marker)
    if position < 0:
        raise MalformedBody("The multipart body does not contain its boundary")
    position += len(marker)
    parts: list[Part] = []
    try:
        while True:
            if data[position:position + 2] == b"--":
                break  # the closing delimiter
            line_end = data.find(b"\r\n", position)
            if line_end < 0:
                raise MalformedBody("The multipart body ends inside a part")
            header_end = data.find(b"\r\n\r\n", line_end)
            if header_end < 0 or header_end - line_end > _HEADERS_LIMIT:
                raise MalformedBody("A part of the multipart body has no end to its headers")
            headers = _part_headers(data[line_end + 2:header_end]) if header_end > line_end else Headers()
            start = header_end + 4
            end = data.find(delimiter, start)
            if end < 0:
                raise MalformedBody("The multipart body is cut short: a part has no closing boundary")
            part_kind, _ = media_type(headers.get("Content-Type"))
            if part_kind and part_kind != part_type:
                raise UnsupportedMediaType(f"This server stores only {part_type} parts, not {part_kind}")
            if len(parts) == MAX_PARTS:
                raise MalformedBody(f"Send at most {MAX_PARTS} instances in one request")
            spool = HashingSpool(limit, directory)
            parts.append(Part(content_type=part_kind or None, spool=spool))
            for offset in range(start, end, _CHUNK):
                spool.write(data[offset:min(offset + _CHUNK, end)])
            spool.seek(0)
            position = end + len(delimiter)
    except BaseException:
        close_parts(parts)
        raise
    if not parts or position > size:
        raise MalformedBody("The multipart body has no parts")
    return parts


def close_parts(parts: Iterable[Part]) -> None:
    for part in parts:
        part.spool.close()


def new_boundary() -> str:
    return uuid.uuid4().hex


def stream_parts(boundary: str, parts: Iterable[tuple[str, Callable[[], BinaryIO]]]) -> Iterator[bytes]:
    """The body of a ``multipart/related`` answer: each (content type, opener) part in turn, read in chunks."""
    for content_type, opener in parts:
        yield f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode("latin-1")
        source = opener()
        try:
            while chunk := source.read(_CHUNK):
                yield chunk
        finally:
            source.close()
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode("latin-1")
