"""/metrics: request latency by route template, accepted upload bytes, routing decisions and the
outbox backlog, in Prometheus text, for the deployment's own network only."""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import Flask
from prometheus_client import generate_latest

from referral.config import PROJECT_ROOT
from referral.db import make_engine, make_session_factory, utcnow
from referral.models import OutboxEvent, Webhook
from referral.observability import metrics
from tests.support import samples
from tests.support.api import new_referral, ready_referral, submit, upload
from tests.support.observability import sample, scrape, sqlite_app
from tests.support.webhooks import emit
from tests.support.world import Practice, World

LATENCY_COUNT = "referral_http_request_duration_seconds_count"
UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def value(text: str, name: str, **labels: str) -> float:
    found = sample(text, name, **labels)
    return 0.0 if found is None else found


def test_a_call_shows_in_the_latency_histogram_under_its_route_template(app: Flask, world: World):
    route = {"method": "GET", "route": "/api/v1/referrals/<uuid:referral_id>", "status_class": "4xx"}
    missing = uuid.uuid4()
    before = value(scrape(app), LATENCY_COUNT, **route)

    response = world.admin.get(f"/api/v1/referrals/{missing}")

    text = scrape(app)
    assert response.status_code in (403, 404)
    assert value(text, LATENCY_COUNT, **route) == before + 1
    assert value(text, "referral_http_request_duration_seconds_bucket", le="+Inf", **route) >= 1
    assert "# TYPE referral_http_request_duration_seconds histogram" in text
    # Route templates only: no id from any path becomes a label.
    assert UUID_TEXT.search(text) is None


def test_an_accepted_upload_adds_its_bytes_and_a_refused_one_adds_nothing(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    data = samples.dicom_bytes(teeth=())
    before = scrape(app)

    accepted = upload(riverside.staff, riverside, referral_id, data, teeth="19")
    refused = upload(riverside.staff, riverside, referral_id, b"not an image at all", teeth="19")

    after = scrape(app)
    assert accepted.status_code == 201, accepted.get_json()
    assert refused.status_code == 415
    count, total = "referral_image_upload_size_bytes_count", "referral_image_upload_size_bytes_sum"
    assert value(after, count) == value(before, count) + 1
    assert value(after, total) == value(before, total) + len(data)


def test_each_submit_counts_one_routing_decision_by_outcome(app: Flask, world: World, riverside: Practice):
    routing = "referral_routing_decisions_total"
    unassigned_id = ready_referral(riverside)
    before = scrape(app)

    assert submit(riverside, unassigned_id).get_json()["status"] == "unassigned"
    org = world.reader_practice("Coastal Endodontics")
    first, second = world.reader(org, last_name="First"), world.reader(org, last_name="Second")
    assert submit(riverside, ready_referral(riverside)).get_json()["assigned_provider_id"] == first.provider_id
    named = submit(riverside, ready_referral(riverside, target_provider_id=second.provider_id)).get_json()
    assert named["assigned_provider_id"] == second.provider_id

    after = scrape(app)
    for outcome in ("unassigned", "assigned", "named"):
        labels = {"trigger": "submit", "outcome": outcome}
        assert value(after, routing, **labels) == value(before, routing, **labels) + 1, outcome


def test_a_decline_counts_the_new_routing_decision(app: Flask, world: World, riverside: Practice):
    routing = "referral_routing_decisions_total"
    org = world.reader_practice("Coastal Endodontics")
    reader = world.reader(org)
    referral_id = ready_referral(riverside)
    submit(riverside, referral_id)
    before = scrape(app)

    declined = reader.client.post(f"/api/v1/referrals/{referral_id}/decline", {"reason": "Outside my scope"})

    assert declined.status_code == 200, declined.get_json()
    labels = {"trigger": "decline", "outcome": "unassigned"}
    assert value(scrape(app), routing, **labels) == value(before, routing, **labels) + 1


def _pending_delivery(app: Flask, world: World, practice: Practice, age: timedelta) -> None:
    with app.extensions["referral.sessionmaker"]() as session:
        session.add(Webhook(organization_id=uuid.UUID(practice.id), url="https://hooks.example.com/referral",
                            event_types=["referral.routed"], secret="s" * 32,
                            created_by_user_id=uuid.UUID(world.admin_id)))
        session.commit()
    (event_id,) = emit(app, [practice.id])
    with app.extensions["referral.sessionmaker"]() as session:
        session.execute(sa.update(OutboxEvent).where(OutboxEvent.id == event_id)
                        .values(created_at=utcnow() - age))
        session.commit()


def test_the_outbox_backlog_and_the_age_of_its_oldest_event_are_read_at_scrape_time(app: Flask, world: World,
                                                                                   riverside: Practice):
    empty = scrape(app)

    _pending_delivery(app, world, riverside, timedelta(hours=1))
    waiting = scrape(app)

    assert sample(empty, "referral_outbox_backlog") == 0
    assert sample(empty, "referral_outbox_oldest_pending_age_seconds") == 0
    assert sample(waiting, "referral_outbox_backlog") == 1
    assert 3600 <= value(waiting, "referral_outbox_oldest_pending_age_seconds") < 3600 + 300


def test_an_unreachable_database_leaves_the_outbox_out_and_still_answers(tmp_path: Path, sqlite_template: Path):
    with sqlite_app(tmp_path, sqlite_template, database_url=f"sqlite:///{tmp_path / 'gone' / 'x.db'}") as app:
        text = scrape(app)

    assert "referral_http_request_duration_seconds" in text
    assert sample(text, "referral_outbox_backlog") is None


def test_metrics_are_served_to_the_private_network_only_and_never_through_a_proxy(tmp_path: Path,
                                                                                  sqlite_template: Path):
    with sqlite_app(tmp_path, sqlite_template) as app:
        client = app.test_client()
        inside = [client.get("/metrics", environ_base={"REMOTE_ADDR": address}).status_code
                  for address in ("127.0.0.1", "10.4.0.9", "172.20.1.1", "192.168.1.20", "::1")]
        outside = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"})
        relayed = client.get("/metrics", headers={"X-Forwarded-For": "10.0.0.1"})
    custom = (ipaddress.ip_network("203.0.113.0/24"),)
    with sqlite_app(tmp_path / "custom", sqlite_template, metrics_allow=custom) as app:
        client = app.test_client()
        custom_inside = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code
        custom_loopback = client.get("/metrics").status_code

    assert inside == [200] * 5
    assert outside.status_code == 403
    assert outside.get_json()["code"] == 403
    assert relayed.status_code == 403
    assert (custom_inside, custom_loopback) == (200, 403)


def test_metrics_need_no_token_and_ask_for_openmetrics_when_the_scraper_does(tmp_path: Path, sqlite_template: Path):
    with sqlite_app(tmp_path, sqlite_template) as app:
        response = app.test_client().get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})

    assert response.status_code == 200
    assert response.content_type.startswith("application/openmetrics-text")
    assert response.get_data(as_text=True).rstrip().endswith("# EOF")
    assert response.headers["Cache-Control"] == "no-store"


WORKER = """
from referral.observability import metrics
metrics.record_image_upload(1000)
metrics.record_routing("submit", None, None)
"""


def test_with_a_multiprocess_directory_a_scrape_sums_every_worker(tmp_path: Path, sqlite_template: Path):
    directory = tmp_path / "prometheus"
    directory.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", WORKER], cwd=PROJECT_ROOT, env=env, check=True, timeout=60)
    database = tmp_path / "metrics.db"
    shutil.copy(sqlite_template, database)
    engine = make_engine(f"sqlite:///{database}")

    text = generate_latest(metrics.build_registry(make_session_factory(engine), str(directory))).decode()
    engine.dispose()

    assert sample(text, "referral_image_upload_size_bytes_count") == 2
    assert sample(text, "referral_image_upload_size_bytes_sum") == 2000
    assert sample(text, "referral_routing_decisions_total", trigger="submit", outcome="unassigned") == 2
    assert sample(text, "referral_outbox_backlog") == 0
