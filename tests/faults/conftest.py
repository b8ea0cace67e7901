"""Fault tests run on the production pair only: the real PostgreSQL server and S3 over HTTP (moto).

The store is the real S3Storage wrapped in ``FlakyStore``, which fails on command the way an unreachable
backend does, so every injected failure goes through the same code paths as a real one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import pytest
from flask import Flask

from referral import create_app
from referral.config import Settings
from storage import Storage, StorageUnavailable, StoredObject
from tests.conftest import make_settings
from tests.store_doubles import DelegatingStore


class FlakyStore(DelegatingStore):
    """Delegates to a real store. ``fail_puts`` / ``fail_deletes`` make those calls raise StorageUnavailable
    without touching the store; ``after_put(key)`` runs once a put has succeeded (to break something else at
    exactly that moment)."""

    def __init__(self, inner: Storage) -> None:
        super().__init__(inner)
        self.fail_puts = False
        self.fail_deletes = False
        self.after_put: Callable[[str], None] | None = None
        self.failed_deletes: list[str] = []

    def put(self, key: str, stream: BinaryIO, *, content_type: str, size: int | None = None) -> StoredObject:
        if self.fail_puts:
            raise StorageUnavailable("injected: store refuses writes")
        stored = self.inner.put(key, stream, content_type=content_type, size=size)
        if self.after_put is not None:
            self.after_put(key)
        return stored

    def delete(self, key: str) -> None:
        if self.fail_deletes:
            self.failed_deletes.append(key)
            raise StorageUnavailable("injected: store refuses deletes")
        self.inner.delete(key)


@pytest.fixture
def backend() -> str:
    return "postgres-s3"


@pytest.fixture
def app_settings(tmp_path: Path, database_url: str) -> Settings:
    # The webhook receivers of these tests listen on loopback.
    return make_settings(tmp_path, database_url, webhook_allow_private=True)


@pytest.fixture
def flaky_store(store: Storage) -> FlakyStore:
    return FlakyStore(store)


@pytest.fixture
def app(app_settings: Settings, flaky_store: FlakyStore) -> Iterator[Flask]:
    application = create_app(app_settings, store=flaky_store)
    yield application
    application.extensions["referral.engine"].dispose()
