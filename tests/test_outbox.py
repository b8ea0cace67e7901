"""The outbox and its worker against a real HTTP receiver on loopback, on both database backends."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from referral.config import PROJECT_ROOT
from referral.db import utcnow
from referral.models import DeliveryStatus, EmailNotification, OutboxEvent, Webhook, WebhookDelivery
from referral.services import outbox, urlguard, webhook_http
from referral.services.webhook_http import SendResult
from storage import Storage
from tests.support.webhooks import SECRET, T0, Receiver, SmtpSink, delete, emit, notifications_app, register
from tests.support.world import Practice

pytestmark = pytest.mark.both_backends  # stored bytes or database behaviour: both set-ups

NO_JITTER = outbox.RetryPolicy(jitter=lambda _low, high: high)


@pytest.fixture
def app_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Extra settings: a test parametrizes this indirectly with a dict, or with "smtp" for mail to
    the loopback SMTP server."""
    param = getattr(request, "param", {})
    if param == "smtp":
        return {"smtp_url": request.getfixturevalue("sink").url, "mail_from": "referrals@clinic.example.com"}
    return dict(param)


@pytest.fixture
def app(tmp_path: Path, database_url: str, store: Storage, app_overrides: dict[str, Any]) -> Iterator[Flask]:
    settings = {"webhook_allow_private": True, **app_overrides}
    with notifications_app(tmp_path, database_url, store, **settings) as application:
        yield application


@pytest.fixture
def factory(app: Flask) -> sessionmaker[Session]:
    return app.extensions["referral.sessionmaker"]  # type: ignore[no-any-return]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def deliveries(factory: sessionmaker[Session]) -> list[WebhookDelivery]:
    with factory() as session:
        return list(session.scalars(sa.select(WebhookDelivery).order_by(WebhookDelivery.id)))


def count(factory: sessionmaker[Session], model: type[Any]) -> int:
    with factory() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def committed_rows(app: Flask, table: str) -> int:
    """Count from another connection, outside any transaction: SQLite sessions here begin with
    BEGIN IMMEDIATE, which would wait for the writer under test."""
    raw = app.extensions["referral.engine"].raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 (a fixed table name)
        return int(cursor.fetchone()[0])
    finally:
        raw.close()


def deliver(factory: sessionmaker[Session], **kwargs: Any) -> tuple[int, outbox.DeliverySummary]:
    summary = outbox.DeliverySummary()
    kwargs.setdefault("allow_private", True)
    handled = outbox.deliver_due(factory, summary=summary, **kwargs)
    return handled, summary


# --- the payload and its signature ------------------------------------------------------------------


def test_a_delivery_carries_the_exact_payload_and_a_signature_the_receiver_can_verify(
        app: Flask, factory: sessionmaker[Session], receiver: Receiver, riverside: Practice):
    register(riverside, receiver.url)
    referral_id = str(uuid.uuid4())
    [event_id] = emit(app, [riverside.id], data={
        "referral_id": referral_id, "status": "routed", "assigned_provider_id": riverside.dentist_provider_id,
        "specialty": "endodontics", "urgency": "urgent"})

    handled, summary = deliver(factory)

    assert (handled, summary.as_dict()) == (1, {"delivered": 1, "failed": 0, "dead": 0})
    [receipt] = receiver.receipts
    assert receipt.path == "/hooks/referral"
    assert receipt.headers["content-type"] == "application/json"
    assert receipt.headers["x-referral-event-id"] == str(event_id)
    assert receipt.headers["user-agent"].startswith("teledentistry-referral-webhooks/")
    payload = receipt.json
    assert list(payload) == ["id", "type", "created_at", "data"]
    assert payload["id"] == str(event_id)
    assert payload["type"] == "referral.routed"
    assert payload["data"] == {"referral_id": referral_id, "status": "routed",
                               "assigned_provider_id": riverside.dentist_provider_id,
                               "specialty": "endodontics", "urgency": "urgent"}
    # compact separators
    assert b", " not in receipt.body
    assert b": " not in receipt.body
    for patient_detail in (b"Jane", b"Doe", b"1980-01-01", b"W123456789", b"first_name", b"birth"):
        assert patient_detail not in receipt.body

    header = receipt.headers["x-referral-signature"]
    assert outbox.verify_signature(SECRET, header, receipt.body)
    assert not outbox.verify_signature("another-secret-" + "x" * 32, header, receipt.body)
    assert not outbox.verify_signature(SECRET, header, receipt.body.replace(b"routed", b"routes", 1))
    signed_at = int(header.split(",")[0].removeprefix("t="))
    assert not outbox.verify_signature(SECRET, header, receipt.body, now=signed_at + 301)

    [row] = deliveries(factory)
    assert row.status == DeliveryStatus.DELIVERED
    assert (row.attempts, row.last_status_code, row.last_error, row.next_attempt_at) == (1, 204, None, None)
    assert row.delivered_at is not None


def test_signature_verification_follows_the_documented_scheme():
    body = b'{"id":"1","type":"claims.ready","created_at":"2030-01-07T09:00:00+00:00","data":{}}'
    header = outbox.signature_header(SECRET, body, timestamp=1_893_920_400)
    expected = hmac.new(SECRET.encode(), b"1893920400." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1893920400,v1={expected}"
    assert outbox.verify_signature(SECRET, header, body, now=1_893_920_400 + 299)
    assert outbox.verify_signature(SECRET, f"t=1893920400,v1=00ff,v1={expected}", body, now=1_893_920_400)
    for broken in ("", "t=1893920400", f"v1={expected}", f"t=abc,v1={expected}", "t=1893920400,v1=é",
                   f"t=١٨٩٣٩٢٠٤٠٠,v1={expected}"):
        assert not outbox.verify_signature(SECRET, broken, body, now=1_893_920_400), broken


# --- retries, backoff and the dead letter -----------------------------------------------------------


def test_a_failing_receiver_is_retried_with_exponential_backoff(
        app: Flask, factory: sessionmaker[Session], receiver: Receiver, riverside: Practice):
    register(riverside, receiver.url)
    emit(app, [riverside.id])
    receiver.fail_first = 2

    _, first = deliver(factory, now=T0, policy=NO_JITTER)
    [row] = deliveries(factory)
    assert first.as_dict() == {"delivered": 0, "failed": 1, "dead": 0}
    assert row.status == DeliveryStatus.PENDING
    assert (row.attempts, row.last_status_code) == (1, 500)
    assert row.last_error == "HTTP 500: receiver is down"
    assert row.next_attempt_at == T0 + timedelta(seconds=30)

    assert deliver(factory, now=T0 + timedelta(seconds=29), policy=NO_JITTER)[0] == 0
    assert len(receiver.receipts) == 1

    second_try = T0 + timedelta(seconds=30)
    deliver(factory, now=second_try, policy=NO_JITTER)
    [row] = deliveries(factory)
    assert row.attempts == 2
    assert row.next_attempt_at == second_try + timedelta(seconds=60)

    _, third = deliver(factory, now=second_try + timedelta(seconds=60), policy=NO_JITTER)
    [row] = deliveries(factory)
    assert third.delivered == 1
    assert (row.status, row.attempts, row.last_status_code, row.last_error) == (DeliveryStatus.DELIVERED, 3, 204, None)
    assert len({r.headers["x-referral-event-id"] for r in receiver.receipts}) == 1


def test_backoff_is_exponential_with_full_jitter_under_the_cap():
    policy = outbox.RetryPolicy()
    for attempts in range(1, 12):
        ceiling = min(3600.0, 30.0 * 2 ** (attempts - 1))
        delays = [policy.backoff(attempts).total_seconds() for _ in range(50)]
        assert all(1.0 <= d <= ceiling for d in delays), attempts
    assert NO_JITTER.backoff(1) == timedelta(seconds=30)
    assert NO_JITTER.backoff(4) == timedelta(seconds=240)
    assert NO_JITTER.backoff(20) == timedelta(hours=1)
    assert NO_JITTER.backoff(5000) == timedelta(hours=1)
    # full jitter spreads retries over the whole window rather than bunching them at its end
    assert min(policy.backoff(8).total_seconds() for _ in range(200)) < 1800


def test_a_delivery_goes_dead_after_the_maximum_number_of_attempts(
        app: Flask, factory: sessionmaker[Session], receiver: Receiver, riverside: Practice):
    register(riverside, receiver.url)
    emit(app, [riverside.id])
    receiver.fail_first = 100
    policy = outbox.RetryPolicy(max_attempts=3, jitter=lambda _low, high: high)

    now = T0
    outcomes = []
    for _ in range(3):
        _, summary = deliver(factory, now=now, policy=policy)
        outcomes.append(summary.as_dict())
        [row] = deliveries(factory)
        now = row.next_attempt_at or now

    assert outcomes[-1] == {"delivered": 0, "failed": 0, "dead": 1}
    assert [o["failed"] for o in outcomes[:2]] == [1, 1]
    [row] = deliveries(factory)
    assert (row.status, row.attempts, row.next_attempt_at) == (DeliveryStatus.DEAD, 3, None)
    assert row.last_error == "HTTP 500: receiver is down"
    assert deliver(factory, now=T0 + timedelta(days=30), policy=policy)[0] == 0
    assert len(receiver.receipts) == 3


def test_network_errors_count_as_failed_attempts(app: Flask, factory: sessionmaker[Session], riverside: Practice):
    with Receiver() as gone:
        url = gone.url
    register(riverside, url)  # nothing listens on this port any more
    emit(app, [riverside.id])

    _, summary = deliver(factory, now=T0, policy=NO_JITTER)

    [row] = deliveries(factory)
    assert summary.failed == 1
    assert (row.status, row.attempts, row.last_status_code) == (DeliveryStatus.PENDING, 1, None)
    assert row.last_error == "connection refused"


def test_redirects_are_not_followed(app: Flask, factory: sessionmaker[Session], receiver: Receiver,
                                    riverside: Practice):
    register(riverside, receiver.url)
    emit(app, [riverside.id])
    receiver.status = 302

    deliver(factory, now=T0)

    [row] = deliveries(factory)
    assert len(receiver.receipts) == 1
    assert row.status == DeliveryStatus.PENDING
    assert row.last_error == "HTTP 302 (redirects are not followed)"


# --- at least once, and only one worker per claim ---------------------------------------------------


def test_a_worker_that_dies_between_send_and_record_sends_again_later(
        app: Flask, factory: sessionmaker[Session], receiver: Receiver, riverside: Practice):
    register(riverside, receiver.url)
    [event_id] = emit(app, [riverside.id])

    def crash(_delivery_id: uuid.UUID, result: SendResult) -> None:
        assert result.ok
        raise SystemExit("worker killed after the send")

    with pytest.raises(SystemExit):
        deliver(factory, now=T0, after_send=crash)

    [row] = deliveries(factory)
    assert len(receiver.receipts) == 1
    assert (row.status, row.attempts) == (DeliveryStatus.PENDING, 1)
    lease_end = T0 + outbox.RetryPolicy().lease
    assert row.next_attempt_at == lease_end
    # Within the lease nobody sends it again...
    assert deliver(factory, now=lease_end - timedelta(seconds=1))[0] == 0
    # ...after it, the next run does.
    _, summary = deliver(factory, now=lease_end)
    assert summary.delivered == 1
    assert [r.headers["x-referral-event-id"] for r in receiver.receipts] == [str(event_id)] * 2
    assert [r.json["id"] for r in receiver.receipts] == [str(event_id)] * 2
    [row] = deliveries(factory)
    assert (row.status, row.attempts) == (DeliveryStatus.DELIVERED, 2)


def test_a_claim_whose_final_attempt_never_reported_back_goes_dead(
        app: Flask, factory: sessionmaker[Session], receiver: Receiver, riverside: Practice):
    register(riverside, receiver.url)
    emit(app, [riverside.id])
    policy = outbox.RetryPolicy(max_attempts=1)

    def crash(_delivery_id: uuid.UUID, _result: SendResult) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        deliver(factory, now=T0, policy=policy, after_send=crash)
    _, summary = deliver(factory, now=T0 + policy.lease, policy=policy)

    [row] = deliveries(factory)
    assert summary.dead == 1
    assert (row.status, row.last_error) == (DeliveryStatus.DEAD, "no result recorded for the last attempt")
    assert len(receiver.receipts) == 1


def _race(factory: sessionmaker[Session], workers: int, **kwargs: Any) -> list[outbox.DeliverySummary]:
    barrier = threading.Barrier(workers)
    summaries = [outbox.DeliverySummary() for _ in range(workers)]
    errors: list[BaseException] = []

    def work(summary: outbox.DeliverySummary) -> None:
        try:
            barrier.wait(timeout=10)
            outbox.deliver_due(factory, summary=summary, allow_private=True, **kwargs)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in summaries]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return summaries


def test_two_workers_racing_for_one_due_delivery_send_it_once(
        app: Flask, factory: sessionmaker[Session], receiver: Receiver, riverside: Practice):
    register(riverside, receiver.url)
    emit(app, [riverside.id])
    receiver.delay = 0.3  # both workers are certainly running while the first one sends

    summaries = _race(factory, 2, now=T0)

    assert len(receiver.receipts) == 1
    assert sum(s.delivered for s in summaries) == 1
    assert deliveries(factory)[0].status == DeliveryStatus.DELIVERED


def test_concurrent_workers_share_a_backlog_without_sending_anything_twice(
        app: Flask, factory: sessionmaker[Session], receiver: Receiver, riverside: Practice):
    register(riverside, receiver.url)
    event_ids = [event_id for _ in range(8) for event_id in emit(app, [riverside.id])]
    receiver.delay = 0.05

    summaries = _race(factory, 3, now=T0, policy=outbox.RetryPolicy(batch=1))

    received = sorted(r.headers["x-referral-event-id"] for r in receiver.receipts)
    assert received == sorted(str(e) for e in event_ids)
    assert sum(s.delivered for s in summaries) == 8


# --- what enqueue writes ----------------------------------------------------------------------------


def test_enqueue_writes_nothing_when_the_caller_rolls_back(factory: sessionmaker[Session], receiver: Receiver,
                                                         riverside: Practice):
    register(riverside, receiver.url)
    with factory() as session:
        events = outbox.enqueue(session, organization_ids=[uuid.UUID(riverside.id)], event_type="referral.routed",
                                data={"referral_id": str(uuid.uuid4())})
        assert len(events) == 1
        session.rollback()

    assert count(factory, OutboxEvent) == 0
    assert count(factory, WebhookDelivery) == 0
    assert deliver(factory)[0] == 0
    assert receiver.receipts == []


def test_enqueue_leaves_the_commit_to_its_caller(app: Flask, factory: sessionmaker[Session], receiver: Receiver,
                                                 riverside: Practice):
    register(riverside, receiver.url)
    with factory() as session:
        outbox.enqueue(session, organization_ids=[uuid.UUID(riverside.id)], event_type="report.signed",
                       data={"referral_id": uuid.uuid4()})
        assert committed_rows(app, "outbox_events") == 0
        session.commit()
    assert count(factory, OutboxEvent) == 1


def test_enqueue_fans_out_one_event_per_organization_to_subscribed_active_webhooks(
        app: Flask, factory: sessionmaker[Session], receiver: Receiver, riverside: Practice,
        hillside: Practice):
    routed_only = register(riverside, receiver.url, ["referral.routed"])
    both = register(riverside, receiver.url, ["referral.accepted", "referral.routed"])
    register(riverside, receiver.url, ["referral.accepted"])
    register(hillside, receiver.url, ["referral.accepted"])
    disabled = register(hillside, receiver.url, ["referral.routed"])
    with factory() as session:
        session.execute(sa.update(Webhook).where(Webhook.id == uuid.UUID(disabled)).values(active=False))
        session.commit()

    event_ids = emit(app, [riverside.id, hillside.id, riverside.id])

    with factory() as session:
        events = {e.id: e for e in session.scalars(sa.select(OutboxEvent))}
        assert set(events) == set(event_ids)
        assert sorted(str(e.organization_id) for e in events.values()) == sorted([riverside.id, hillside.id])
        targets = {str(d.webhook_id) for d in session.scalars(sa.select(WebhookDelivery))}
    assert targets == {routed_only, both}
    assert deliver(factory)[1].delivered == 2


def test_enqueue_refuses_unknown_event_types_and_data_that_is_not_ids_and_codes(
        factory: sessionmaker[Session], riverside: Practice):
    with factory() as session:
        with pytest.raises(ValueError, match="unknown event type"):
            outbox.enqueue(session, organization_ids=[uuid.UUID(riverside.id)], event_type="patient.created",
                           data={})
        with pytest.raises(TypeError, match=r"data\.blob"):
            outbox.enqueue(session, organization_ids=[uuid.UUID(riverside.id)], event_type="claims.ready",
                           data={"blob": b"bytes"})
    assert count(factory, OutboxEvent) == 0


# --- deleted webhooks and the SSRF rule at send time ------------------------------------------------


def test_a_deleted_webhook_gets_nothing_new(app: Flask, factory: sessionmaker[Session], receiver: Receiver,
                                            riverside: Practice):
    webhook_id = register(riverside, receiver.url)
    emit(app, [riverside.id])
    assert delete(riverside.org_admin, f"/api/v1/webhooks/{webhook_id}").status_code == 204

    emit(app, [riverside.id])
    handled, _ = deliver(factory)

    [row] = deliveries(factory)
    assert (row.status, row.last_error) == (DeliveryStatus.DEAD, "webhook deleted")
    assert count(factory, OutboxEvent) == 2
    assert handled == 0
    assert receiver.receipts == []


def test_a_delivery_claimed_after_its_webhook_was_deleted_is_not_sent(
        app: Flask, factory: sessionmaker[Session], receiver: Receiver, riverside: Practice):
    webhook_id = register(riverside, receiver.url)
    emit(app, [riverside.id])
    with factory() as session:
        # as if the delete committed while this delivery was already being claimed
        session.execute(sa.update(Webhook).where(Webhook.id == uuid.UUID(webhook_id)).values(deleted_at=utcnow()))
        session.commit()

    _, summary = deliver(factory)

    assert summary.dead == 1
    assert deliveries(factory)[0].last_error == "webhook deleted"
    assert receiver.receipts == []


def test_the_worker_refuses_to_send_to_an_address_that_is_now_private(
        app: Flask, factory: sessionmaker[Session], receiver: Receiver, riverside: Practice):
    register(riverside, receiver.url)  # accepted while private addresses were allowed
    emit(app, [riverside.id])

    _, summary = deliver(factory, now=T0, allow_private=False)

    [row] = deliveries(factory)
    assert summary.failed == 1
    assert receiver.receipts == []
    assert (row.status, row.attempts, row.last_status_code) == (DeliveryStatus.PENDING, 1, None)
    assert row.last_error is not None
    assert row.last_error.startswith("refused: The host resolves to a loopback address")


def test_the_sender_connects_to_the_address_it_checked():
    answers = iter([[(2, 1, 6, "", ("93.184.216.34", 80))], [(2, 1, 6, "", ("127.0.0.1", 80))]])

    def rebinding_dns(*_args: Any, **_kwargs: Any) -> list[Any]:
        return next(answers)

    urlguard.check_url("http://hooks.example.com/x", allow_private=False, resolver=rebinding_dns)
    # the name now points at loopback: the send-time check sees it and nothing is sent
    result = webhook_http.post("http://hooks.example.com/x", b"{}", {}, allow_private=False,
                               resolver=rebinding_dns)
    assert result == SendResult(None, "refused: The host resolves to a loopback address; webhooks must point to "
                                      "a public address (set WEBHOOK_ALLOW_PRIVATE=1 only for development).")


@pytest.mark.parametrize(("address", "rule"), [
    ("127.0.0.1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.9", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),
    ("0.0.0.0", "unspecified"),  # noqa: S104 (an address to refuse, not to bind)
    ("224.0.0.1", "multicast"),
    ("100.64.0.1", "not globally routable"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fe80::1", "link-local"),
    ("fc00::1", "private"),
    ("ff02::1", "multicast"),
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:10.0.0.1", "private"),
    ("2002:a9fe:a9fe::1", "link-local"),  # 6to4 wrapping 169.254.169.254
])
def test_addresses_outside_the_public_internet_are_named_by_their_rule(address: str, rule: str):
    assert urlguard.address_rule(ipaddress.ip_address(address)) == rule


def test_a_host_is_refused_when_any_of_its_addresses_is_private():
    def dns(*_args: Any, **_kwargs: Any) -> list[Any]:
        return [(2, 1, 6, "", ("93.184.216.34", 443)), (10, 1, 6, "", ("fd00::5", 443, 0, 0))]

    with pytest.raises(urlguard.UnsafeUrl, match="private"):
        urlguard.check_url("https://mixed.example.com/hook", allow_private=False, resolver=dns)
    target = urlguard.check_url("https://mixed.example.com/hook?x=1", allow_private=True, resolver=dns)
    assert (target.host, target.port, target.path) == ("mixed.example.com", 443, "/hook?x=1")
    assert urlguard.address_rule(ipaddress.ip_address("93.184.216.34")) is None


# --- the worker command -----------------------------------------------------------------------------


def test_the_worker_command_delivers_what_is_due_and_prints_a_summary(
        app: Flask, receiver: Receiver, riverside: Practice):
    register(riverside, receiver.url)
    with Receiver() as failing:
        failing.fail_first = 100
        register(riverside, failing.url)
        emit(app, [riverside.id])

        result = app.test_cli_runner().invoke(args=["worker", "--once"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"delivered": 1, "failed": 1, "dead": 0}
    assert len(receiver.receipts) == 1
    assert len(failing.receipts) == 1


@pytest.mark.parametrize("app_overrides", [{"webhook_max_attempts": 1}], indirect=True)
def test_the_worker_command_uses_the_configured_maximum_attempts(app: Flask, receiver: Receiver,
                                                                 riverside: Practice):
    register(riverside, receiver.url)
    emit(app, [riverside.id])
    receiver.fail_first = 100

    result = app.test_cli_runner().invoke(args=["worker", "--once"])

    assert json.loads(result.stdout) == {"delivered": 0, "failed": 0, "dead": 1}


def test_the_worker_stops_gracefully_on_sigterm(tmp_path: Path, sqlite_template: Path):
    database = tmp_path / "worker.db"
    shutil.copy(sqlite_template, database)
    env = {**os.environ, "APP_ENV": "test", "DATABASE_URL": f"sqlite:///{database}",
           "STORAGE_URL": f"file://{tmp_path / 'objects'}", "INSTANCE_PATH": str(tmp_path / "instance")}
    process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--interval", "0.2"],
                               cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        started = process.stdout.readline()
        assert json.loads(started) == {"worker": "started", "interval": 0.2}
        time.sleep(0.5)  # at least one poll has run
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1]) == {"worker": "stopped"}


# --- email to the assigned reader -------------------------------------------------------------------


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


@pytest.mark.parametrize("app_overrides", ["smtp"], indirect=True)
def test_a_routed_referral_emails_the_assigned_reader_once_without_patient_details(
        app: Flask, sink: SmtpSink, factory: sessionmaker[Session], riverside: Practice, hillside: Practice):
    referral_id = str(uuid.uuid4())
    data = {"referral_id": referral_id, "status": "routed", "assigned_provider_id": riverside.dentist_provider_id}
    # the workflow tells both practices; only the reader's own organization's event sends mail
    emit(app, [hillside.id, riverside.id], data=data)
    emit(app, [riverside.id], event_type="referral.accepted", data=data)

    first = app.test_cli_runner().invoke(args=["worker", "--once"])
    second = app.test_cli_runner().invoke(args=["worker", "--once"])

    assert json.loads(first.output) == {"delivered": 0, "failed": 0, "dead": 0, "emailed": 1}
    assert json.loads(second.output)["emailed"] == 0
    [(mail_from, recipients, raw)] = sink.messages
    message = email.message_from_string(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    text = message.get_content()
    assert message["Subject"] == "A referral has been routed to you"
    assert mail_from == "referrals@clinic.example.com"
    assert recipients == ["dentist@riverside-family-dental.example.com"]
    assert referral_id in text
    assert f"/referrals/{referral_id}" in text
    assert "/api/" not in text
    for patient_detail in ("Jane", "Doe", "1980", "W123456789"):
        assert patient_detail not in text
    with factory() as session:
        statuses = sorted(n.status for n in session.scalars(sa.select(EmailNotification)))
    assert statuses == ["sent", "skipped"]


def test_without_smtp_url_the_worker_sends_no_email(app: Flask, sink: SmtpSink, factory: sessionmaker[Session],
                                                     riverside: Practice):
    emit(app, [riverside.id], data={"referral_id": str(uuid.uuid4()),
                                        "assigned_provider_id": riverside.dentist_provider_id})

    result = app.test_cli_runner().invoke(args=["worker", "--once"])

    assert json.loads(result.stdout) == {"delivered": 0, "failed": 0, "dead": 0}
    assert sink.messages == []
    assert count(factory, EmailNotification) == 0
