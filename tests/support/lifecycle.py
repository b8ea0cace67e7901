"""Claim life-cycle cases over the HTTP API: a reading practice that can send 837Ds, signed split cases, and the
835/999/277CA a payer would send back for a claim as the API shows it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask import Flask

from referral.billing.x12_validator import validate_837d
from tests.support.api import signed_case
from tests.support.edi import ClaimPaid, LinePaid, remittance_835
from tests.support.world import Client, Practice, Reader, World

EDI = {"Content-Type": "application/edi-x12"}


def reading_practice(world: World) -> tuple[Reader, Practice]:
    """An endodontist in a practice of its own whose address and phone make a valid 837D, with billing and admin
    logins and fees for the reading codes."""
    org_id = world.reader_practice(
        "Coastal Endodontics", phone="916-555-0100",
        address={"line1": "200 Capitol Mall", "city": "Sacramento", "state": "CA", "zip": "95814-2001"})
    reader = world.reader(org_id)
    billing = world.admin.post(f"/api/v1/organizations/{org_id}/users",
                               {"email": "billing@coastal.example.com", "role": "billing"})
    admin = world.admin.post(f"/api/v1/organizations/{org_id}/users",
                             {"email": "admin@coastal.example.com", "role": "org_admin"})
    npi = world.admin.get(f"/api/v1/organizations/{org_id}").get_json()["npi"]
    practice = Practice(id=org_id, npi=npi, staff=Client(world.client, None), dentist=reader.client,
                        billing=Client(world.client, billing.get_json()["token"]),
                        org_admin=Client(world.client, admin.get_json()["token"]),
                        dentist_provider_id=reader.provider_id, hygienist_provider_id="", patient_id="")
    fees = practice.billing.put(f"/api/v1/organizations/{org_id}/fee-schedule", {"D0391": 55, "D9996": 20})
    assert fees.status_code == 200, fees.get_json()
    return reader, practice


def reading_claim(world: World, capturing: Practice, reader: Reader, reading: Practice) -> dict[str, Any]:
    """A signed split case; the reading practice's claim as its billing staff see it. (A second case of the same
    patient meets the payer's frequency edits and is held: take another capturing practice's patient.)"""
    referral_id = signed_case(world, capturing, reader)
    claims = reading.billing.get(f"/api/v1/referrals/{referral_id}/claims").get_json()["claims"]
    assert len(claims) == 1
    return dict(claims[0])


def claim(practice: Practice, claim_id: str) -> dict[str, Any]:
    response = practice.billing.get(f"/api/v1/claims/{claim_id}")
    assert response.status_code == 200, response.get_json()
    return dict(response.get_json())


def send(practice: Practice, claim_id: str) -> str:
    """Export the claim as an 837D (it becomes submitted); the file, checked by the project's validator."""
    response = practice.billing.get(f"/api/v1/claims/{claim_id}/x12")
    assert response.status_code == 200, response.get_json()
    text = response.get_data(as_text=True)
    assert validate_837d(text) == []
    return text


def control_number(interchange: str) -> int:
    return int(interchange.split("*")[13])


def post_file(client: Client, path: str, text: str, content_type: str = "application/edi-x12") -> Any:
    return client.post(path, data=text.encode(), headers={"Content-Type": content_type})


def paid_lines(claim_json: dict[str, Any], *, cut: dict[str, str] | None = None,
               denied: dict[str, tuple[str, str, Sequence[str]]] | None = None, sign: int = 1) -> list[LinePaid]:
    """Each line of ``claim_json`` paid at its charge, less a CO 45 cut for codes in ``cut``, or denied in full
    (group, reason, remarks) for codes in ``denied``; ``sign`` -1 makes the reversal of that payment."""
    lines = []
    for line in claim_json["lines"]:
        charge = Decimal(line["fee"]) * line["quantity"]
        adjustments: list[tuple[str, str, str]] = []
        remarks: Sequence[str] = ()
        paid = charge
        if denied and line["code"] in denied:
            group, reason, remarks = denied[line["code"]]
            adjustments.append((group, reason, str(sign * charge)))
            paid = Decimal("0")
        elif cut and line["code"] in cut:
            adjustments.append(("CO", "45", str(sign * Decimal(cut[line["code"]]))))
            paid = charge - Decimal(cut[line["code"]])
        lines.append(LinePaid(line["code"], sign * charge, sign * paid, line["control_number"], adjustments, remarks,
                              None))
    return lines


def remittance_for(claim_json: dict[str, Any], npi: str, *, trace: str, status: str = "1",
                   payer_claim_number: str = "PCN7001", others: Sequence[ClaimPaid] = (), **lines: Any) -> str:
    """An 835 to the practice with NPI ``npi`` paying ``claim_json`` (see paid_lines), plus ``others``."""
    sign = -1 if status == "22" else 1
    paid = ClaimPaid(claim_json["patient_control_number"], paid_lines(claim_json, sign=sign, **lines),
                     status=status, payer_claim_number=payer_claim_number, place=claim_json["place_of_service"])
    return remittance_835([paid, *others], trace=trace, payee=("COASTAL ENDODONTICS", npi), credit=sign > 0)


def count(app: Flask, model: type, **where: Any) -> int:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        query = sa.select(sa.func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == (uuid.UUID(value) if name.endswith("_id") else value))
        return int(session.scalar(query) or 0)
