"""The transactional outbox and the webhook worker.

A state change and the events announcing it are written in one transaction (``enqueue`` never
commits), so there is never an event for a change that was rolled back, nor a change whose event was
lost. The worker (``deliver_due``) then sends each pending delivery:

1. claim: a short transaction selects due rows (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several
   workers share the work; SQLite serializes writers anyway), counts the attempt and pushes
   ``next_attempt_at`` out by the lease. A worker that dies holding a claim loses it when the lease
   runs out, and the delivery becomes due again.
2. send: the HTTP POST happens outside any transaction.
3. record: a second short transaction marks the row delivered, or schedules the retry.

So delivery is at least once: a worker that dies between 2 and 3 leaves the row pending and it is sent
again. Receivers deduplicate by the event id, which every attempt carries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from referral.config import DEFAULT_WEBHOOK_MAX_ATTEMPTS
from referral.db import new_id, utcnow
from referral.models import DeliveryStatus, OutboxEvent, Webhook, WebhookDelivery
from referral.services import webhook_http
from referral.services.webhook_http import SendResult

log = logging.getLogger(__name__)

EVENT_TYPES = (
    "referral.routed",
    "referral.accepted",
    "referral.declined",
    "referral.retake_requested",
    "referral.unassigned",
    "referral.cancelled",
    "referral.resubmitted",
    "report.signed",
    "claims.ready",
    "message.created",
    "image.preview_failed",
)
SIGNATURE_HEADER = "X-Referral-Signature"
EVENT_ID_HEADER = "X-Referral-Event-Id"
USER_AGENT = "teledentistry-referral-webhooks/1"

Sender = Callable[..., SendResult]
SessionFactory = Callable[[], Session]


# --- writing events ---------------------------------------------------------------------------------


def _jsonable(value: Any, path: str) -> Any:
    """ids, codes and timestamps as JSON; anything else is refused rather than guessed at."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return _jsonable(value.value, path)
    if isinstance(value, dict):
        return {str(k): _jsonable(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v, f"{path}[]") for v in value]
    raise TypeError(f"event data {path} is a {type(value).__name__}; use ids, codes and timestamps")


def enqueue(
    session: Session,
    *,
    organization_ids: Iterable[uuid.UUID],
    event_type: str,
    data: dict[str, Any],
) -> list[OutboxEvent]:
    """Add one event per distinct organization, and one pending delivery per active webhook of that
    organization subscribed to ``event_type``, to the caller's transaction. Never commits: the events
    commit, or roll back, with the change they announce.

    ``data`` goes to the organizations' webhooks as it is, so it must hold ids and codes only (referral
    id, provider ids, status, specialty, urgency, timestamps), never names, birth dates, member ids or
    free text. UUIDs, datetimes and enums are converted to JSON strings.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    payload = _jsonable(data, "data")
    organizations = list(dict.fromkeys(
        org if isinstance(org, uuid.UUID) else uuid.UUID(str(org)) for org in organization_ids
    ))
    if not organizations:
        return []
    now = utcnow()
    events = {org: OutboxEvent(id=new_id(), organization_id=org, type=event_type, created_at=now, data=payload)
              for org in organizations}
    session.add_all(events.values())
    webhooks = session.scalars(
        sa.select(Webhook).where(
            Webhook.organization_id.in_(organizations),
            Webhook.active.is_(True),
            Webhook.deleted_at.is_(None),
        )
    )
    for webhook in webhooks:
        if event_type in (webhook.event_types or []):
            session.add(WebhookDelivery(
                event_id=events[webhook.organization_id].id,
                webhook_id=webhook.id,
                status=DeliveryStatus.PENDING,
                attempts=0,
                next_attempt_at=now,
            ))
    session.flush()
    return list(events.values())


# --- signatures -------------------------------------------------------------------------------------


def payload_bytes(event: OutboxEvent) -> bytes:
    return json.dumps(
        {"id": str(event.id), "type": event.type, "created_at": event.created_at.isoformat(), "data": event.data},
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """``t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={_digest(secret, t, body)}"


def verify_signature(secret: str, header: str, body: bytes, tolerance: int = 300, now: float | None = None) -> bool:
    """What a receiver does: recompute the HMAC over the raw body exactly as received and compare in
    constant time; refuse a timestamp more than ``tolerance`` seconds away, which stops replays."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = _digest(secret, timestamp, body).encode()
    # compare_digest on str refuses non-ASCII, and a header is attacker-controlled: compare bytes.
    return any(hmac.compare_digest(expected, c.encode("utf-8", "replace")) for c in candidates)


# --- delivering -------------------------------------------------------------------------------------

_random = secrets.SystemRandom()


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. ``jitter(low, high)`` picks the delay; tests pass a deterministic one."""

    max_attempts: int = DEFAULT_WEBHOOK_MAX_ATTEMPTS
    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)
    # Longer than a claimed batch takes to send (batch x timeout), so a live worker keeps its claim.
    lease: timedelta = timedelta(minutes=5)
    batch: int = 10
    timeout: float = 10.0
    jitter: Callable[[float, float], float] = _random.uniform

    def backoff(self, attempts: int) -> timedelta:
        """Exponential with full jitter, at least a second so one run never retries its own failure."""
        doublings = min(max(attempts - 1, 0), 40)  # past the cap anyway; keeps the float finite
        ceiling = min(self.cap.total_seconds(), self.base.total_seconds() * 2**doublings)
        return timedelta(seconds=max(1.0, self.jitter(0.0, ceiling)))


@dataclass
class DeliverySummary:
    delivered: int = 0
    failed: int = 0
    dead: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"delivered": self.delivered, "failed": self.failed, "dead": self.dead}


@dataclass(frozen=True)
class _Job:
    delivery_id: uuid.UUID
    attempts: int
    url: str
    secret: str = field(repr=False)
    event_id: uuid.UUID
    body: bytes


def _settle_dead(delivery: WebhookDelivery, error: str, summary: DeliverySummary) -> None:
    delivery.status = DeliveryStatus.DEAD
    delivery.next_attempt_at = None
    delivery.last_error = error
    summary.dead += 1
    log.info("webhook delivery %s dead: %s", delivery.id, error)


def _claim(factory: SessionFactory, now: datetime, count: int, policy: RetryPolicy,
           summary: DeliverySummary) -> tuple[list[_Job], int]:
    """The jobs to send, and how many due rows were taken (some are settled here without a send)."""
    jobs: list[_Job] = []
    taken = 0
    with factory() as session, session.begin():
        query = (
            sa.select(WebhookDelivery, OutboxEvent, Webhook)
            .join(OutboxEvent, WebhookDelivery.event_id == OutboxEvent.id)
            .join(Webhook, WebhookDelivery.webhook_id == Webhook.id)
            .where(WebhookDelivery.status == DeliveryStatus.PENDING, WebhookDelivery.next_attempt_at <= now)
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(count)
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(of=WebhookDelivery, skip_locked=True)
        for delivery, event, webhook in session.execute(query):
            taken += 1
            if webhook.deleted_at is not None or not webhook.active:
                _settle_dead(delivery, "webhook deleted", summary)
                continue
            if delivery.attempts >= policy.max_attempts:
                # The last allowed attempt was claimed and its worker never came back.
                _settle_dead(delivery, "no result recorded for the last attempt", summary)
                continue
            delivery.attempts += 1
            delivery.last_attempt_at = now
            delivery.next_attempt_at = now + policy.lease
            jobs.append(_Job(delivery.id, delivery.attempts, webhook.url, webhook.secret, event.id,
                             payload_bytes(event)))
    return jobs, taken


def _record(factory: SessionFactory, job: _Job, result: SendResult, now: datetime, policy: RetryPolicy,
            summary: DeliverySummary) -> None:
    # The attempt count is the claim's fence: if this worker overran its lease and another claimed
    # the row, only that worker's result counts (a success is always kept).
    with factory() as session, session.begin():
        where = [WebhookDelivery.id == job.delivery_id, WebhookDelivery.status == DeliveryStatus.PENDING]
        if result.ok:
            values: dict[str, Any] = {"status": DeliveryStatus.DELIVERED, "delivered_at": now,
                                      "next_attempt_at": None, "last_status_code": result.status_code,
                                      "last_error": None}
        else:
            where.append(WebhookDelivery.attempts == job.attempts)
            values = {"last_status_code": result.status_code, "last_error": (result.error or "failed")[:300]}
            if job.attempts >= policy.max_attempts:
                values.update(status=DeliveryStatus.DEAD, next_attempt_at=None)
            else:
                values["next_attempt_at"] = now + policy.backoff(job.attempts)
        updated = cast(CursorResult[Any], session.execute(sa.update(WebhookDelivery).where(*where).values(**values)))
        if updated.rowcount != 1:
            log.info("webhook delivery %s was settled by another worker", job.delivery_id)
            return
    if result.ok:
        summary.delivered += 1
        outcome = "delivered"
    elif job.attempts >= policy.max_attempts:
        summary.dead += 1
        outcome = "dead"
    else:
        summary.failed += 1
        outcome = "will retry"
    log.info("webhook delivery %s attempt %d: %s", job.delivery_id, job.attempts, outcome)


def deliver_due(
    session_factory: SessionFactory,
    *,
    now: datetime | None = None,
    limit: int = 100,
    policy: RetryPolicy | None = None,
    allow_private: bool = False,
    summary: DeliverySummary | None = None,
    stop: threading.Event | None = None,
    send: Sender = webhook_http.post,
    after_send: Callable[[uuid.UUID, SendResult], None] | None = None,
) -> int:
    """Send up to ``limit`` due deliveries, a claimed batch at a time; returns how many were settled
    or rescheduled. ``now`` fixes the clock (tests); ``summary`` collects the outcomes; ``stop`` ends
    the run after the current batch; ``after_send`` runs between the send and its record (tests use
    it to stand for a crash at the worst moment)."""
    policy = policy or RetryPolicy()
    summary = summary if summary is not None else DeliverySummary()
    before = summary.delivered + summary.failed + summary.dead

    def clock() -> datetime:
        return now if now is not None else utcnow()

    remaining = limit
    while remaining > 0 and not (stop is not None and stop.is_set()):
        jobs, taken = _claim(session_factory, clock(), min(policy.batch, remaining), policy, summary)
        if taken == 0:
            break
        remaining -= taken
        for job in jobs:
            body = job.body
            headers = {
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                EVENT_ID_HEADER: str(job.event_id),
                SIGNATURE_HEADER: signature_header(job.secret, body),
            }
            result = send(job.url, body, headers, allow_private=allow_private, timeout=policy.timeout)
            if after_send is not None:
                after_send(job.delivery_id, result)
            _record(session_factory, job, result, clock(), policy, summary)
    return summary.delivered + summary.failed + summary.dead - before
