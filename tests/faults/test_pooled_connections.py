"""Pooled PostgreSQL connections: checked with a round trip only after lying unused for a while
(``referral.db.PING_AFTER_IDLE_SECONDS``), and a pool whose connections the database cut recovers by itself."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from referral import db
from tests.support.settings import POSTGRES_SERVER


@pytest.fixture
def engine(migrated_postgres: str) -> Iterator[sa.Engine]:
    made = db.make_engine(migrated_postgres)
    yield made
    made.dispose()


@pytest.fixture
def pings(engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The round trips made to check a connection before lending it."""
    made: list[Any] = []
    original = engine.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        made.append(dbapi_connection)
        return bool(original(dbapi_connection))

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return made


def _backend_pid(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def _cut(pid: int) -> None:
    # with a timeout, pg_terminate_backend returns only once the backend has gone (or fails after 5 s)
    with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,)).fetchone() == (True,)


def test_a_connection_used_moments_ago_is_lent_without_a_round_trip(engine: sa.Engine, pings: list[Any]) -> None:
    pids = {_backend_pid(engine) for _ in range(20)}

    assert len(pids) == 1  # the same pooled connection each time
    assert pings == []


def test_a_connection_idle_past_the_limit_is_checked_and_replaced_when_the_database_cut_it(
        engine: sa.Engine, pings: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    first = _backend_pid(engine)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
    assert _backend_pid(engine) == first  # checked, and alive
    assert len(pings) == 1

    _cut(first)
    replaced = _backend_pid(engine)  # no error: the check found it dead and a new connection was made

    assert replaced != first
    assert len(pings) == 2


def test_a_connection_cut_within_the_limit_fails_one_statement_and_the_pool_recovers(
        engine: sa.Engine, pings: list[Any]) -> None:
    first = _backend_pid(engine)
    _cut(first)

    with engine.connect() as connection, pytest.raises(sa.exc.OperationalError) as failed:
        connection.execute(sa.text("SELECT 1"))
    assert failed.value.connection_invalidated

    assert _backend_pid(engine) != first
    assert pings == []
