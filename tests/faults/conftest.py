"""Fault tests run on the production pair only: the real PostgreSQL server and S3 over HTTP (moto).

The store is the real S3Storage wrapped in ``FlakyStore``, which fails on command the way an unreachable
backend does, so every injected failure goes through the same code paths as a real one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from referral import create_app
from referral.config import Settings
from storage import Storage
from tests.support.settings import make_settings
from tests.support.store_doubles import FlakyStore


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
