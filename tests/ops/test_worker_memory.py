"""A gunicorn worker that has grown past WORKER_MAX_RSS_MB is replaced after the request it is serving."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import requests

from tests.support.servers import start_gunicorn, stop_server
from tests.support.settings import truncate_postgres

pytestmark = pytest.mark.slow


def _booted(log: Path) -> list[str]:
    return re.findall(r"Booting worker with pid: (\d+)", log.read_text())


def test_a_worker_past_its_memory_ceiling_is_replaced_and_the_server_goes_on(tmp_path: Path, migrated_postgres: str,
                                                                             s3_bucket: str) -> None:
    env = {**os.environ, "APP_ENV": "production", "SECRET_KEY": os.urandom(32).hex(),
           "DATABASE_URL": migrated_postgres, "STORAGE_URL": f"s3://{s3_bucket}/referral",
           "WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "2", "INSTANCE_PATH": str(tmp_path / "instance"),
           "UPLOAD_TMP_DIR": str(tmp_path), "WORKER_MAX_RSS_MB": "1"}  # any real worker is past 1 MiB
    log = tmp_path / "gunicorn.log"
    base, process = start_gunicorn(env, log)
    try:
        first = _booted(log)
        assert requests.get(f"{base}/healthz", timeout=30).status_code == 200
        # The replacement serves the next requests.
        for _ in range(2):
            response = requests.get(f"{base}/healthz", timeout=30)
            assert response.status_code == 200
        assert "past WORKER_MAX_RSS_MB" in log.read_text()
        assert len(_booted(log)) > len(first)
    finally:
        stop_server(process)
        truncate_postgres(migrated_postgres)


def test_the_ceiling_is_not_reached_at_the_default(tmp_path: Path, migrated_postgres: str, s3_bucket: str) -> None:
    env = {**os.environ, "APP_ENV": "production", "SECRET_KEY": os.urandom(32).hex(),
           "DATABASE_URL": migrated_postgres, "STORAGE_URL": f"s3://{s3_bucket}/referral",
           "WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "2", "INSTANCE_PATH": str(tmp_path / "instance"),
           "UPLOAD_TMP_DIR": str(tmp_path)}
    log = tmp_path / "gunicorn.log"
    base, process = start_gunicorn(env, log)
    try:
        for _ in range(5):
            assert requests.get(f"{base}/healthz", timeout=30).status_code == 200
        assert "past WORKER_MAX_RSS_MB" not in log.read_text()
        assert len(_booted(log)) == 1
    finally:
        stop_server(process)
        truncate_postgres(migrated_postgres)
