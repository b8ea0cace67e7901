"""Reading what the observability layer writes: JSON log lines and Prometheus text."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from referral import create_app
from storage import LocalStorage, Storage
from tests.support.settings import make_settings


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every non-empty line, each of which must be one JSON object."""
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all(isinstance(line, dict) for line in lines)
    return lines


def scrape(app: Flask) -> str:
    response = app.test_client().get("/metrics")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain")
    return response.get_data(as_text=True)


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample ``name`` whose labels include ``labels``; None when there is none."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return float(found.value)
    return None


@contextmanager
def sqlite_app(tmp_path: Path, sqlite_template: Path, store: Storage | None = None, database_url: str | None = None,
               **overrides: Any) -> Iterator[Flask]:
    """An app on a fresh copy of the migrated SQLite database (unless ``database_url`` names another), for
    tests the backend does not change."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    if database_url is None:
        path = tmp_path / "observed.db"
        shutil.copy(sqlite_template, path)
        database_url = f"sqlite:///{path}"
    settings = make_settings(tmp_path, database_url, **overrides)
    application = create_app(settings, store=store if store is not None else LocalStorage(tmp_path / "objects"))
    try:
        yield application
    finally:
        application.extensions["referral.engine"].dispose()
