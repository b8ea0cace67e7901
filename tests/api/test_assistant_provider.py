"""Dental assistants: a provider who takes images for the practice but never refers, reads or renders a claim.
What they capture bills as the practice's capture, rendered by the practice's dentist (billing-rules.md,
example 1: "the GP's assistant captures one periapical ... treating dentist = the supervising GP")."""

from __future__ import annotations

import pytest

from tests.support import samples
from tests.support.api import draft_body, new_referral, submit, upload
from tests.support.world import Practice, World, provider_body

CONSENT = {"given_by": "patient", "method": "verbal", "given_at": "2026-01-05T09:00:00Z"}


@pytest.fixture
def assistant(world: World, riverside: Practice) -> str:
    created = world.admin.post(f"/api/v1/organizations/{riverside.id}/providers",
                               provider_body("assistant", first_name="Nia", last_name="Park", credentials="RDA",
                                             taxonomy="126800000X", accepting_referrals=False))
    assert created.status_code == 201, created.get_json()
    return str(created.get_json()["id"])


def _captured_by_assistant(practice: Practice, assistant: str, **overrides) -> str:
    referral_id = new_referral(practice, consent=CONSENT, **overrides)
    response = upload(practice.staff, practice, referral_id, samples.dicom_bytes(teeth=()),
                      captured_by_provider_id=assistant)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["captured_by_provider_id"] == assistant
    return referral_id


def _read_and_sign(practice: Practice, reader_client, referral_id: str) -> None:
    assert reader_client.post(f"/api/v1/referrals/{referral_id}/accept").status_code == 200
    images = [i["id"] for i in practice.staff.get(f"/api/v1/referrals/{referral_id}").get_json()["images"]]
    assert reader_client.put(f"/api/v1/referrals/{referral_id}/report", draft_body(images)).status_code == 200
    assert reader_client.post(f"/api/v1/referrals/{referral_id}/report/sign").status_code == 200


def test_an_assistant_is_a_provider_of_the_practice(world: World, riverside: Practice, assistant: str):
    listed = world.admin.get(f"/api/v1/organizations/{riverside.id}/providers").get_json()
    items = listed["items"] if isinstance(listed, dict) else listed
    assert {"id": assistant, "specialty": "assistant"}.items() <= next(
        p for p in items if p["id"] == assistant).items()


def test_an_assistant_cannot_be_the_referring_provider(riverside: Practice, assistant: str):
    before = riverside.staff.get("/api/v1/referrals").get_json()["items"]
    refused = riverside.staff.post("/api/v1/referrals", {
        "patient_id": riverside.patient_id, "referring_provider_id": assistant, "specialty": "endodontics",
        "reason": "Pain", "teeth": ["19"], "urgency": "routine", "mode": "asynchronous"})
    assert refused.status_code == 422
    assert "referring_provider_id" in refused.get_json()["errors"]
    assert riverside.staff.get("/api/v1/referrals").get_json()["items"] == before


def test_a_referral_cannot_ask_for_an_assistant(riverside: Practice):
    refused = riverside.staff.post("/api/v1/referrals", {
        "patient_id": riverside.patient_id, "referring_provider_id": riverside.dentist_provider_id,
        "specialty": "assistant", "reason": "Pain", "teeth": ["19"], "urgency": "routine", "mode": "asynchronous"})
    assert refused.status_code == 422
    assert "specialty" in refused.get_json()["errors"]["json"]


def test_an_assistant_signs_in_as_staff_never_as_a_reader(world: World, riverside: Practice, assistant: str):
    as_reader = world.admin.post(f"/api/v1/organizations/{riverside.id}/users",
                                 {"email": "nia@riverside.example.com", "role": "dentist", "provider_id": assistant})
    assert as_reader.status_code == 422
    assert "role" in as_reader.get_json()["errors"]
    as_staff = world.admin.post(f"/api/v1/organizations/{riverside.id}/users",
                                {"email": "nia@riverside.example.com", "role": "staff", "provider_id": assistant})
    assert as_staff.status_code == 201, as_staff.get_json()


def test_an_assistants_capture_bills_as_the_practices_capture_rendered_by_its_dentist(
        world: World, riverside: Practice, assistant: str):
    reader = world.reader(world.reader_practice("Coastal Endodontics"))
    referral_id = _captured_by_assistant(riverside, assistant)
    assert submit(riverside, referral_id).get_json()["assigned_provider_id"] == reader.provider_id
    _read_and_sign(riverside, reader.client, referral_id)

    capture = riverside.billing.get(f"/api/v1/referrals/{referral_id}/claims").get_json()["claims"]
    assert [c["role"] for c in capture] == ["capture"]
    assert capture[0]["rendering_provider_id"] == riverside.dentist_provider_id, "never the assistant"
    assert [line["code"] for line in capture[0]["lines"]] == ["D0707"]
    read = world.as_token(reader.client.token).get(f"/api/v1/referrals/{referral_id}/claims").get_json()["claims"]
    assert [c["role"] for c in read] == ["interpretation"]
    assert read[0]["rendering_provider_id"] == reader.provider_id
    assert sorted(line["code"] for line in read[0]["lines"]) == ["D0391", "D9996"]


def test_the_dentist_of_record_reads_a_case_their_assistant_captured(riverside: Practice, assistant: str):
    referral_id = _captured_by_assistant(riverside, assistant, specialty="general")

    routed = submit(riverside, referral_id).get_json()

    assert routed["assigned_provider_id"] == riverside.dentist_provider_id
    _read_and_sign(riverside, riverside.dentist, referral_id)
    claims = riverside.billing.get(f"/api/v1/referrals/{referral_id}/claims").get_json()["claims"]
    assert [(c["role"], c["rendering_provider_id"]) for c in claims] == [("single", riverside.dentist_provider_id)]
    assert sorted(line["code"] for line in claims[0]["lines"]) == ["D0220", "D9996"]
