"""Settings for an app under test, and the PostgreSQL server the suites create their databases on."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from flask import Flask

from referral.config import Settings
from referral.db import Base, make_engine
from referral.services.renditions import DRAWER

REQUIRE_POSTGRES = os.environ.get("REQUIRE_POSTGRES") == "1"
POSTGRES_SERVER = os.environ.get("TEST_POSTGRES_SERVER", "postgresql://postgres@127.0.0.1:5432")
BACKENDS = ("sqlite-local", "postgres-s3")


def truncate_postgres(url: str) -> None:
    """Empty every table between tests. DELETE of a few rows per table is several times cheaper than TRUNCATE
    (which makes new files for each table); replica mode skips the triggers, the audit table's append-only
    guard and the foreign-key checks included, since everything goes."""
    engine = make_engine(url)
    deletes = "; ".join(f'DELETE FROM "{t.name}"' for t in reversed(Base.metadata.sorted_tables))  # noqa: S608 - our own table names
    with engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        conn.exec_driver_sql(deletes)
    engine.dispose()


def make_settings(tmp_path: Path, database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "test",
        "secret_key": "test-only-" + uuid.uuid4().hex,
        "database_url": database_url,
        "storage_url": "configured-by-fixture",
        "max_upload_bytes": 8 * 1024 * 1024,
        "instance_path": tmp_path / "instance",
        "upload_tmp_dir": None,
        # Suites send many calls from one address and user; tests/security/test_abuse_limits.py sets real limits.
        "ratelimit_auth_failures": "100000 per minute",
        "ratelimit_uploads": "100000 per minute",
        # Many tests change a token or user row directly, as another process would, and expect the next call to
        # see it; the token cache is exercised on its own in tests/security/test_token_cache.py.
        "api_token_cache_seconds": 0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def close_app(app: Flask, drawing_timeout: float = 30) -> None:
    """End an app a test made: previews still being drawn after their answers finish first (``drawing_timeout``
    seconds at most), since each holds a pooled connection it would otherwise hand back to a pool already let go,
    left open for the garbage collector to report in another test; then the engine's connections are closed."""
    app.extensions[DRAWER].wait_idle(timeout=drawing_timeout)
    app.extensions["referral.engine"].dispose()
