"""Shared fixtures: the app on SQLite + local folder and on PostgreSQL + S3 (moto server over HTTP)."""

from __future__ import annotations

import os
import shutil
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from flask import Flask

from referral import create_app
from referral.cli import upgrade_database
from referral.config import Settings, normalize_database_url
from referral.db import make_engine
from storage import LocalStorage, S3Storage, Storage
from tests.support.routing import keep_url_builders
from tests.support.settings import (
    BACKENDS,
    POSTGRES_SERVER,
    REQUIRE_POSTGRES,
    close_app,
    make_settings,
    truncate_postgres,
)
from tests.support.world import Practice, World

pytest_plugins = ["tests.support.s3server"]

# Every test makes an app; the URL builders its rules share with earlier apps are not compiled again.
keep_url_builders()


@pytest.fixture(autouse=True)
def _engines_disposed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every database engine a test makes (an app's, a command's, its own) is disposed when the test ends, so
    that no pooled PostgreSQL connection is left for the garbage collector to find open in a later test."""
    made: list[sa.Engine] = []
    original = sa.create_engine

    def tracked(*args: object, **kwargs: object) -> sa.Engine:
        engine = original(*args, **kwargs)  # type: ignore[call-overload]
        made.append(engine)
        return engine

    monkeypatch.setattr(sa, "create_engine", tracked)
    yield
    for engine in made:
        engine.dispose()


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
        # A test database need not wait for its log to reach the disk at each commit: a lost commit would
        # only follow a crash of PostgreSQL itself, which no test causes (the fault tests kill the app).
        admin.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
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


# Which tests run on which of the two set-ups. Tests of what depends on the database or the store (intake, stored
# bytes, deletion, concurrency, the outbox, the fast read path) carry the ``both_backends`` mark and run on both;
# every other test runs on one of the two, chosen by a stable hash of its name, so each module still runs on both
# set-ups without every test running twice. TEST_BACKENDS=both runs every test on both.
TEST_BACKENDS = os.environ.get("TEST_BACKENDS", "spread")


def _backend_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    chosen = callspec.params.get("backend") if callspec is not None else None
    return chosen if chosen in BACKENDS else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if TEST_BACKENDS not in ("spread", "both"):
        raise pytest.UsageError(f"TEST_BACKENDS must be 'spread' or 'both', not {TEST_BACKENDS!r}")
    if TEST_BACKENDS == "both":
        return
    # A test's variants on the two set-ups share its name with the set-up left out; only a test that has both
    # (and is not marked for both) is run on one of them.
    variants: dict[str, list[pytest.Item]] = {}
    for item in items:
        chosen = _backend_of(item)
        if chosen is not None and not item.get_closest_marker("both_backends"):
            variants.setdefault(item.nodeid.replace(chosen, ""), []).append(item)
    left: set[int] = set()
    for name, group in variants.items():
        if len(group) < 2:
            continue
        keep = BACKENDS[zlib.crc32(name.encode()) % len(BACKENDS)]
        left.update(id(item) for item in group if _backend_of(item) != keep)
    if left:
        config.hook.pytest_deselected(items=[item for item in items if id(item) in left])
        items[:] = [item for item in items if id(item) not in left]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# A test's SQLite file and local-folder store live in memory-backed /dev/shm where there is one: each commit's and
# each stored object's fsync is then free (a few milliseconds each on disk, dozens a test). Nothing a test checks
# depends on the bytes reaching a disk (the tests of a full disk make stores of their own).
_SHM = Path("/dev/shm")


def _memory_folder(tmp_path: Path) -> Iterator[Path]:
    if _SHM.is_dir() and os.access(_SHM, os.W_OK):
        folder = _SHM / f"referral-test-{uuid.uuid4().hex}"
        folder.mkdir()
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    else:
        yield tmp_path


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    if backend.startswith("sqlite"):
        for folder in _memory_folder(tmp_path):
            path = folder / "referral.db"
            shutil.copy(request.getfixturevalue("sqlite_template"), path)
            yield f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("migrated_postgres")
        yield url
        truncate_postgres(url)


@pytest.fixture
def store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Storage]:
    if backend.endswith("local"):
        for folder in _memory_folder(tmp_path):
            yield LocalStorage(folder / "objects")
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
    close_app(application)


@pytest.fixture
def world(app: Flask, client: object) -> World:
    return World(app, client)  # type: ignore[arg-type]


@pytest.fixture
def riverside(world: World) -> Practice:
    return world.practice("Riverside Family Dental")


@pytest.fixture
def hillside(world: World) -> Practice:
    return world.practice("Hillside Dental Group")
