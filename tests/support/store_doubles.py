"""Stores that forward every call to a real one, for tests that break one operation at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import BinaryIO

from storage import ObjectHead, PresignedPost, Storage, StorageUnavailable, StoredObject


class DelegatingStore(Storage):
    """Every operation goes to ``inner`` unchanged; subclasses override the ones they make fail."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.backend = inner.backend

    def put(self, key: str, stream: BinaryIO, *, content_type: str, size: int | None = None,
            sha256: str | None = None) -> StoredObject:
        return self.inner.put(key, stream, content_type=content_type, size=size, sha256=sha256)

    def open(self, key: str) -> BinaryIO:
        return self.inner.open(key)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def size(self, key: str) -> int:
        return self.inner.size(key)

    def last_modified(self, key: str) -> datetime:
        return self.inner.last_modified(key)

    def url(self, key: str, *, expires_in: int = 300, filename: str | None = None,
            content_type: str | None = None) -> str | None:
        return self.inner.url(key, expires_in=expires_in, filename=filename, content_type=content_type)

    def presign_post(self, key: str, *, max_bytes: int, content_type: str, expires_in: int,
                     sha256: str | None = None) -> PresignedPost:
        return self.inner.presign_post(key, max_bytes=max_bytes, content_type=content_type, expires_in=expires_in,
                                       sha256=sha256)

    def head(self, key: str) -> ObjectHead:
        return self.inner.head(key)

    def open_range(self, key: str, start: int, length: int) -> bytes:
        return self.inner.open_range(key, start, length)

    def copy(self, source: str, destination: str) -> None:
        self.inner.copy(source, destination)

    def keys(self, prefix: str = "") -> Iterator[str]:
        return self.inner.keys(prefix)

    def check(self) -> None:
        self.inner.check()


class FlakyStore(DelegatingStore):
    """Delegates to a real store. ``fail_puts`` / ``fail_deletes`` make those calls raise StorageUnavailable
    without touching the store; ``after_put(key)`` runs once a put has succeeded (to break something else at
    exactly that moment)."""

    def __init__(self, inner: Storage) -> None:
        super().__init__(inner)
        self.fail_puts = False
        self.fail_deletes = False
        self.after_put: Callable[[str], None] | None = None
        self.failed_deletes: list[str] = []

    def put(self, key: str, stream: BinaryIO, *, content_type: str, size: int | None = None,
            sha256: str | None = None) -> StoredObject:
        if self.fail_puts:
            raise StorageUnavailable("injected: store refuses writes")
        stored = self.inner.put(key, stream, content_type=content_type, size=size, sha256=sha256)
        if self.after_put is not None:
            self.after_put(key)
        return stored

    def delete(self, key: str) -> None:
        if self.fail_deletes:
            self.failed_deletes.append(key)
            raise StorageUnavailable("injected: store refuses deletes")
        self.inner.delete(key)
