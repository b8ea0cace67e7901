"""Per-request CPU in one process: the app's own cost of a request, without a server, a network or wrk.

    .venv/bin/python bench/overhead.py            # this checkout
    PYTHONPATH=/path/to/other/checkout .venv/bin/python bench/overhead.py   # another one, same database server

Each figure is ``time.process_time()`` over N requests through the Flask test client (after a warm-up), in ms per
request; the database is a fresh PostgreSQL database (``OVERHEAD_DATABASE_SERVER``, default the local server), so
the figure includes the driver's work but not PostgreSQL's own CPU. Rounds alternate between the variants and the
median round is kept. Run it on an otherwise quiet machine; it asserts nothing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from referral import create_app
from referral.cli import upgrade_database
from referral.config import Settings, normalize_database_url
from referral.db import make_engine
from referral.models import Image, Referral
from storage import LocalStorage
from tests.support.settings import make_settings
from tests.support.world import World, referral_body

SERVER = os.environ.get("OVERHEAD_DATABASE_SERVER", "postgresql://postgres@127.0.0.1:5432")
REQUESTS = int(os.environ.get("OVERHEAD_REQUESTS", "300"))
ROUNDS = int(os.environ.get("OVERHEAD_ROUNDS", "5"))


def _add_images(app: Any, referral_id: uuid.UUID, user_id: uuid.UUID, provider_id: uuid.UUID, count: int) -> None:
    moment = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        referral = session.get(Referral, referral_id)
        session.add_all(Image(
            referral_id=referral.id, organization_id=referral.organization_id, kind="periapical", teeth=["19"],
            reason="Periapical", captured_at=moment + timedelta(minutes=n), captured_by_provider_id=provider_id,
            file_format="dicom", content_type="application/dicom", size=4_000_000, sha256=f"{n:064x}",
            storage_backend="local", storage_key=f"bench/{referral.id}/{n}", preview_key=f"p/{referral.id}/{n}",
            thumbnail_key=f"t/{referral.id}/{n}", width=1600, height=1200,
            dicom={"modality": "IO", "rows": 1200, "columns": 1600, "sop_instance_uid": f"1.2.{n}"},
            uploaded_by_user_id=user_id) for n in range(count))
        session.commit()


def _app(workdir: Path, url: str, cache_seconds: int | None) -> Any:
    settings: Settings = make_settings(workdir, url)
    if cache_seconds is not None and any(f.name == "api_token_cache_seconds" for f in dataclasses.fields(Settings)):
        settings = dataclasses.replace(settings, api_token_cache_seconds=cache_seconds)
    return create_app(settings, store=LocalStorage(workdir / "objects"))


def _cpu_ms(call: Callable[[], Any]) -> float:
    started = time.process_time()
    for _ in range(REQUESTS):
        call()
    return (time.process_time() - started) * 1000 / REQUESTS


def main() -> int:
    name = f"referral_overhead_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = normalize_database_url(f"{SERVER}/{name}")
    try:
        engine = make_engine(url)
        upgrade_database(engine)
        engine.dispose()
        with tempfile.TemporaryDirectory() as folder:
            return _measure(Path(folder), url)
    finally:
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _measure(workdir: Path, url: str) -> int:
    cached = _app(workdir, url, 30)
    uncached = _app(workdir, url, 0)
    world = World(cached, cached.test_client())
    practice = world.practice("Overhead Dental")
    cases: dict[int, str] = {}
    for count in (2, 100):
        created = practice.staff.post("/api/v1/referrals", referral_body(practice))
        assert created.status_code == 201, created.get_json()
        cases[count] = created.get_json()["id"]
        _add_images(cached, uuid.UUID(cases[count]), uuid.UUID(practice.users["staff"]),
                    uuid.UUID(practice.hygienist_provider_id), count)
    headers = {"Authorization": f"Bearer {practice.staff.token}"}
    clients = {"cached": cached.test_client(), "uncached": uncached.test_client()}

    def call(client_name: str, path: str, auth: bool = True) -> Callable[[], Any]:
        client = clients[client_name]

        def request() -> None:
            response = client.get(path, headers=headers if auth else None)
            assert response.status_code == 200, (path, response.status_code)
        return request

    variants: dict[str, Callable[[], Any]] = {
        "healthz (no token, no database)": call("cached", "/healthz", auth=False),
        "token only, cache off (GET /api/v1/me/notifications)": call("uncached", "/api/v1/me/notifications"),
        "token only, cache on (GET /api/v1/me/notifications)": call("cached", "/api/v1/me/notifications"),
        "case read, 2 images, cache off": call("uncached", f"/api/v1/referrals/{cases[2]}"),
        "case read, 2 images, cache on": call("cached", f"/api/v1/referrals/{cases[2]}"),
        "case read, 100 images, cache on": call("cached", f"/api/v1/referrals/{cases[100]}"),
    }
    rounds: dict[str, list[float]] = {label: [] for label in variants}
    for request in variants.values():  # warm-up: imports, caches, the token's last use
        for _ in range(20):
            request()
    for _ in range(ROUNDS):
        for label, request in variants.items():
            rounds[label].append(_cpu_ms(request))
    figures = {label: round(statistics.median(values), 3) for label, values in rounds.items()}
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    import referral

    print(json.dumps({"checkout": str(Path(referral.__file__).resolve().parent.parent), "requests": REQUESTS,
                      "rounds": ROUNDS, "load_average_1m": round(load, 2), "cpu_ms_per_request": figures},
                     indent=2))
    for app in (cached, uncached):
        app.extensions["referral.engine"].dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
