"""Claims reached over the HTTP API: a remote endodontist's practice with billing staff, a signed case's claims,
and counts of what the claim tables hold."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask

from tests.support.api import signed_case
from tests.support.world import Client, Practice, Reader, World


def endodontics_practice(world: World) -> tuple[Reader, Practice]:
    """An endodontist in a practice of its own (full address and phone, so its 837D can go out), with billing and
    administrator logins."""
    org_id = world.reader_practice(
        "Coastal Endodontics", phone="916-555-0100",
        address={"line1": "200 Capitol Mall", "city": "Sacramento", "state": "CA", "zip": "95814-2001"})
    reader = world.reader(org_id)
    billing = world.admin.post(f"/api/v1/organizations/{org_id}/users",
                               {"email": "billing@coastal.example.com", "role": "billing"})
    admin = world.admin.post(f"/api/v1/organizations/{org_id}/users",
                             {"email": "admin@coastal.example.com", "role": "org_admin"})
    practice = Practice(id=org_id, npi="", staff=Client(world.client, None), dentist=reader.client,
                        billing=Client(world.client, billing.get_json()["token"]),
                        org_admin=Client(world.client, admin.get_json()["token"]),
                        dentist_provider_id=reader.provider_id, hygienist_provider_id="", patient_id="")
    return reader, practice


def reading_claim(world: World, capturing: Practice, reader: Reader, billing: Practice) -> dict[str, Any]:
    """A signed case of ``capturing`` read by ``reader``: the reader's practice's claim (D0391, D9996)."""
    referral_id = signed_case(world, capturing, reader)
    claims = billing.billing.get(f"/api/v1/referrals/{referral_id}/claims").get_json()["claims"]
    assert len(claims) == 1
    claim: dict[str, Any] = claims[0]
    return claim


def count_rows(app: Flask, *tables: str) -> dict[str, int]:
    """How many rows each of ``tables`` holds."""
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        return {table: session.scalar(sa.text(f"SELECT count(*) FROM {table}")) or 0  # noqa: S608
                for table in tables}
