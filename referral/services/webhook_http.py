"""One webhook POST, with the SSRF guard applied at send time.

``http.client`` rather than ``requests`` or ``urllib``: the connection is made to the address the
guard has just approved (with the URL's own host name kept for the Host header and TLS), so a DNS
answer that changes between the check and the connect cannot redirect the call; it never follows
redirects; and it ignores proxy variables in the environment.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
from dataclasses import dataclass
from functools import lru_cache

from referral.services import urlguard

ERROR_SNIPPET = 200


@dataclass(frozen=True)
class SendResult:
    status_code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=_tls_context())
        self._address = address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        try:
            self.sock = _tls_context().wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "TLS certificate verification failed"
    if isinstance(exc, ssl.SSLError):
        return "TLS error"
    if isinstance(exc, http.client.HTTPException):
        return f"bad HTTP response ({type(exc).__name__})"
    return f"network error ({type(exc).__name__})"


def _snippet(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace")
    return "".join(ch if ch.isprintable() else " " for ch in text).strip()[:ERROR_SNIPPET]


class _Watchdog:
    """Per-operation socket timeouts do not bound a receiver that trickles one byte at a time; this
    cuts the connection when the whole exchange has taken longer than the budget."""

    def __init__(self, connection: http.client.HTTPConnection, seconds: float) -> None:
        self.fired = False
        self._connection = connection
        self._timer = threading.Timer(seconds, self._abort)
        self._timer.daemon = True

    def _abort(self) -> None:
        self.fired = True
        sock = self._connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._timer.cancel()
        self._timer.join()


def post(url: str, body: bytes, headers: dict[str, str], *, allow_private: bool, timeout: float = 10.0,
         resolver: urlguard.Resolver | None = None) -> SendResult:
    """POST ``body`` to ``url``. Never raises for network trouble: the outcome is in the result."""
    try:
        target = urlguard.check_url(url, allow_private=allow_private, resolver=resolver)
    except urlguard.UnsafeUrl as exc:
        return SendResult(None, f"refused: {exc}"[:300])
    error = "no address to connect to"
    for address in target.addresses:
        cls = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
        connection = cls(target.host, target.port, address=address, timeout=timeout)
        watchdog = _Watchdog(connection, timeout)
        try:
            with watchdog:
                try:
                    connection.connect()
                except OSError as exc:
                    # Nothing was sent, so the next address of the host may be tried.
                    error = "timed out" if watchdog.fired else _describe(exc)
                    continue
                try:
                    connection.request("POST", target.path, body=body, headers={**headers, "Connection": "close"})
                    response = connection.getresponse()
                    snippet = _snippet(response.read(ERROR_SNIPPET))
                except (OSError, http.client.HTTPException) as exc:
                    return SendResult(None, "timed out" if watchdog.fired else _describe(exc))
        finally:
            connection.close()
        status = response.status
        if 200 <= status < 300:
            return SendResult(status, None)
        reason = f"HTTP {status}"
        if 300 <= status < 400:
            reason += " (redirects are not followed)"
        return SendResult(status, f"{reason}: {snippet}" if snippet else reason)
    return SendResult(None, error)
