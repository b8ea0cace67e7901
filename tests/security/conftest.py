"""One app and one store per backend for a whole test module: the security suites send hundreds of
requests at one fixture world, so it is built once and every test checks that nothing changed."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from referral import create_app
from referral.db import Base
from storage import LocalStorage, S3Storage, Storage
from tests.conftest import BACKENDS, _truncate_postgres, make_settings
from tests.s3server import _remove_bucket

# Rows that every request may add or touch (who did what, token and session bookkeeping); everything
# else must be exactly as it was after a refused request.
BOOKKEEPING_TABLES = frozenset({"audit_events", "api_tokens", "web_sessions", "sign_in_attempts"})


@dataclass
class SharedApp:
    backend: str
    app: Flask
    client: FlaskClient
    store: Storage


@pytest.fixture(scope="module", params=BACKENDS)
def shared_app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedApp]:
    backend = str(request.param)
    root = tmp_path_factory.mktemp(f"security-{backend}")
    store: Storage
    if backend == "sqlite-local":
        path = root / "referral.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        database_url = f"sqlite:///{path}"
        store = LocalStorage(root / "objects")
        bucket = None
    else:
        database_url = request.getfixturevalue("migrated_postgres")
        _truncate_postgres(database_url)
        s3_client = request.getfixturevalue("s3_client")
        bucket = f"security-{uuid.uuid4().hex[:20]}"
        s3_client.create_bucket(Bucket=bucket)
        store = S3Storage(bucket, prefix="referral")
    # A small upload limit keeps the oversize cases of the corpus quick.
    settings = make_settings(Path(root), database_url, webhook_allow_private=True, max_upload_bytes=1024 * 1024)
    app = create_app(settings, store=store)
    try:
        yield SharedApp(backend=backend, app=app, client=app.test_client(), store=store)
    finally:
        app.extensions["referral.engine"].dispose()
        if isinstance(store, S3Storage):
            store.close()
            _remove_bucket(request.getfixturevalue("s3_client"), bucket)
            _truncate_postgres(database_url)


def snapshot(app: Flask) -> dict[str, Any]:
    """Every row of every table but the bookkeeping ones, and every key in the store."""
    state: dict[str, Any] = {}
    with app.extensions["referral.sessionmaker"]() as session:
        for table in Base.metadata.sorted_tables:
            if table.name in BOOKKEEPING_TABLES:
                continue
            rows = session.execute(sa.select(table)).all()
            state[table.name] = sorted(repr(tuple(row)) for row in rows)
    state["objects"] = sorted(app.extensions["referral.storage"].keys(""))
    return state


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What differs between two snapshots, per table, for a readable failure."""
    return {name: {"gone": sorted(set(before[name]) - set(after[name]))[:3],
                   "new": sorted(set(after[name]) - set(before[name]))[:3]}
            for name in before if before[name] != after[name]}
