"""The inbox search: a reader finds cases by patient name, tooth or accession number, on the server."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask

from referral.models import AuditEvent
from tests.support import samples
from tests.support.api import delete_patient, new_referral, submit, upload
from tests.support.world import PATIENT, Practice, Reader, World


def _patient(practice: Practice, first: str, last: str) -> str:
    created = practice.staff.post("/api/v1/patients", dict(PATIENT, first_name=first, last_name=last))
    assert created.status_code == 201, created.get_json()
    return str(created.get_json()["id"])


def _routed(practice: Practice, reader: Reader, first: str, last: str, teeth: tuple[str, ...]) -> dict[str, Any]:
    """A case of a new patient ``first last`` with a periapical of each tooth, sent to ``reader``."""
    patient_id = _patient(practice, first, last)
    consent = {"given_by": "patient", "method": "verbal", "given_at": "2026-01-05T09:00:00Z"}
    referral_id = new_referral(practice, teeth=list(teeth), consent=consent, patient_id=patient_id,
                               target_provider_id=reader.provider_id)
    for tooth in teeth:
        sent = upload(practice.staff, practice, referral_id,
                      samples.dicom_bytes(patient_name=f"{last}^{first}", teeth=()), teeth=tooth)
        assert sent.status_code == 201, sent.get_json()
    routed = submit(practice, referral_id)
    assert routed.get_json()["assigned_provider_id"] == reader.provider_id, routed.get_json()
    return dict(routed.get_json(), patient_id=patient_id)


def _found(reader: Reader, q: str, **more: str) -> list[str]:
    query = "&".join(f"{k}={v}" for k, v in {"q": q, **more}.items())
    response = reader.client.get(f"/api/v1/referrals?view=inbox&{query}")
    assert response.status_code == 200, (q, response.get_json())
    return [item["id"] for item in response.get_json()["items"]]


def _world(world: World, riverside: Practice) -> tuple[Reader, dict[str, dict[str, Any]]]:
    reader = world.reader(world.reader_practice("Coastal Endodontics"))
    cases = {
        "garcia": _routed(riverside, reader, "Maria", "Garcia", ("19",)),
        "garner": _routed(riverside, reader, "Tom", "Garner", ("3", "30")),
        "lee": _routed(riverside, reader, "Ann", "Lee", ("8",)),
    }
    return reader, cases


def test_a_reader_finds_cases_by_name_tooth_or_accession_number(app: Flask, world: World, riverside: Practice):
    reader, cases = _world(world, riverside)
    ids = {name: case["id"] for name, case in cases.items()}

    assert sorted(_found(reader, "gar")) == sorted([ids["garcia"], ids["garner"]])
    assert _found(reader, "GARCIA") == [ids["garcia"]]
    assert _found(reader, "maria") == [ids["garcia"]], "the first name too"
    assert _found(reader, "Garner,%20Tom") == [ids["garner"]], "Last, First"
    assert _found(reader, "Tom%20Garner") == [ids["garner"]], "First Last"
    assert _found(reader, "Garner,%20Maria") == []
    assert _found(reader, "30") == [ids["garner"]], "a tooth the case names"
    assert _found(reader, "%2330") == [ids["garner"]], "#30"
    assert _found(reader, "tooth%203") == [ids["garner"]]
    assert _found(reader, "tooth%208") == [ids["lee"]]
    assert _found(reader, "2") == [], "tooth 2 is named by no case; 20 or 30 do not match 2"
    accession = cases["lee"]["accession_number"]
    assert _found(reader, accession) == [ids["lee"]]
    assert _found(reader, accession[:6].lower()) == [ids["lee"]], "the start of it, in any case"
    # wildcards are searched for as text, never as patterns
    assert _found(reader, "%25") == []
    assert _found(reader, "_") == []
    # the search narrows the other filters, not the other way round
    assert _found(reader, "gar", urgency="routine") == []
    assert sorted(_found(reader, "gar", status="routed")) == sorted([ids["garcia"], ids["garner"]])
    with app.extensions["referral.sessionmaker"]() as session:
        details = list(session.scalars(sa.select(AuditEvent.details).where(AuditEvent.action == "referral.list")))
    assert any(d and d.get("searched") for d in details)
    assert not any("gar" in str(d).lower() or "maria" in str(d).lower() for d in details), \
        "the audit trail never keeps the words searched for"


def test_the_search_finds_only_the_readers_own_cases_and_no_deleted_name(world: World, riverside: Practice,
                                                                       hillside: Practice):
    reader, cases = _world(world, riverside)
    other = world.reader(world.reader_practice("Valley Endodontics"), last_name="Other")
    _routed(hillside, other, "Gary", "Garfield", ("19",))

    assert cases["garcia"]["id"] in _found(reader, "gar")
    assert all(i != cases["garcia"]["id"] for i in _found(other, "gar"))
    assert len(_found(other, "gar")) == 1
    # an office searches its own sent referrals the same way
    sent = riverside.staff.get("/api/v1/referrals?view=sent&q=garner").get_json()["items"]
    assert [s["id"] for s in sent] == [cases["garner"]["id"]]
    assert hillside.staff.get("/api/v1/referrals?view=sent&q=garner").get_json()["items"] == []


def test_a_search_that_cannot_be_run_is_refused(world: World, riverside: Practice):
    reader, _ = _world(world, riverside)
    for q in ("x" * 101, "bad%00byte"):
        refused = reader.client.get(f"/api/v1/referrals?view=inbox&q={q}")
        assert refused.status_code == 422, (q, refused.get_json())
        assert "q" in str(refused.get_json()["errors"])
    # an empty or blank search is no search
    assert len(reader.client.get("/api/v1/referrals?view=inbox&q=%20").get_json()["items"]) == 3


def test_a_deleted_patients_name_is_not_found(world: World, riverside: Practice):
    reader = world.reader(world.reader_practice("Coastal Endodontics"))
    case = _routed(riverside, reader, "Rosa", "Quintero", ("14",))
    patient_id = case["patient_id"]
    assert _found(reader, "quintero") == [case["id"]]
    cancelled = riverside.staff.post(f"/api/v1/referrals/{case['id']}/cancel", {"reason": "Moved away"})
    assert cancelled.status_code == 200, cancelled.get_json()
    deleted = delete_patient(riverside.org_admin, patient_id)
    assert deleted.status_code == 204, deleted.get_json()
    assert _found(reader, "quintero") == []
    assert _found(reader, "14", status="cancelled") == [case["id"]], "the case is still found by its tooth"
