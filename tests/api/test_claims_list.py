"""Billing staff list their own practice's claims, newest first, filtered by status or referral."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from flask import Flask

from referral.models import AuditEvent
from tests.support.api import signed_case
from tests.support.world import PATIENT, Client, Practice, Reader, World

CLAIMS = "/api/v1/claims"
# A payer profile that does not take the capture-only codes, so the capturing practice's claim is held.
NO_CAPTURE_ONLY = {**PATIENT, "coverage": {**PATIENT["coverage"], "payer_id": "EXAMPLE-PPO-NO-CAPTURE"}}


@pytest.fixture
def reader(world: World) -> Reader:
    return world.reader(world.reader_practice("Coastal Endodontics"))


@pytest.fixture
def reader_billing(world: World, reader: Reader) -> Client:
    created = world.admin.post(f"/api/v1/organizations/{reader.organization_id}/users",
                               {"email": "billing@coastal.example.com", "role": "billing"})
    assert created.status_code == 201, created.get_json()
    return world.as_token(created.get_json()["token"])


def held_case(world: World, practice: Practice, reader: Reader) -> str:
    patient = practice.staff.post("/api/v1/patients", NO_CAPTURE_ONLY)
    assert patient.status_code == 201, patient.get_json()
    return signed_case(world, practice, reader, patient_id=patient.get_json()["id"])


def listed(client: Client, **query: object) -> dict:
    response = client.get(CLAIMS, query_string=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_each_practice_lists_only_the_claims_it_bills(world: World, riverside: Practice, hillside: Practice,
                                                      reader: Reader, reader_billing: Client):
    referral_id = signed_case(world, riverside, reader)

    ours = listed(riverside.billing)["items"]
    theirs = listed(reader_billing)["items"]

    assert [(c["referral_id"], c["billing_organization_id"], c["role"]) for c in ours] == [
        (referral_id, riverside.id, "capture")]
    assert [(c["referral_id"], c["billing_organization_id"], c["role"]) for c in theirs] == [
        (referral_id, reader.organization_id, "interpretation")]
    assert [line["code"] for line in ours[0]["lines"]] == ["D0707"]
    assert ours[0]["lines"][0]["explanation"]
    assert ours[0]["edits"] == []
    assert ours[0]["billing_npi"] == riverside.npi
    assert ours == riverside.billing.get(f"/api/v1/referrals/{referral_id}/claims").get_json()["claims"]
    assert listed(hillside.billing) == {"items": [], "next_cursor": None}
    assert listed(hillside.billing, referral_id=referral_id) == {"items": [], "next_cursor": None}


def test_the_status_filter_takes_one_status_or_a_comma_list(world: World, riverside: Practice, reader: Reader):
    ready = signed_case(world, riverside, reader)
    held = held_case(world, riverside, reader)

    on_hold = listed(riverside.billing, status="hold")["items"]
    ready_only = listed(riverside.billing, status="ready")["items"]
    both = listed(riverside.billing, status="ready, hold")["items"]

    assert [(c["referral_id"], c["status"]) for c in on_hold] == [(held, "hold")]
    assert any(edit["severity"] == "hold" for edit in on_hold[0]["edits"])
    assert [(c["referral_id"], c["status"]) for c in ready_only] == [(ready, "ready")]
    assert [c["referral_id"] for c in both] == [held, ready], "newest first"
    assert [c["referral_id"] for c in listed(riverside.billing, referral_id=held)["items"]] == [held]
    assert listed(riverside.billing, referral_id=held, status="ready")["items"] == []


def test_bad_filters_and_cursors_are_refused_with_what_to_fix(riverside: Practice):
    for query in ({"status": "bogus"}, {"status": "ready,bogus"}, {"status": ","}, {"referral_id": "19"},
                  {"limit": 0}, {"limit": 101}, {"cursor": "not-a-cursor"}, {"cursor": "%%%"},
                  {"cursor": "WyJ4Il0"}):
        response = riverside.billing.get(CLAIMS, query_string=query)

        assert response.status_code == 422, query
        assert response.get_json()["errors"], query
    message = riverside.billing.get(CLAIMS, query_string={"status": "bogus"}).get_json()["errors"]
    assert "ready, hold" in str(message)


def test_pages_follow_the_cursor_newest_first_without_gaps_or_repeats(world: World, riverside: Practice,
                                                                      reader: Reader):
    referral_ids = [signed_case(world, riverside, reader) for _ in range(3)]

    first = listed(riverside.billing, limit=2)
    rest = listed(riverside.billing, limit=2, cursor=first["next_cursor"])

    assert len(first["items"]) == 2
    assert first["next_cursor"]
    assert len(rest["items"]) == 1
    assert rest["next_cursor"] is None
    assert [c["referral_id"] for c in first["items"] + rest["items"]] == referral_ids[::-1]


def test_every_role_of_the_practice_may_list_but_not_platform_admins_or_strangers(world: World,
                                                                                  riverside: Practice,
                                                                                  reader: Reader):
    signed_case(world, riverside, reader)

    for client in (riverside.staff, riverside.dentist, riverside.org_admin):
        assert len(listed(client)["items"]) == 1
    assert world.admin.get(CLAIMS).status_code == 403
    assert world.anonymous.get(CLAIMS).status_code == 401
    assert world.as_token("not-a-real-token").get(CLAIMS).status_code == 401


def test_listing_claims_is_audited_without_patient_details(app: Flask, world: World, riverside: Practice,
                                                           reader: Reader):
    referral_id = signed_case(world, riverside, reader)

    listed(riverside.billing, status="ready", referral_id=referral_id)

    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        events = session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "claim.list")).all()
        rows = [(str(e.actor_user_id), str(e.organization_id), e.referral_id, e.details) for e in events]
    assert rows == [(riverside.users["billing"], riverside.id, uuid.UUID(referral_id),
                     {"count": 1, "statuses": ["ready"]})]
