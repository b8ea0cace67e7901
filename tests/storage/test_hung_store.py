"""A store that accepts connections and never answers: calls give up in seconds, then stop being made at all,
/readyz notices, and requests that do not need the store go on as usual."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from botocore.exceptions import ReadTimeoutError
from flask import Flask

from storage import S3Storage, StorageUnavailable, from_url
from storage.breaker import CircuitBreaker
from tests.support.api import new_referral
from tests.support.world import Practice


class StalledServer:
    """A TCP server that accepts every connection and then says nothing, like a frozen S3 endpoint."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name="stalled-s3", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            self._held.append(connection)

    def close(self) -> None:
        self._listener.close()
        for connection in self._held:
            connection.close()


@pytest.fixture
def stalled(monkeypatch: pytest.MonkeyPatch) -> Iterator[StalledServer]:
    server = StalledServer()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", server.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    yield server
    server.close()


@pytest.fixture
def hung_store(stalled: StalledServer) -> Iterator[S3Storage]:
    store = S3Storage("images", connect_timeout=0.5, read_timeout=0.5,
                      breaker=CircuitBreaker(failures=2, cooldown=600))
    yield store
    store.close()


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_opens_after_failures_in_a_row_and_refuses_at_once() -> None:
    breaker = CircuitBreaker(failures=3, cooldown=10, clock=FakeClock())
    for _ in range(2):
        breaker.before()
        breaker.failed()
    breaker.before()
    breaker.succeeded()  # a success in between starts the count again
    for _ in range(2):
        breaker.before()
        breaker.failed()
    assert not breaker.is_open
    breaker.before()
    breaker.failed()
    assert breaker.is_open
    with pytest.raises(StorageUnavailable, match="not tried"):
        breaker.before()


def test_after_the_cool_down_one_probe_goes_through_and_its_outcome_decides() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failures=1, cooldown=10, clock=clock)
    breaker.before()
    breaker.failed()
    clock.now = 11
    breaker.before()  # the probe
    with pytest.raises(StorageUnavailable):
        breaker.before()  # others wait while it is out
    breaker.failed()
    with pytest.raises(StorageUnavailable):
        breaker.before()  # the failed probe opens it for another cool-down
    clock.now = 22
    breaker.before()
    breaker.succeeded()
    breaker.before()
    breaker.before()
    assert not breaker.is_open


def test_a_probe_that_ends_for_the_callers_own_reason_lets_the_next_one_through() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failures=1, cooldown=10, clock=clock)
    breaker.before()
    breaker.failed()
    clock.now = 11
    breaker.before()
    breaker.abandoned()
    breaker.before()


def test_a_hung_store_fails_each_call_then_stops_calling_it(hung_store: S3Storage, stalled: StalledServer) -> None:
    for _ in range(2):
        with pytest.raises(StorageUnavailable, match="unreachable"):
            hung_store.open("a/b")
    reached = stalled.accepted
    assert reached >= 2

    for _ in range(5):
        with pytest.raises(StorageUnavailable, match="not tried"):
            hung_store.open("a/b")
        with pytest.raises(StorageUnavailable, match="not tried"):
            hung_store.exists("a/b")
    assert stalled.accepted == reached


def test_the_readiness_probe_tries_once_without_retrying(hung_store: S3Storage, stalled: StalledServer) -> None:
    with pytest.raises(StorageUnavailable):
        hung_store.check()
    by_probe = stalled.accepted
    assert by_probe >= 1
    # The same request from the store's own client, which retries once, reaches the store more often.
    with pytest.raises(ReadTimeoutError):
        hung_store.client.head_bucket(Bucket=hung_store.bucket)
    assert stalled.accepted - by_probe > by_probe


def test_timeouts_can_be_set_in_the_storage_url(stalled: StalledServer) -> None:
    store = from_url("s3://images?connect_timeout=0.5&read_timeout=1.5")
    assert isinstance(store, S3Storage)
    assert store.client.meta.config.read_timeout == 1.5
    assert store.client.meta.config.connect_timeout == 0.5
    store.close()
    for bad in ("read_timeout=soon", "read_timeout=0", "connect_timeout=301"):
        with pytest.raises(ValueError, match="timeout"):
            from_url(f"s3://images?{bad}")


@pytest.fixture
def backend() -> str:
    return "sqlite-local"


@pytest.fixture
def store(hung_store: S3Storage) -> S3Storage:
    return hung_store


def test_with_the_store_hung_readyz_says_so_and_case_reads_go_on(app: Flask, riverside: Practice) -> None:
    referral_id = new_referral(riverside)

    ready = app.test_client().get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["checks"] == {"database": "ok", "storage": "unavailable"}
    for _ in range(3):
        assert riverside.staff.get(f"/api/v1/referrals/{referral_id}").status_code == 200
