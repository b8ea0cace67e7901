"""Prometheus metrics: what the server does (requests, uploads, routing) and what is waiting (the outbox).

Labels are route templates, methods, status classes and outcome codes, never ids or anything typed
by a person, so the series stay few and carry no PHI.

The metric objects live for the process and belong to no registry of their own; each app builds a
registry for its ``/metrics`` (``build_registry``) that holds them plus a collector reading the
outbox from that app's database. Tests build many apps in one process, and a process-wide registry
would refuse the second app's outbox collector as a duplicate.

Under gunicorn every worker is a process with its own counters. With ``PROMETHEUS_MULTIPROC_DIR`` set
to an existing directory before this module is imported, prometheus_client writes each worker's
values to files there and a scrape of any worker sums them all, a dead worker's counts included (so
counters never go back); the gunicorn config empties the directory when it starts. Without it each
worker answers with its own counts, which suits a single worker or a scraper that reaches every
worker on its own.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Final

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session

from referral.db import utcnow
from referral.models import DeliveryStatus, OutboxEvent, WebhookDelivery

log = logging.getLogger(__name__)

HTTP_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE: Final = "unmatched"
ROUTING_OUTCOMES: Final = ("assigned", "named", "unassigned")

REQUEST_DURATION = Histogram(
    "referral_http_request_duration_seconds",
    "Time from the start of a request to its response, by method, route template and status class.",
    ["method", "route", "status_class"],
    # Up to five minutes: an upload over a slow clinic link takes that long.
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
    registry=None,
)
UPLOAD_SIZE = Histogram(
    "referral_image_upload_size_bytes",
    "Size of each accepted image upload; _sum is the bytes accepted, _count the images.",
    buckets=(64 * 1024, 256 * 1024, 1024**2, 4 * 1024**2, 16 * 1024**2, 64 * 1024**2, 256 * 1024**2),
    registry=None,
)
ROUTING_DECISIONS = Counter(
    "referral_routing_decisions",
    "Referrals routed: to the reader the sender named, to the least loaded eligible reader, or to nobody.",
    ["trigger", "outcome"],
    registry=None,
)
_PROCESS_METRICS: Final = (REQUEST_DURATION, UPLOAD_SIZE, ROUTING_DECISIONS)


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status < 600 else "other"


def observe_request(method: str, route: str | None, status: int, seconds: float) -> None:
    REQUEST_DURATION.labels(
        method=method if method in HTTP_METHODS else "other",
        route=route or UNMATCHED_ROUTE,
        status_class=status_class(status),
    ).observe(seconds)


def record_image_upload(size: int) -> None:
    """An image was accepted and committed."""
    UPLOAD_SIZE.observe(size)


def record_routing(trigger: str, reader_id: uuid.UUID | None, named_id: uuid.UUID | None) -> None:
    """A routing decision was committed: ``trigger`` is submit or decline."""
    if reader_id is None:
        outcome = "unassigned"
    elif reader_id == named_id:
        outcome = "named"
    else:
        outcome = "assigned"
    ROUTING_DECISIONS.labels(trigger=trigger, outcome=outcome).inc()


class OutboxCollector(Collector):
    """The webhook backlog, read from the database at scrape time, so every worker reports the same
    numbers and nothing has to keep them up to date."""

    def __init__(self, session_factory: Callable[[], Session]) -> None:
        self._session_factory = session_factory

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily("referral_outbox_backlog",
                              "Webhook deliveries not yet delivered nor given up (pending)."),
            GaugeMetricFamily("referral_outbox_oldest_pending_age_seconds",
                              "Age of the oldest event with a pending delivery; 0 when none is pending."),
        )

    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def collect(self) -> Iterator[Metric]:
        backlog, oldest_age = self._families()
        try:
            with self._session_factory() as session:
                count, oldest = session.execute(
                    sa.select(sa.func.count(), sa.func.min(OutboxEvent.created_at))
                    .select_from(WebhookDelivery)
                    .join(OutboxEvent, WebhookDelivery.event_id == OutboxEvent.id)
                    .where(WebhookDelivery.status == DeliveryStatus.PENDING)
                ).one()
        except sa.exc.SQLAlchemyError as exc:
            # Left out rather than reported as zero: an absent series is what an alert should see.
            log.warning("outbox metrics unavailable: %s", type(exc).__name__)
            return
        backlog.add_metric([], int(count))
        oldest_age.add_metric([], max(0.0, (utcnow() - oldest).total_seconds()) if oldest is not None else 0.0)
        yield backlog
        yield oldest_age


def build_registry(session_factory: Callable[[], Session], multiprocess_dir: str | None = None) -> CollectorRegistry:
    registry = CollectorRegistry()
    if multiprocess_dir:
        # The live objects hold only this process's values; the files hold every worker's.
        MultiProcessCollector(registry, path=multiprocess_dir)
    else:
        for metric in _PROCESS_METRICS:
            registry.register(metric)
        ProcessCollector(registry=registry)
    registry.register(OutboxCollector(session_factory))
    return registry


def exposition(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """The registry in the format the scraper asked for (Prometheus text unless it asks for OpenMetrics),
    and its content type."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
