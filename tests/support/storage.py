"""Streams for storage tests: deterministic bytes made on demand (so a large upload never exists in memory),
and reading a stored object back as its size and SHA-256."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

from storage import Storage

MiB = 1024 * 1024
CONTENT_TYPE = "application/octet-stream"


class SourceError(Exception):
    """Stands in for an upload stream breaking, e.g. a client disconnecting mid-request."""


class PatternStream:
    """Deterministic pseudo-random bytes made on demand, so a large upload never exists in memory.

    Bytes come from fixed-size blocks generated in order, so the content does not depend on how the
    consumer sizes its reads. Reads are deliberately short and odd-sized, as network streams are.
    ``fail_at`` raises SourceError once that many bytes have been delivered; ``on_position`` runs
    once when delivery first reaches ``trigger_at``.
    """

    BLOCK = 64 * 1024

    def __init__(
        self,
        total: int,
        *,
        seed: int = 1,
        max_read: int = 100_003,
        fail_at: int | None = None,
        trigger_at: int | None = None,
        on_position: Callable[[], None] | None = None,
    ) -> None:
        self._rng = random.Random(seed)
        self._remaining = total
        self._block = b""
        self._max_read = max_read
        self._fail_at = fail_at
        self._trigger_at = trigger_at
        self._on_position = on_position
        self.position = 0

    def read(self, n: int | None = -1) -> bytes:
        if self._fail_at is not None and self.position >= self._fail_at:
            raise SourceError(f"source broke after {self.position} bytes")
        limit = self._remaining if n is None or n < 0 else min(n, self._remaining)
        limit = min(limit, self._max_read)
        if self._fail_at is not None:
            limit = min(limit, self._fail_at - self.position)
        if not self._block and limit:
            self._block = self._rng.randbytes(self.BLOCK)
        data, self._block = self._block[:limit], self._block[limit:]
        self.position += len(data)
        self._remaining -= len(data)
        if self._on_position and self._trigger_at is not None and self.position >= self._trigger_at:
            callback, self._on_position = self._on_position, None
            callback()
        return data


def pattern_digest(total: int, seed: int = 1) -> str:
    digest = hashlib.sha256()
    stream = PatternStream(total, seed=seed, max_read=MiB)
    while chunk := stream.read(MiB):
        digest.update(chunk)
    return digest.hexdigest()


def read_back(store: Storage, key: str) -> tuple[int, str]:
    """Size and SHA-256 of a stored object, streamed in chunks."""
    digest = hashlib.sha256()
    size = 0
    with store.open(key) as fh:
        while chunk := fh.read(MiB):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
