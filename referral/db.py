"""Engine, sessions and the declarative base.

One engine per app, one session per request (or per CLI command). Services receive the session as an
argument; a service entry point is one transaction (see ``referral.unit_of_work``), helpers never end it.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from referral import unit_of_work

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    """A UUIDv7-style identifier: 48 bits of milliseconds, then randomness.

    Ids sort by creation time, so keyset pagination can order by id alone, and they are not
    guessable the way sequential integers are.
    """
    millis = int(datetime.now(UTC).timestamp() * 1000)
    rand = uuid.uuid4().int & ((1 << 80) - 1)
    value = (millis & ((1 << 48) - 1)) << 80 | rand
    # version 7 and RFC 4122 variant bits
    value = (value & ~(0xF << 76)) | (0x7 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    return uuid.UUID(int=value)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite keeps no offset of its own)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        return datetime

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; attach a timezone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# A database that stops answering must not hold a request for long: connecting gives up after a few seconds, and
# one statement after half a minute (no request or job here needs longer; a stuck lock shows as an error).
PG_CONNECT_TIMEOUT_SECONDS = 5
PG_STATEMENT_TIMEOUT_MS = 30_000
# A pooled connection that has not been used for this long is checked with a round trip (``SELECT 1``) before it is
# handed out: a restart or failover of the database may have cut it meanwhile. One used more recently is handed out
# as it is, which under load saves a round trip on every request. Should the database have gone away within that
# time, the first statement to find its connection dead fails and SQLAlchemy discards every connection the pool
# holds, so one request per process sees the error, as the requests in flight during the restart do anyway.
PING_AFTER_IDLE_SECONDS = 5.0


def make_engine(url: str, **kwargs: Any) -> Engine:
    options: dict[str, Any] = {"hide_parameters": True, "future": True}
    if url.startswith("sqlite"):
        options["connect_args"] = {"timeout": 30}
    else:
        options["pool_timeout"] = 10
        if url.startswith("postgresql"):
            options["connect_args"] = {"connect_timeout": PG_CONNECT_TIMEOUT_SECONDS,
                                       "options": f"-c statement_timeout={PG_STATEMENT_TIMEOUT_MS}"}
    options.update(kwargs)
    engine = sa.create_engine(url, **options)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
    else:
        _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before lending it only when it has lain unused for ``PING_AFTER_IDLE_SECONDS``;
    one that fails the check is replaced by a new connection (SQLAlchemy's pool does so on DisconnectionError)."""
    dialect = engine.dialect

    def returned(_dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    def lent(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned_at = record.info.get("returned_at")
        if returned_at is None or time.monotonic() - returned_at < PING_AFTER_IDLE_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            raise sa.exc.DisconnectionError("a pooled connection did not answer") from exc

    event.listen(engine, "checkin", returned)
    event.listen(engine, "checkout", lent)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling is switched off so that BEGIN IMMEDIATE below is honoured
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_on_begin(conn: sa.Connection) -> None:
    # Take the write lock up front: two concurrent writers then queue instead of one failing with
    # "database is locked" when it upgrades a read transaction.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    factory = sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)
    unit_of_work.install(factory)
    return factory
