"""Webhook targets behind a DNS name: a name that resolves to a private, loopback, link-local or metadata
address is refused when the webhook is registered and again when a delivery is sent, and the sender
connects to the address it checked, not to whatever the name resolves to a moment later.

DNS is simulated by replacing ``socket.getaddrinfo`` for made-up names under ``.example`` (the tests
need no network); every other name goes to the real resolver."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from referral.models import DeliveryStatus, Webhook, WebhookDelivery
from referral.services import outbox, webhook_http
from storage import Storage
from tests.support.webhooks import SECRET, emit, notifications_app
from tests.support.world import Practice

PUBLIC = "93.184.216.34"


class FakeDns:
    """Answers for made-up names; an answer can be changed at any time (a name re-pointed in DNS)."""

    def __init__(self, real: Callable[..., list[Any]]) -> None:
        self.real = real
        self.answers: dict[str, list[str]] = {}
        self.lookups: list[str] = []
        self._rebind: dict[str, list[str]] = {}

    def rebind_after_next_lookup(self, name: str, addresses: list[str]) -> None:
        """The next lookup of ``name`` still gets the current answer; every later one gets ``addresses``."""
        self._rebind[name] = addresses

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in self.answers:
            return self.real(host, port, *args, **kwargs)
        self.lookups.append(name)
        answer = self.answers[name]
        if name in self._rebind:
            self.answers[name] = self._rebind.pop(name)
        return [(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (address, int(port or 0), 0, 0) if ":" in address else (address, int(port or 0)))
                for address in answer]


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake = FakeDns(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every address the webhook sender connects to; the connection itself is refused."""
    made: list[tuple[str, int]] = []

    def refuse(address: tuple[str, int], *_args: Any, **_kwargs: Any) -> socket.socket:
        made.append((address[0], address[1]))
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(webhook_http.socket, "create_connection", refuse)
    return made


@pytest.fixture
def backend() -> str:
    return "sqlite-local"


@pytest.fixture
def app(tmp_path: Path, database_url: str, store: Storage) -> Iterator[Flask]:
    # Private addresses refused, as in production.
    with notifications_app(tmp_path, database_url, store, webhook_allow_private=False) as application:
        yield application


@pytest.fixture
def factory(app: Flask) -> sessionmaker[Session]:
    return app.extensions["referral.sessionmaker"]


def register(practice: Practice, url: str) -> Any:
    return practice.org_admin.post("/api/v1/webhooks", {"url": url, "events": ["referral.routed"], "secret": SECRET})


def webhook_rows(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(Webhook)) or 0


@pytest.mark.parametrize(("addresses", "rule"), [
    (["10.20.30.40"], "private"),
    (["127.0.0.1"], "loopback"),
    (["169.254.169.254"], "link-local"),  # the cloud metadata service
    (["fd00:ec2::254"], "private"),  # the metadata service over IPv6
    (["::ffff:192.168.1.10"], "private"),
    (["fec0::1"], "site-local"),
    ([PUBLIC, "10.0.0.5"], "private"),  # one bad answer among good ones is enough
])
def test_a_name_that_resolves_to_an_internal_address_is_refused_at_registration(
        dns: FakeDns, factory: sessionmaker[Session], riverside: Practice, addresses: list[str], rule: str):
    dns.answers["hooks.partner-clinic.example"] = addresses

    response = register(riverside, "https://hooks.partner-clinic.example/referral")

    assert response.status_code == 422, response.get_json()
    assert response.get_json()["errors"]["url"] == [
        f"The host resolves to a {rule} address; webhooks must point to a public address "
        "(set WEBHOOK_ALLOW_PRIVATE=1 only for development)."]
    assert dns.lookups == ["hooks.partner-clinic.example"]
    assert webhook_rows(factory) == 0


def test_a_name_in_the_hosts_file_is_resolved_like_any_other(dns: FakeDns, factory: sessionmaker[Session],
                                                              riverside: Practice):
    # localhost comes from /etc/hosts (through the real resolver), not from DNS
    response = register(riverside, "http://localhost:8080/hook")

    assert response.status_code == 422
    assert "loopback" in response.get_json()["message"]
    assert webhook_rows(factory) == 0


def test_a_name_that_resolves_to_public_addresses_is_registered(dns: FakeDns, factory: sessionmaker[Session],
                                                                riverside: Practice):
    dns.answers["hooks.partner-clinic.example"] = [PUBLIC, "2606:2800:220:1::1"]

    response = register(riverside, "https://hooks.partner-clinic.example/referral")

    assert response.status_code == 201, response.get_json()
    assert webhook_rows(factory) == 1


def test_a_name_re_pointed_inside_after_registration_is_refused_at_delivery(
        app: Flask, dns: FakeDns, connections: list[tuple[str, int]], factory: sessionmaker[Session],
        riverside: Practice):
    dns.answers["hooks.partner-clinic.example"] = [PUBLIC]
    assert register(riverside, "https://hooks.partner-clinic.example/referral").status_code == 201
    emit(app, [riverside.id])
    dns.answers["hooks.partner-clinic.example"] = ["169.254.169.254"]

    summary = outbox.DeliverySummary()
    outbox.deliver_due(factory, summary=summary, allow_private=False)

    with factory() as session:
        [row] = session.scalars(sa.select(WebhookDelivery))
    assert connections == []
    assert summary.failed == 1
    assert row.status == DeliveryStatus.PENDING
    assert row.last_error == ("refused: The host resolves to a link-local address; webhooks must point to a "
                              "public address (set WEBHOOK_ALLOW_PRIVATE=1 only for development).")


def test_the_sender_connects_to_the_address_it_checked_not_to_a_later_answer(
        app: Flask, dns: FakeDns, connections: list[tuple[str, int]], factory: sessionmaker[Session],
        riverside: Practice):
    dns.answers["hooks.partner-clinic.example"] = [PUBLIC]
    assert register(riverside, "https://hooks.partner-clinic.example/referral").status_code == 201
    emit(app, [riverside.id])
    lookups_before = len(dns.lookups)
    # public for the send-time check, loopback for anyone who asks again (a rebinding attack)
    dns.rebind_after_next_lookup("hooks.partner-clinic.example", ["127.0.0.1"])

    outbox.deliver_due(factory, allow_private=False)

    # one lookup for the send, and the connection went to the address that lookup approved
    assert len(dns.lookups) == lookups_before + 1
    assert connections == [(PUBLIC, 443)]
    with factory() as session:
        [row] = session.scalars(sa.select(WebhookDelivery))
    assert row.last_error == "connection refused"
