"""An integration hears every step of the workflow, signed, with no patient details."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from referral.services import outbox
from storage import Storage
from tests.support.api import ready_referral, submit
from tests.support.webhooks import SECRET, Receiver, notifications_app, register
from tests.support.world import Practice, World


@pytest.fixture
def app(tmp_path: Path, database_url: str, store: Storage) -> Iterator[Flask]:
    with notifications_app(tmp_path, database_url, store, webhook_allow_private=True) as application:
        yield application


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def test_the_referring_office_hears_routing_acceptance_and_decline_signed_and_without_phi(
        app: Flask, world: World, riverside: Practice, receiver: Receiver):
    endo_org = world.reader_practice("Coastal Endodontics")
    first = world.reader(endo_org, last_name="First")
    second = world.reader(endo_org, last_name="Second")
    register(riverside, receiver.url, events=["referral.routed", "referral.accepted", "referral.declined"])
    referral_id = ready_referral(riverside)
    submit(riverside, referral_id)
    first.client.post(f"/api/v1/referrals/{referral_id}/decline", {"reason": "on leave"})
    second.client.post(f"/api/v1/referrals/{referral_id}/accept")

    result = app.test_cli_runner().invoke(args=["worker", "--once"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["delivered"] == 4
    bodies = [receipt.json for receipt in receiver.receipts]
    assert [(b["type"], b["data"]["assigned_provider_id"]) for b in bodies] == [
        ("referral.routed", first.provider_id),
        ("referral.declined", second.provider_id),
        ("referral.routed", second.provider_id),
        ("referral.accepted", second.provider_id),
    ]
    assert all(b["data"]["referral_id"] == referral_id for b in bodies)
    for receipt in receiver.receipts:
        assert outbox.verify_signature(SECRET, receipt.headers["x-referral-signature"], receipt.body)
        text = receipt.body.decode()
        for phi in ("Jane", "Doe", "1980-01-01", "Lingering pain"):
            assert phi not in text
