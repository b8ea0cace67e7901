"""Signing a report produces each organization's own claim, exportable as 837D and FHIR."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from flask import Flask

from referral.billing.x12_validator import validate_837d
from referral.models import OutboxEvent
from tests.support.api import draft_body, ready_referral, signed_case, submit
from tests.support.world import Client, Practice, Reader, World


@pytest.fixture
def endo(world: World) -> tuple[Reader, Practice]:
    """An endodontist in a practice of its own, with a billing user to see its claims."""
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


def test_nothing_is_billed_before_the_report_is_signed(world: World, riverside: Practice, endo):
    reader, _ = endo
    referral_id = ready_referral(riverside)
    submit(riverside, referral_id)
    reader.client.post(f"/api/v1/referrals/{referral_id}/accept")

    assert riverside.billing.get(f"/api/v1/referrals/{referral_id}/claims").get_json() == {"claims": []}


def test_a_split_case_gives_each_practice_only_its_own_claim(app: Flask, world: World, riverside: Practice,
                                                            hillside: Practice, endo):
    reader, endo_practice = endo
    assert riverside.org_admin.put(f"/api/v1/organizations/{riverside.id}/fee-schedule",
                                   {"D0707": 30, "D0220": "35.50"}).status_code == 200
    assert endo_practice.billing.put(f"/api/v1/organizations/{endo_practice.id}/fee-schedule",
                                     {"D0391": 55, "D9996": 20}).status_code == 200
    referral_id = signed_case(world, riverside, reader)

    ours = riverside.billing.get(f"/api/v1/referrals/{referral_id}/claims").get_json()["claims"]
    theirs = endo_practice.billing.get(f"/api/v1/referrals/{referral_id}/claims").get_json()["claims"]
    outsider = hillside.billing.get(f"/api/v1/referrals/{referral_id}/claims")

    assert len(ours) == 1
    assert len(theirs) == 1
    capture, reading = ours[0], theirs[0]
    assert capture["billing_organization_id"] == riverside.id
    assert capture["billing_npi"] == riverside.npi
    assert capture["place_of_service"] == "11"
    assert [(line["code"], line["tooth"], line["quantity"], line["fee"]) for line in capture["lines"]] == [
        ("D0707", "19", 1, "30.00")]
    assert capture["total"] == "30.00"
    assert all(line["explanation"] for line in capture["lines"])
    assert reading["billing_organization_id"] == endo_practice.id
    assert reading["place_of_service"] == "02"
    assert reading["referring_provider_id"] == riverside.dentist_provider_id
    assert reading["rendering_provider_id"] == reader.provider_id
    assert reading["rendering_taxonomy"] == "1223E0200X"
    assert len(reading["rendering_npi"]) == 10
    assert reading["referring_npi"] is not None
    assert sorted(line["code"] for line in reading["lines"]) == ["D0391", "D9996"]
    assert reading["total"] == "75.00"
    assert outsider.status_code == 404
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        ready = session.scalars(sa.select(OutboxEvent).where(OutboxEvent.type == "claims.ready")).all()
    assert {str(e.organization_id) for e in ready} == {riverside.id, endo_practice.id}


def test_one_practice_that_captured_and_read_gets_one_claim_with_the_ordinary_codes(world: World,
                                                                                     riverside: Practice):
    remote_dentist = world.reader(riverside.id, specialty="general", role="dentist", last_name="Remote")
    referral_id = signed_case(world, riverside, remote_dentist, specialty="general")

    claims = riverside.billing.get(f"/api/v1/referrals/{referral_id}/claims").get_json()["claims"]

    assert len(claims) == 1
    assert claims[0]["role"] == "single"
    codes = sorted(line["code"] for line in claims[0]["lines"])
    assert "D0220" in codes
    assert "D9996" in codes
    assert "D0707" not in codes
    assert "D0391" not in codes


def test_billing_staff_export_a_valid_837d_and_fhir_claim(world: World, riverside: Practice, endo):
    from fhir.resources.R4B.claim import Claim as FhirClaim

    reader, endo_practice = endo
    referral_id = signed_case(world, riverside, reader)
    claim_id = endo_practice.billing.get(f"/api/v1/referrals/{referral_id}/claims").get_json()["claims"][0]["id"]

    x12 = endo_practice.billing.get(f"/api/v1/claims/{claim_id}/x12")
    again = endo_practice.billing.get(f"/api/v1/claims/{claim_id}/x12")
    fhir = endo_practice.billing.get(f"/api/v1/claims/{claim_id}/fhir")

    assert x12.status_code == 200
    text = x12.get_data(as_text=True)
    assert validate_837d(text) == []
    assert "NM1*DN" in text
    assert text.split("*")[13] != again.get_data(as_text=True).split("*")[13], "each interchange has its own number"
    assert fhir.status_code == 200
    resource = json.loads(fhir.get_data(as_text=True))
    FhirClaim.model_validate(resource)
    assert resource["type"]["coding"][0]["code"] == "oral"


def test_an_837d_a_payer_would_reject_is_held_not_exported_and_the_clerk_is_told_why(world: World, endo):
    reader, _ = endo
    old_town = world.practice("Old Town Dental", phone=None, address={
        "line1": "1 Main St", "city": "Sacramento", "state": "CA", "zip": "95814"})
    referral_id = signed_case(world, old_town, reader)
    claim = old_town.billing.get(f"/api/v1/referrals/{referral_id}/claims").get_json()["claims"][0]

    response = old_town.billing.get(f"/api/v1/claims/{claim['id']}/x12")

    # registered with a five-digit ZIP and no phone number
    assert claim["status"] == "hold"
    assert response.status_code == 409
    problems = " ".join(response.get_json()["errors"]["holds"])
    assert "ZIP+4" in problems
    assert "phone number" in problems


def test_only_billing_staff_of_the_claims_practice_export_it(world: World, riverside: Practice, endo):
    reader, endo_practice = endo
    referral_id = signed_case(world, riverside, reader)
    claim_id = endo_practice.billing.get(f"/api/v1/referrals/{referral_id}/claims").get_json()["claims"][0]["id"]

    assert reader.client.get(f"/api/v1/claims/{claim_id}/x12").status_code == 403
    assert riverside.billing.get(f"/api/v1/claims/{claim_id}/x12").status_code == 404
    assert riverside.billing.get(f"/api/v1/claims/{claim_id}/fhir").status_code == 404
    assert riverside.billing.get(f"/api/v1/claims/{claim_id}").status_code == 404


def test_a_nondiagnostic_image_is_left_off_the_claims(world: World, riverside: Practice, endo):
    reader, _ = endo
    referral_id = ready_referral(riverside, teeth=("19", "30"))
    submit(riverside, referral_id)
    reader.client.post(f"/api/v1/referrals/{referral_id}/accept")
    images = [i["id"] for i in riverside.staff.get(f"/api/v1/referrals/{referral_id}").get_json()["images"]]
    body = draft_body(images)
    body["findings"][1]["diagnostic_quality"] = "nondiagnostic"
    reader.client.put(f"/api/v1/referrals/{referral_id}/report", body)
    reader.client.post(f"/api/v1/referrals/{referral_id}/report/sign")

    capture = riverside.billing.get(f"/api/v1/referrals/{referral_id}/claims").get_json()["claims"][0]

    assert [(line["code"], line["tooth"]) for line in capture["lines"]] == [("D0707", "19")]
    assert capture["edits"], "the left-out image is explained in an edit"


def test_fee_schedules_refuse_bad_codes_and_amounts_and_other_practices(riverside: Practice, hillside: Practice):
    path = f"/api/v1/organizations/{riverside.id}/fee-schedule"
    for body in ({"0707": 30}, {"D0707": -1}, {"D0707": "ten"}, {"D0707": 1.005}, {"D0707": True}):
        assert riverside.org_admin.put(path, body).status_code == 422, body
    assert riverside.staff.put(path, {"D0707": 30}).status_code == 403
    assert hillside.org_admin.put(path, {"D0707": 30}).status_code == 404
    assert riverside.billing.put(path, {"D0707": 30.5}).get_json() == {"D0707": "30.50"}
    assert riverside.dentist.get(path).get_json() == {"D0707": "30.50"}


def test_claims_explain_prints_every_line_and_why(app: Flask, world: World, riverside: Practice, endo):
    reader, _ = endo
    referral_id = signed_case(world, riverside, reader)

    result = app.test_cli_runner().invoke(args=["claims", "explain", referral_id])
    missing = app.test_cli_runner().invoke(args=["claims", "explain", "01a20240-0000-7000-8000-000000000000"])

    assert result.exit_code == 0, result.output
    for code in ("D0707", "D0391", "D9996"):
        assert code in result.output
    assert missing.exit_code != 0


def test_an_addendum_that_changes_nothing_billable_keeps_the_claims(world: World, riverside: Practice, endo):
    reader, endo_practice = endo
    referral_id = signed_case(world, riverside, reader)
    before = endo_practice.billing.get(f"/api/v1/referrals/{referral_id}/claims").get_json()["claims"][0]

    reader.client.post(f"/api/v1/referrals/{referral_id}/report/addenda", {"text": "Also note tooth 18."})
    after = endo_practice.billing.get(f"/api/v1/referrals/{referral_id}/claims").get_json()["claims"][0]

    assert after["generation"] == before["generation"] == 1
    assert after["lines"] == before["lines"]
