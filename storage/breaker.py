"""A circuit breaker for a dependency that can hang: after a few failures in a row it stops calling.

While open, calls fail at once with StorageUnavailable instead of each waiting out its own timeouts, so a
frozen store holds no worker threads and requests that never touch it go on as usual. After a cool-down one
call at a time is let through to probe the store; its success closes the breaker again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .base import StorageUnavailable


class CircuitBreaker:
    def __init__(self, *, failures: int = 3, cooldown: float = 15.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if failures < 1 or cooldown <= 0:
            raise ValueError("a breaker needs at least one failure to open and a positive cool-down")
        self.failures = failures
        self.cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._consecutive = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def is_open(self) -> bool:
        with self._lock:
            return self._opened_at is not None and self._clock() - self._opened_at < self.cooldown

    def before(self) -> None:
        """Let a call through, or refuse it at once while the store is known to be failing."""
        with self._lock:
            if self._opened_at is None:
                return
            if self._clock() - self._opened_at < self.cooldown or self._probing:
                raise StorageUnavailable("object store failing; not tried again until it recovers")
            self._probing = True

    def succeeded(self) -> None:
        with self._lock:
            self._consecutive = 0
            self._opened_at = None
            self._probing = False

    def failed(self) -> None:
        with self._lock:
            self._consecutive += 1
            if self._probing or self._consecutive >= self.failures:
                self._opened_at = self._clock()
            self._probing = False

    def abandoned(self) -> None:
        """A call that ended for a reason of the caller's own: it proves nothing either way."""
        with self._lock:
            self._probing = False
