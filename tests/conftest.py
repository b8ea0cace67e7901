"""Shared fixtures: the app on SQLite + local folder and on PostgreSQL + S3 (moto server over HTTP)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from flask import Flask

from referral import create_app
from referral.cli import upgrade_database
from referral.config import Settings, normalize_database_url
from referral.db import Base, make_engine
from storage import LocalStorage, S3Storage, Storage
from tests.world import Practice, World

pytest_plugins = ["tests.s3server"]

REQUIRE_POSTGRES = os.environ.get("REQUIRE_POSTGRES") == "1"
POSTGRES_SERVER = os.environ.get("TEST_POSTGRES_SERVER", "postgresql://postgres@127.0.0.1:5432")
BACKENDS = ("sqlite-local", "postgres-s3")


def _postgres_unavailable(reason: str) -> None:
    message = f"PostgreSQL at {POSTGRES_SERVER} is not reachable ({reason})"
    if REQUIRE_POSTGRES:
        pytest.fail(message + "; REQUIRE_POSTGRES=1 makes this a failure", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database on the real PostgreSQL server, dropped at the end of the session."""
    name = f"referral_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        _postgres_unavailable(type(exc).__name__)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield normalize_database_url(f"{POSTGRES_SERVER}/{name}")
    with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def migrated_postgres(postgres_url: str) -> str:
    engine = make_engine(postgres_url)
    upgrade_database(engine)
    engine.dispose()
    return postgres_url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for each test: faster than migrating every time."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade_database(engine)
    engine.dispose()
    return path


def _truncate_postgres(url: str) -> None:
    engine = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {tables} CASCADE"))
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
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    if backend.startswith("sqlite"):
        path = tmp_path / "referral.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("migrated_postgres")
        yield url
        _truncate_postgres(url)


@pytest.fixture
def store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Storage]:
    if backend.endswith("local"):
        yield LocalStorage(tmp_path / "objects")
        return
    s3 = S3Storage(request.getfixturevalue("s3_bucket"), prefix="referral")
    yield s3
    s3.close()


@pytest.fixture
def app_settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url)


@pytest.fixture
def app(app_settings: Settings, store: Storage) -> Iterator[Flask]:
    application = create_app(app_settings, store=store)
    yield application
    application.extensions["referral.engine"].dispose()


@pytest.fixture
def world(app: Flask, client: object) -> World:
    return World(app, client)  # type: ignore[arg-type]


@pytest.fixture
def riverside(world: World) -> Practice:
    return world.practice("Riverside Family Dental")


@pytest.fixture
def hillside(world: World) -> Practice:
    return world.practice("Hillside Dental Group")
