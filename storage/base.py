"""The storage contract shared by every backend, and the rules both backends must enforce alike.

Anything that decides what a valid key is, how a download is named, or how bytes are counted and
hashed lives here once, so the local and S3 backends cannot drift apart on those decisions.
"""

from __future__ import annotations

import abc
import hashlib
import io
import re
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO, cast
from urllib.parse import quote

MAX_KEY_LENGTH = 512
MAX_URL_EXPIRY_SECONDS = 300
# An upload form is used by a person picking a file and a slow link sending it, so it lives longer
# than a download URL; 15 minutes still bounds what a leaked form can do.
MAX_POST_EXPIRY_SECONDS = 900

# Deliberately narrow: every character here is safe unescaped in a POSIX path, an S3 key and a URL
# path, so one key means the same object on every backend and never needs escaping rules of its own.
_KEY_CHARS = re.compile(r"[A-Za-z0-9._/-]+")

# Used in Content-Disposition's quoted fallback: printable ASCII minus the quote and backslash,
# which would otherwise need escaping that some clients get wrong.
_FALLBACK_UNSAFE = re.compile(r'[^\x20-\x7e]|["\\]')
# Control characters would let a caller smuggle extra header lines into a presigned response.
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str  # lowercase hex of the bytes exactly as written


@dataclass(frozen=True)
class PresignedPost:
    """A form a client POSTs (fields first, then ``file``) to put one object without our credentials."""

    url: str
    fields: dict[str, str]
    expires_at: datetime  # never later than the expiry signed into the form's policy


@dataclass(frozen=True)
class ObjectHead:
    """What the store can say about an object without reading it."""

    size: int
    # Lowercase hex SHA-256 that the store itself computed or verified over the stored bytes; None where it
    # cannot vouch for one (a folder on disk, an S3 object stored without a SHA-256 checksum).
    sha256: str | None = None


class StorageError(Exception):
    """Base class for every failure the storage package reports."""


class ObjectNotFound(StorageError):
    """No object is stored under the key."""


class ObjectExists(StorageError):
    """The key is already taken; objects are write-once."""


class StorageUnavailable(StorageError):
    """The backend cannot be reached or is failing; retrying later may succeed (HTTP 503)."""


class InvalidKey(StorageError, ValueError):
    """The key breaks the key rules; also a ValueError because it is the caller's mistake."""


class SizeMismatch(StorageError, ValueError):
    """The stream did not hold the number of bytes the caller announced; nothing was stored."""


class PresignNotSupported(StorageError):
    """The backend cannot hand out upload forms; the bytes must come through the application."""


def validate_key(key: str) -> str:
    """Return ``key`` unchanged if it obeys the key rules, otherwise raise InvalidKey.

    The rules keep keys portable between a filesystem and S3 and make path traversal impossible
    before any backend-specific check runs.
    """
    if not isinstance(key, str):
        raise InvalidKey(f"storage key must be a string, not {type(key).__name__}")
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise InvalidKey(f"storage key must be 1 to {MAX_KEY_LENGTH} characters long")
    # fullmatch on the narrow alphabet already excludes NUL, backslash, spaces and non-ASCII.
    if not _KEY_CHARS.fullmatch(key):
        raise InvalidKey("storage key may only contain A-Z, a-z, 0-9, '.', '_', '-' and '/'")
    if key.startswith("/"):
        raise InvalidKey("storage key must not start with '/'")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidKey("storage key must not contain empty, '.' or '..' path segments")
    return key


def is_valid_key(key: str) -> bool:
    try:
        validate_key(key)
    except InvalidKey:
        return False
    return True


def validate_prefix(prefix: str) -> str:
    """A listing prefix is a key that may stop part-way: through a segment or just after a '/'.

    Only complete segments are held to the segment rules, because a partial last segment such as
    '..' may be the start of a perfectly valid name like '..notes'.
    """
    if prefix == "":
        return prefix
    if not isinstance(prefix, str) or len(prefix) > MAX_KEY_LENGTH or not _KEY_CHARS.fullmatch(prefix):
        raise InvalidKey("listing prefix may only contain the characters allowed in keys")
    if prefix.startswith("/"):
        raise InvalidKey("listing prefix must not start with '/'")
    complete_segments = prefix.split("/")[:-1]
    if any(segment in ("", ".", "..") for segment in complete_segments):
        raise InvalidKey("listing prefix must not contain empty, '.' or '..' path segments")
    return prefix


def validate_expiry(expires_in: int) -> int:
    # bool is an int subclass; True as "1 second" would only ever be a bug.
    if isinstance(expires_in, bool) or not isinstance(expires_in, int):
        raise ValueError("expires_in must be a whole number of seconds")
    if not 1 <= expires_in <= MAX_URL_EXPIRY_SECONDS:
        raise ValueError(f"expires_in must be between 1 and {MAX_URL_EXPIRY_SECONDS} seconds")
    return expires_in


def validate_post_expiry(expires_in: int) -> int:
    if isinstance(expires_in, bool) or not isinstance(expires_in, int):
        raise ValueError("expires_in must be a whole number of seconds")
    if not 1 <= expires_in <= MAX_POST_EXPIRY_SECONDS:
        raise ValueError(f"expires_in must be between 1 and {MAX_POST_EXPIRY_SECONDS} seconds")
    return expires_in


def validate_max_bytes(max_bytes: int) -> int:
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise ValueError("max_bytes must be a positive whole number of bytes")
    return max_bytes


def validate_content_type(content_type: str) -> str:
    if not isinstance(content_type, str) or not content_type.strip():
        raise ValueError("content_type must be a non-empty string")
    if _CONTROL_CHARS.search(content_type):
        raise ValueError("content_type must not contain control characters")
    return content_type


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name and the exact name as RFC 5987 UTF-8.

    Old clients read ``filename``, current ones prefer ``filename*`` (RFC 6266 section 4.3).
    Path separators and control characters are replaced, so the name can neither point a browser
    at a directory nor break the header.
    """
    if not isinstance(filename, str) or not filename.strip():
        raise ValueError("filename must be a non-empty string")
    cleaned = _CONTROL_CHARS.sub("_", filename).replace("/", "_").replace("\\", "_")
    # NFKD splits accented letters into base letter + combining mark, so dropping the non-ASCII
    # marks leaves a readable fallback ("Röntgen" -> "Rontgen") instead of underscores.
    decomposed = unicodedata.normalize("NFKD", cleaned)
    ascii_only = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    fallback = _FALLBACK_UNSAFE.sub("_", ascii_only).strip() or "download"
    encoded = quote(cleaned, safe="")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def validate_sha256(sha256: str) -> str:
    if not isinstance(sha256, str) or not _SHA256_HEX.fullmatch(sha256):
        raise ValueError("a SHA-256 is 64 lowercase hex digits")
    return sha256


def validate_range(start: int, length: int) -> None:
    for name, value in (("start", start), ("length", length)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative whole number of bytes")


def spooled_fileno(stream: object) -> int | None:
    """The descriptor of the file that holds exactly ``stream``'s bytes, when the stream offers one.

    An upload spooled to an unnamed temporary file (``referral.http.uploads.HashingSpool``) can hand that
    file over through a ``spooled_fileno()`` method: it promises that the file holds the whole stream, from
    its first byte, and that nothing will write to it again. A store on the same filesystem may then make
    that file the object instead of copying it (``LocalStorage``); every other store reads the stream as
    usual. None when the stream offers no such file or cannot hand it over now.
    """
    offer = getattr(stream, "spooled_fileno", None)
    if not callable(offer):
        return None
    try:
        fileno = offer()
    except (OSError, ValueError):
        return None
    return fileno if isinstance(fileno, int) and fileno >= 0 else None


class HashingReader:
    """Wraps the caller's stream so size and SHA-256 are computed from the very bytes written.

    ``read(n)`` always returns exactly ``n`` bytes until the end of the stream. Upload code (s3transfer
    in particular) takes a short read as end-of-stream, which would otherwise end an upload early,
    produce undersized multipart parts, or make it slurp the rest of the stream into memory.

    It reports itself as not seekable, so nothing can rewind it and hash the same bytes twice.
    """

    def __init__(self, source: BinaryIO, expected_size: int | None = None, known_sha256: str | None = None) -> None:
        if expected_size is not None and (isinstance(expected_size, bool) or expected_size < 0):
            raise ValueError("size must be a non-negative number of bytes")
        if known_sha256 is not None and not _SHA256_HEX.fullmatch(known_sha256):
            raise ValueError("a known SHA-256 is 64 lowercase hex digits")
        self._source = source
        self._expected = expected_size
        # A digest the caller computed of exactly these bytes as they arrived: they are counted, not hashed again.
        self._known = known_sha256
        self._hash = hashlib.sha256()
        self._size = 0
        self._eof = False

    @property
    def size(self) -> int:
        return self._size

    def hexdigest(self) -> str:
        return self._known if self._known is not None else self._hash.hexdigest()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def _read_some(self, n: int) -> bytes:
        data = self._source.read(n)
        if data is None:
            # A non-blocking stream with nothing ready: treating it as the end would silently
            # store a truncated object.
            raise TypeError("non-blocking streams are not supported")
        return bytes(data)

    def read(self, n: int | None = -1) -> bytes:
        if self._eof:
            return b""
        wanted = -1 if n is None or n < 0 else n
        pieces: list[bytes] = []
        got = 0
        step = wanted if wanted >= 0 else 1024 * 1024
        while wanted < 0 or got < wanted:
            data = self._read_some(step if wanted < 0 else wanted - got)
            if not data:
                self._eof = True
                break
            self._account(data)
            pieces.append(data)
            got += len(data)
        if self._eof and self._expected is not None and self._size != self._expected:
            raise SizeMismatch(f"stream held {self._size} bytes, {self._expected} were announced")
        return b"".join(pieces)

    def _account(self, data: bytes) -> None:
        self._size += len(data)
        # Fail as soon as the stream overruns, rather than after uploading the surplus.
        if self._expected is not None and self._size > self._expected:
            raise SizeMismatch(f"stream holds more than the {self._expected} bytes announced")
        if self._known is None:
            self._hash.update(data)

    def result(self, key: str) -> StoredObject:
        return StoredObject(key=key, size=self._size, sha256=self.hexdigest())


def _read_exactly(stream: BinaryIO, length: int) -> bytes:
    pieces: list[bytes] = []
    while length > 0 and (data := stream.read(length)):
        pieces.append(bytes(data))
        length -= len(data)
    return b"".join(pieces)


class RangeReader(io.RawIOBase):
    """A seekable, read-only file over one object that fetches only the ranges read from it.

    What is read from the start on is kept (up to ``keep`` bytes), so reading a header twice, as a
    scanner and then a parser do, fetches it once; each further fetch from there doubles, so a reader
    that keeps going costs few requests, and a short skip forward is fetched with what follows it
    rather than as a request of its own. A read far beyond that is served from one window of its own.
    ``fetched`` counts the bytes taken from the store and ``requests`` the ranges asked for; ``failure``
    keeps the store's error, for a caller whose parser reports any failure to read as damage. Reads
    return every byte asked for up to the end of the object, as a file does.
    """

    def __init__(self, store: Storage, key: str, size: int, *, first: int = 64 * 1024,
                 keep: int = 8 * 1024 * 1024) -> None:
        super().__init__()
        validate_range(size, first)
        self._store = store
        self._key = key
        self._size = size
        self._first = max(first, 1)
        self._window = self._first
        self._keep = keep
        self._prefix = bytearray()
        self._far = b""
        self._far_start = 0
        self._position = 0
        self.fetched = 0
        self.requests = 0
        self.failure: StorageError | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._position = base + offset
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._position < self._size:
            wanted = len(view) - done
            chunk = self._held(wanted)
            if not chunk:
                self._fetch(wanted)
                continue
            view[done:done + len(chunk)] = chunk
            done += len(chunk)
            self._position += len(chunk)
        return done

    def _held(self, wanted: int) -> bytes:
        position = self._position
        if position < len(self._prefix):
            return bytes(self._prefix[position:position + wanted])
        offset = position - self._far_start
        if 0 <= offset < len(self._far):
            return self._far[offset:offset + wanted]
        return b""

    def _fetch(self, wanted: int) -> None:
        position, end = self._position, len(self._prefix)
        if end < self._keep and position - end < self._window:
            length = min(max(self._window, position + wanted - end), self._size - end)
            self._prefix += self._get(end, length)
            self._window = min(self._window * 2, self._keep)
        else:
            length = min(max(self._first, wanted), self._size - position)
            self._far, self._far_start = self._get(position, length), position

    def _get(self, start: int, length: int) -> bytes:
        try:
            data = self._store.open_range(self._key, start, length)
            if len(data) < length:
                # The object is shorter than the size it was opened with: it changed, or the store lost bytes.
                raise StorageError(f"object under {self._key!r} ended before the size it was opened with")
        except StorageError as exc:
            self.failure = exc
            raise
        self.fetched += len(data)
        self.requests += 1
        return data


class _Joined:
    """Several readable streams read one after the other, as one."""

    def __init__(self, streams: list[BinaryIO]) -> None:
        self._streams = list(streams)

    def read(self, n: int | None = -1) -> bytes:
        while self._streams:
            data = self._streams[0].read(n if n is not None and n >= 0 else 1024 * 1024)
            if data:
                return bytes(data)
            self._streams.pop(0)
        return b""


class Storage(abc.ABC):
    """A write-once object store addressed by keys that obey ``validate_key``.

    Backends translate their own failures into the StorageError family, so callers never need to
    know which backend is configured. Errors raised by the caller's stream are not translated:
    they propagate unchanged, after the backend has removed whatever it had started writing.
    """

    backend: str

    @abc.abstractmethod
    def put(self, key: str, stream: BinaryIO, *, content_type: str, size: int | None = None,
            sha256: str | None = None) -> StoredObject:
        """Store the stream's bytes under a new key. ``size``, when given, is the exact length the
        stream must hold (SizeMismatch otherwise). ``sha256``, when given, is the digest the caller
        already computed of exactly these bytes (an upload hashed as it was spooled): it is returned
        as the object's digest and the bytes are not hashed a second time. Raises ObjectExists if
        the key is taken; after any failure nothing is stored under the key."""

    @abc.abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A readable stream of the object's bytes; the caller must close it."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; a missing key is not an error."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def size(self, key: str) -> int: ...

    @abc.abstractmethod
    def last_modified(self, key: str) -> datetime:
        """When the object was written, timezone-aware UTC (ObjectNotFound if there is none). The
        integrity check leaves objects younger than its grace period alone: they may belong to an
        upload whose row is about to be committed."""

    @abc.abstractmethod
    def url(
        self,
        key: str,
        *,
        expires_in: int = MAX_URL_EXPIRY_SECONDS,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> str | None:
        """A download URL valid for at most 300 seconds, or None where the backend has none.
        The URL is issued without checking that the object exists."""

    def presign_post(self, key: str, *, max_bytes: int, content_type: str, expires_in: int,
                     sha256: str | None = None) -> PresignedPost:
        """A form that lets a client put one object of 1 to ``max_bytes`` bytes under ``key``, with the
        given Content-Type, for at most 900 seconds. Until it expires the form can be used again and
        replace what it wrote, so callers copy the object elsewhere before trusting it. With ``sha256``
        the form also pins the file's digest, for a store that refuses a body whose digest differs.
        Backends that cannot sign forms raise PresignNotSupported."""
        validate_key(key)
        validate_max_bytes(max_bytes)
        validate_content_type(content_type)
        validate_post_expiry(expires_in)
        if sha256 is not None:
            validate_sha256(sha256)
        raise PresignNotSupported(f"{type(self).__name__} cannot issue upload forms")

    def head(self, key: str) -> ObjectHead:
        """The object's size and, where the store vouches for it, its SHA-256 (ObjectNotFound if there is
        none). This default vouches for nothing."""
        return ObjectHead(size=self.size(key))

    def open_range(self, key: str, start: int, length: int) -> bytes:
        """Up to ``length`` bytes of the object from byte ``start``: fewer at its end, none past it
        (ObjectNotFound if there is no object). This default reads through the object's start."""
        validate_range(start, length)
        with self.open(key) as stream:
            while start > 0:
                skipped = len(stream.read(min(start, 1024 * 1024)))
                if not skipped:
                    return b""
                start -= skipped
            return _read_exactly(stream, length)

    def copy(self, source: str, destination: str) -> None:
        """Store the bytes of ``source`` under the new key ``destination`` (ObjectNotFound if the
        source is missing, ObjectExists if the destination is taken). Streams through this process;
        backends that can copy in place override it."""
        validate_key(destination)
        with self.open(source) as stream:
            self.put(destination, stream, content_type="application/octet-stream")

    # -- multipart objects: an object written in parts that arrive over time (resumable uploads) ---------------

    #: The smallest part a backend accepts, except the last one of an object.
    min_part_size: int = 1

    def start_multipart(self, key: str) -> str:
        """Begin an object under ``key`` that will be written part by part; returns the id of the multipart
        upload. Nothing is stored under ``key`` until ``complete_multipart``. This default keeps each part as
        an object of its own beside ``key`` (``<key>.part-<id>-<n>``); S3 uses its own multipart upload."""
        validate_key(key)
        return uuid.uuid4().hex

    def _part_key(self, key: str, upload_id: str, number: int) -> str:
        if not re.fullmatch(r"[0-9a-f]{32}", upload_id):
            raise InvalidKey("not a multipart upload id of this store")
        return validate_key(f"{key}.part-{upload_id}-{number:05d}")

    def put_part(self, key: str, upload_id: str, number: int, stream: BinaryIO, *, size: int) -> str:
        """Store part ``number`` (1 to 10000) of exactly ``size`` bytes; returns its tag for completion. Sending a
        part again replaces it."""
        part_key = self._part_key(key, upload_id, number)
        self.delete(part_key)
        stored = self.put(part_key, stream, content_type="application/octet-stream", size=size)
        return stored.sha256

    def complete_multipart(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        """Join the parts, in order of their numbers, into the object under ``key`` (ObjectExists if it is
        taken); the parts are gone afterwards."""
        ordered = sorted(parts)
        streams = [self.open(self._part_key(key, upload_id, number)) for number, _tag in ordered]
        try:
            self.put(key, cast(BinaryIO, _Joined(streams)), content_type="application/octet-stream")
        finally:
            for stream in streams:
                stream.close()
        self.abort_multipart(key, upload_id)

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Discard every part sent for the multipart upload; nothing is stored under ``key`` by it."""
        prefix = self._part_key(key, upload_id, 0)[:-5]
        for part_key in list(self.keys(prefix)):
            self.delete(part_key)

    @abc.abstractmethod
    def keys(self, prefix: str = "") -> Iterator[str]:
        """Every stored key starting with ``prefix`` (a plain string prefix), in no set order."""

    @abc.abstractmethod
    def check(self) -> None:
        """Raise StorageUnavailable unless the store is reachable; cheap enough for a probe."""

    def close(self) -> None:  # noqa: B027 - deliberately optional for backends holding nothing
        """Release connections or handles the backend owns. Safe to call more than once."""
