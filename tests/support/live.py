"""The app served on a loopback port from a thread of the test process, for clients that need a real server
(a browser, a tus, DICOMweb or FHIR client).

Leaving, it waits for the requests still being answered: a browser may have fetched a script or a poll just
before its page closed, and a request answered after the test's app and database are gone would leave an open
file or database connection for the garbage collector to report in another test.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from werkzeug.serving import make_server

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _InFlight:
    """WSGI middleware counting requests from their start until their response is sent or closed."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self.count = 0
        self.changed = threading.Condition()

    def _done(self) -> None:
        with self.changed:
            self.count -= 1
            self.changed.notify_all()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with self.changed:
            self.count += 1
        try:
            body = self.app(environ, start_response)
        except BaseException:
            self._done()
            raise
        return _Closing(body, self._done)

    def wait_idle(self, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.count <= 0, timeout=timeout)


class _Closing:
    """A response body that reports itself done once it has been sent whole or closed, whichever comes first.

    The development server closes a body only after draining whatever the client sent next on the connection, which
    can wait for as long as the browser keeps the connection open; by then the app has nothing left to do."""

    def __init__(self, body: Iterable[bytes], done: Callable[[], None]) -> None:
        self.body = body
        self._done = done
        self._reported = False

    def done(self) -> None:
        if not self._reported:
            self._reported = True
            self._done()

    def __iter__(self) -> Iterator[bytes]:
        yield from self.body
        self.done()

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            self.done()


@contextmanager
def served(app: WSGIApp, *, threaded: bool = True, name: str = "live-test-server") -> Iterator[str]:
    """``http://127.0.0.1:<port>`` while the block runs; ``threaded=False`` answers one request at a time."""
    tracked = _InFlight(app)
    server = make_server("127.0.0.1", 0, tracked, threaded=threaded)  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        tracked.wait_idle(timeout=15)
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
