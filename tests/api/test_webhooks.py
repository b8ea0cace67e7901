"""The webhook registration API: who may use it, what it accepts, and what it never shows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from referral.models import AuditEvent, DeliveryStatus, Webhook, WebhookDelivery
from referral.services import outbox
from storage import Storage
from tests.support.webhooks import SECRET, Receiver, delete, emit, notifications_app, register
from tests.support.world import Practice, World


@pytest.fixture
def allow_private() -> bool:
    return True


@pytest.fixture
def app(tmp_path: Path, database_url: str, store: Storage, allow_private: bool) -> Iterator[Flask]:
    with notifications_app(tmp_path, database_url, store, webhook_allow_private=allow_private) as application:
        yield application


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def body(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"url": "https://hooks.example.com/referral", "events": ["referral.routed"],
                              "secret": SECRET}
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def stored(app: Flask, model: type[Any]) -> list[Any]:
    with app.extensions["referral.sessionmaker"]() as session:
        return list(session.scalars(sa.select(model)))


def audit_actions(app: Flask) -> list[tuple[str, str, str]]:
    return [(e.action, e.outcome, e.object_type) for e in stored(app, AuditEvent) if e.object_type == "webhook"]


def test_an_org_admin_registers_a_webhook_and_never_sees_its_secret_again(app: Flask, riverside: Practice):
    response = riverside.org_admin.post("/api/v1/webhooks", body(events=["report.signed", "referral.routed",
                                                                          "referral.routed"]))

    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert set(created) == {"id", "url", "events", "active", "created_at"}
    assert created["url"] == "https://hooks.example.com/referral"
    assert created["events"] == ["referral.routed", "report.signed"]
    assert created["active"] is True
    listed = riverside.org_admin.get("/api/v1/webhooks").get_json()["items"]
    assert listed == [created]
    assert riverside.org_admin.get(f"/api/v1/webhooks/{created['id']}").get_json() == created
    assert SECRET not in riverside.org_admin.get("/api/v1/openapi.json").get_data(as_text=True)

    [row] = stored(app, Webhook)
    assert row.secret == SECRET  # kept, because signing needs it
    assert str(row.created_by_user_id) == riverside.users["org_admin"]
    assert audit_actions(app) == [("webhook.create", "success", "webhook")]
    [event] = [e for e in stored(app, AuditEvent) if e.action == "webhook.create"]
    assert event.details == {"events": ["referral.routed", "report.signed"]}
    assert SECRET not in str(event.details)


def test_webhook_registration_refuses_bad_input(app: Flask, riverside: Practice):
    cases: list[tuple[dict[str, Any], str]] = [
        (body(url="ftp://hooks.example.com/x"), "url"),
        (body(url="hooks.example.com/x"), "url"),
        (body(url="https://"), "url"),
        (body(url="https://hooks.example.com/" + "a" * 2000), "url"),
        (body(url="https://hooks.example.com/a b"), "url"),
        (body(url="https://hooks.example.com:99999/"), "url"),
        (body(url="https://hooks.example.com:0/"), "url"),
        (body(events=["referral.routed", "patient.created"]), "events"),
        (body(events=[]), "events"),
        (body(events="referral.routed"), "events"),
        (body(secret="s" * 31), "secret"),
        (body(secret="s" * 257), "secret"),
        (body(secret="é" * 40), "secret"),
        ({"url": "https://hooks.example.com/x", "events": ["referral.routed"]}, "secret"),
        (body(active=False), "active"),
        (body(organization_id=str(uuid.uuid4())), "organization_id"),
    ]
    for payload, field in cases:
        response = riverside.org_admin.post("/api/v1/webhooks", payload)
        assert response.status_code == 422, (payload, response.get_json())
        error = response.get_json()
        assert field in error["errors"].get("json", error["errors"]), (field, error)
    assert stored(app, Webhook) == []


@pytest.mark.parametrize("allow_private", [False])
@pytest.mark.parametrize(("url", "rule"), [
    ("http://127.0.0.1:8080/hook", "loopback"),
    ("http://localhost/hook", "loopback"),
    ("http://10.0.0.8/hook", "private"),
    ("http://192.168.10.1/hook", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[::1]/hook", "loopback"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),
    ("http://0.0.0.0/hook", "unspecified"),
    ("http://2130706433/hook", "loopback"),  # 127.0.0.1 written as one number
    ("ftp://files.example.com/hook", "http or https"),
    ("https://user:pass@hooks.example.com/hook", "credentials"),
    ("https://token@hooks.example.com/hook", "credentials"),
])
def test_urls_that_reach_inside_the_network_are_refused(app: Flask, riverside: Practice, url: str, rule: str):
    response = riverside.org_admin.post("/api/v1/webhooks", body(url=url))

    assert response.status_code == 422, response.get_json()
    error = response.get_json()
    assert rule in error["message"]
    assert rule in error["errors"]["url"][0]
    assert "127.0.0.1" not in error["message"].replace(url, "")  # the resolved address is not echoed
    assert stored(app, Webhook) == []


def test_private_urls_are_accepted_when_the_setting_allows_them(riverside: Practice, receiver: Receiver):
    response = riverside.org_admin.post("/api/v1/webhooks", body(url=receiver.url))
    assert response.status_code == 201, response.get_json()
    # credentials stay refused whatever the setting
    refused = riverside.org_admin.post("/api/v1/webhooks", body(url="http://u:p@127.0.0.1/x"))
    assert refused.status_code == 422


def test_only_org_admins_manage_webhooks(world: World, riverside: Practice):
    webhook_id = register(riverside, "https://hooks.example.com/referral")
    for client in (riverside.staff, riverside.dentist, riverside.billing, world.admin):
        assert client.post("/api/v1/webhooks", body()).status_code == 403
        assert client.get("/api/v1/webhooks").status_code == 403
        assert client.get(f"/api/v1/webhooks/{webhook_id}").status_code == 403
        assert client.get(f"/api/v1/webhooks/{webhook_id}/deliveries").status_code == 403
        assert delete(client, f"/api/v1/webhooks/{webhook_id}").status_code == 403
    assert world.anonymous.get("/api/v1/webhooks").status_code == 401
    assert riverside.org_admin.get(f"/api/v1/webhooks/{webhook_id}").get_json()["active"] is True


def test_another_practices_webhook_is_not_found_on_any_route(app: Flask, riverside: Practice, hillside: Practice):
    webhook_id = register(riverside, "https://hooks.example.com/referral")
    outsider = hillside.org_admin

    assert outsider.get(f"/api/v1/webhooks/{webhook_id}").status_code == 404
    assert outsider.get(f"/api/v1/webhooks/{webhook_id}/deliveries").status_code == 404
    assert delete(outsider, f"/api/v1/webhooks/{webhook_id}").status_code == 404
    assert outsider.get("/api/v1/webhooks").get_json()["items"] == []

    [row] = stored(app, Webhook)
    assert row.deleted_at is None
    denied = [a for a in audit_actions(app) if a[1] == "denied"]
    assert denied == [("webhook.access", "denied", "webhook")] * 3
    assert riverside.org_admin.get(f"/api/v1/webhooks/{uuid.uuid4()}").status_code == 404


def test_deleting_a_webhook_gives_up_its_pending_deliveries(app: Flask, riverside: Practice):
    webhook_id = register(riverside, "https://hooks.example.com/referral")
    kept = register(riverside, "https://hooks.example.com/other")
    emit(app, [riverside.id])

    assert delete(riverside.org_admin, f"/api/v1/webhooks/{webhook_id}").status_code == 204

    assert riverside.org_admin.get(f"/api/v1/webhooks/{webhook_id}").status_code == 404
    assert riverside.org_admin.get(f"/api/v1/webhooks/{webhook_id}/deliveries").status_code == 404
    assert delete(riverside.org_admin, f"/api/v1/webhooks/{webhook_id}").status_code == 404
    assert [w["id"] for w in riverside.org_admin.get("/api/v1/webhooks").get_json()["items"]] == [kept]
    by_webhook = {str(d.webhook_id): d for d in stored(app, WebhookDelivery)}
    assert (by_webhook[webhook_id].status, by_webhook[webhook_id].last_error) == (DeliveryStatus.DEAD,
                                                                                  "webhook deleted")
    assert by_webhook[kept].status == DeliveryStatus.PENDING
    deleted = next(w for w in stored(app, Webhook) if str(w.id) == webhook_id)
    assert deleted.deleted_at is not None
    assert deleted.active is False
    assert ("webhook.delete", "success", "webhook") in audit_actions(app)


def test_the_deliveries_list_pages_and_filters_by_status(app: Flask, riverside: Practice, receiver: Receiver):
    webhook_id = register(riverside, receiver.url, ["referral.routed", "claims.ready"])
    emitted = [emit(app, [riverside.id], event_type=t)[0] for t in ("referral.routed", "claims.ready",
                                                                    "referral.routed")]
    receiver.fail_first = 1
    outbox.deliver_due(app.extensions["referral.sessionmaker"], allow_private=True)
    path = f"/api/v1/webhooks/{webhook_id}/deliveries"

    everything = riverside.org_admin.get(path).get_json()
    assert everything["next_cursor"] is None
    items = everything["items"]
    assert [i["event_id"] for i in items] == [str(e) for e in reversed(emitted)]  # newest first
    assert set(items[0]) == {"id", "event_id", "event_type", "status", "attempts", "last_status_code",
                             "last_error", "next_attempt_at", "delivered_at"}
    assert [i["event_type"] for i in items] == ["referral.routed", "claims.ready", "referral.routed"]

    [pending] = riverside.org_admin.get(path, query_string={"status": "pending"}).get_json()["items"]
    assert pending["event_id"] == str(emitted[0])
    assert (pending["attempts"], pending["last_status_code"]) == (1, 500)
    assert pending["last_error"] == "HTTP 500: receiver is down"
    assert pending["next_attempt_at"] is not None
    assert pending["delivered_at"] is None
    delivered = riverside.org_admin.get(path, query_string={"status": "delivered"}).get_json()["items"]
    assert len(delivered) == 2
    assert all(d["delivered_at"] and d["next_attempt_at"] is None for d in delivered)
    assert riverside.org_admin.get(path, query_string={"status": "dead"}).get_json()["items"] == []

    first = riverside.org_admin.get(path, query_string={"limit": 2}).get_json()
    assert len(first["items"]) == 2
    second = riverside.org_admin.get(path, query_string={"limit": 2, "cursor": first["next_cursor"]}).get_json()
    assert [i["id"] for i in first["items"] + second["items"]] == [i["id"] for i in items]
    assert second["next_cursor"] is None

    for query in ({"status": "lost"}, {"cursor": "not-a-cursor"}, {"limit": 0}, {"limit": 101}):
        assert riverside.org_admin.get(path, query_string=query).status_code == 422, query
