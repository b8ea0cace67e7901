"""Request bodies that stream to disk while they are hashed and counted.

Werkzeug hands each multipart file part to a stream factory. Ours writes it to an unnamed temporary
file and feeds SHA-256 as it goes, so the body is never held in memory and the digest costs no
second read. A file part larger than ``MAX_UPLOAD_BYTES`` is refused with 413 as soon as it passes
the limit. A raw body (``Content-Type: application/dicom`` and the other image types) is spooled the same
way by ``UploadRequest.spool_body``.

On Linux the spool is an O_TMPFILE file, which has no name until one is given to it: when it is made on the
filesystem of a local-folder store, the store links the spooled file into place instead of copying its bytes
(``storage.local.LocalStorage``). Set ``UPLOAD_TMP_DIR`` to a folder on the store's filesystem for that.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from typing import IO, Any

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge

from referral.http.context import settings

_CHUNK = 1024 * 1024


def _unnamed_file(directory: str | None) -> IO[bytes]:
    """A temporary file without a name, which the process can still give one later: O_TMPFILE without O_EXCL
    (``tempfile.TemporaryFile`` adds O_EXCL, which forbids that). Elsewhere, or on a filesystem without
    O_TMPFILE, an ordinary temporary file, which the store copies."""
    flag = getattr(os, "O_TMPFILE", 0)
    if flag:
        with contextlib.suppress(OSError):
            fd = os.open(directory or tempfile.gettempdir(), os.O_RDWR | flag, 0o600)
            return os.fdopen(fd, "w+b")
    return tempfile.TemporaryFile(dir=directory)


class HashingSpool:
    """A write-once temporary file that knows its SHA-256 and size."""

    def __init__(self, limit: int, directory: str | None = None) -> None:
        self._file: IO[bytes] = _unnamed_file(directory)
        self._digest = hashlib.sha256()
        self._limit = limit
        self._handed_over = False
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._handed_over:
            raise ValueError("the spooled file was handed over to the store; it cannot be written to")
        self.size += len(data)
        if self.size > self._limit:
            raise RequestEntityTooLarge(
                f"The file is larger than the {self._limit} byte limit; nothing was stored."
            )
        self._digest.update(data)
        return self._file.write(data)

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def spooled_fileno(self) -> int:
        """The spool file's descriptor, for a store that can make the file itself the stored object
        (``storage.base.spooled_fileno``): from here on nothing writes to it."""
        self._file.flush()
        self._handed_over = True
        return self._file.fileno()

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)

    def readinto(self, buffer: Any) -> int:
        return self._file.readinto(buffer)  # type: ignore[attr-defined]

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    @property
    def closed(self) -> bool:
        return self._file.closed

    def __iter__(self) -> Any:
        return iter(self._file)

    def __enter__(self) -> HashingSpool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class UploadRequest(Request):
    _spools: list[HashingSpool]

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        return self._new_spool()  # type: ignore[return-value]

    def _new_spool(self) -> HashingSpool:
        configured = settings()
        spool = HashingSpool(configured.max_upload_bytes, configured.upload_tmp_dir)
        # Kept here so that a part abandoned half-way (a 413 mid-stream) is still closed with the request.
        self.__dict__.setdefault("_spools", []).append(spool)
        return spool

    def spool_body(self) -> HashingSpool:
        """The whole body, streamed to a spool exactly as a multipart file part is: hashed and counted as
        it arrives, and refused with 413 past ``MAX_UPLOAD_BYTES`` (at once, unread, when its
        Content-Length says so). The spool is closed with the request."""
        limit = settings().max_upload_bytes
        if self.content_length is not None and self.content_length > limit:
            raise RequestEntityTooLarge(f"The file is larger than the {limit} byte limit; nothing was stored.")
        spool = self._new_spool()
        stream = self.stream
        while chunk := stream.read(_CHUNK):
            spool.write(chunk)
        spool.flush()
        spool.seek(0)
        return spool

    def close(self) -> None:
        super().close()
        for spool in self.__dict__.get("_spools", []):
            spool.close()
