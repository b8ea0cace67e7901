"""A claim is ready only when its 837D can be produced: each missing fact holds it, export refuses it and records
nothing, and fixing the fact re-checks the claim, which then exports a valid 837D."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import Flask

from referral.billing.x12_validator import validate_837d
from referral.models import ClaimExport, Organization, Patient, Provider
from referral.models.enums import SubscriberRelationship
from referral.services import claims as claims_service
from referral.services.actor import Actor
from tests.support.api import draft_body, ready_referral, submit
from tests.support.world import FEES, PATIENT, Practice, World
from tests.support.x12 import first, parse

SUBSCRIBER = {"first_name": "Maria", "last_name": "Rivera", "birth_date": "1984-03-09", "sex": "F",
              "address": {"line1": "12 Oak Street", "city": "Sacramento", "state": "CA", "zip": "95816"}}


def supervised_case(practice: Practice, patient_id: str | None = None) -> str:
    """A hygienist's general case read and signed by the practice's own dentist: one single-practice claim."""
    overrides: dict[str, Any] = {"specialty": "general"}
    if patient_id:
        overrides["patient_id"] = patient_id
    referral_id = ready_referral(practice, **overrides)
    assert submit(practice, referral_id).get_json()["assigned_provider_id"] == practice.dentist_provider_id
    assert practice.dentist.post(f"/api/v1/referrals/{referral_id}/accept").status_code == 200
    images = [i["id"] for i in practice.staff.get(f"/api/v1/referrals/{referral_id}").get_json()["images"]]
    assert practice.dentist.put(f"/api/v1/referrals/{referral_id}/report", draft_body(images)).status_code == 200
    assert practice.dentist.post(f"/api/v1/referrals/{referral_id}/report/sign").status_code == 200
    return referral_id


def the_claim(practice: Practice, referral_id: str) -> dict[str, Any]:
    [claim] = practice.billing.get(f"/api/v1/referrals/{referral_id}/claims").get_json()["claims"]
    return claim


def exports(app: Flask) -> int:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(ClaimExport)) or 0


def in_database(app: Flask, change: Callable[[Any], None], recheck_org: str | None = None) -> None:
    """Change a fact the API cannot (yet) change, and re-check the practice's claims as its edit would."""
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        change(session)
        session.flush()
        if recheck_org:
            claims_service.recheck_organization(session, Actor.operator(),
                                                uuid.UUID(recheck_org))
        session.commit()


def assert_held_and_refused(app: Flask, practice: Practice, referral_id: str, rule: str) -> dict[str, Any]:
    claim = the_claim(practice, referral_id)
    assert claim["status"] == "hold"
    held = [edit for edit in claim["edits"] if edit["severity"] == "hold"]
    assert [edit["rule"] for edit in held] == [rule], held
    before = exports(app)
    refused = practice.billing.get(f"/api/v1/claims/{claim['id']}/x12")
    assert refused.status_code == 409
    assert refused.get_json()["errors"]["holds"] == [held[0]["message"]]
    assert held[0]["message"] in refused.get_json()["message"]
    assert exports(app) == before, "a refused export records nothing"
    return claim


def assert_ready_and_valid(practice: Practice, referral_id: str) -> str:
    claim = the_claim(practice, referral_id)
    assert claim["status"] == "ready", claim["edits"]
    assert claim["edits"] == []
    response = practice.billing.get(f"/api/v1/claims/{claim['id']}/x12")
    assert response.status_code == 200, response.get_json()
    text = response.get_data(as_text=True)
    assert validate_837d(text) == []
    return text


def test_a_complete_case_is_ready_and_exports(riverside: Practice):
    assert_ready_and_valid(riverside, supervised_case(riverside))


def test_no_coverage_holds_the_claim_until_the_insurance_is_added(app: Flask, riverside: Practice):
    patient = riverside.staff.post("/api/v1/patients", {**PATIENT, "coverage": None}).get_json()["id"]
    referral_id = supervised_case(riverside, patient)
    claim = assert_held_and_refused(app, riverside, referral_id, "export-no-coverage")
    assert "no dental insurance" in claim["edits"][0]["message"]

    fixed = riverside.billing.patch(f"/api/v1/patients/{patient}", {"coverage": PATIENT["coverage"]})

    assert fixed.status_code == 200
    assert_ready_and_valid(riverside, referral_id)


def test_a_missing_patient_address_holds_the_claim_until_it_is_added(app: Flask, riverside: Practice):
    patient = riverside.staff.post("/api/v1/patients", {**PATIENT, "address": None}).get_json()["id"]
    referral_id = supervised_case(riverside, patient)
    assert_held_and_refused(app, riverside, referral_id, "export-patient-address")

    riverside.staff.patch(f"/api/v1/patients/{patient}", {"address": PATIENT["address"]})

    assert_ready_and_valid(riverside, referral_id)


def test_a_dependant_without_a_subscriber_is_held_until_the_subscriber_is_named(app: Flask, riverside: Practice):
    referral_id = supervised_case(riverside)

    def orphan(session: Any) -> None:  # a record from before subscribers were kept
        patient = session.get(Patient, uuid.UUID(riverside.patient_id))
        patient.coverage_relationship = SubscriberRelationship.CHILD
        patient.clear_subscriber()

    in_database(app, orphan)
    assert riverside.staff.patch(f"/api/v1/patients/{riverside.patient_id}", {"state": "CA"}).status_code == 200
    assert_held_and_refused(app, riverside, referral_id, "export-no-subscriber")

    riverside.billing.patch(f"/api/v1/patients/{riverside.patient_id}", {
        "coverage": {**PATIENT["coverage"], "relationship": "child", "subscriber": SUBSCRIBER}})

    text = assert_ready_and_valid(riverside, referral_id)
    segments = parse(text)
    assert first(segments, "PAT")[1] == "19"
    assert first(segments, "NM1", "IL")[3:5] == ["RIVERA", "MARIA"]


def test_lines_without_a_fee_hold_the_claim_until_the_fee_schedule_prices_them(app: Flask, world: World):
    practice = world.practice("Unpriced Dental", fees={})
    referral_id = supervised_case(practice)
    claim = assert_held_and_refused(app, practice, referral_id, "export-no-fee")
    assert "(lines 1 and 2)" in claim["edits"][0]["message"]

    assert practice.billing.put(f"/api/v1/organizations/{practice.id}/fee-schedule", FEES).status_code == 200

    assert_ready_and_valid(practice, referral_id)


def test_a_five_digit_billing_zip_holds_the_claim_until_the_zip_plus_4_is_entered(app: Flask, world: World):
    practice = world.practice("Old Town Dental", address={"line1": "1 Main St", "city": "Sacramento", "state": "CA",
                                                          "zip": "95814"})
    referral_id = supervised_case(practice)
    claim = assert_held_and_refused(app, practice, referral_id, "export-billing-zip")
    assert "ZIP+4" in claim["edits"][0]["message"]

    in_database(app, lambda s: setattr(s.get(Organization, uuid.UUID(practice.id)), "zip", "958141234"),
                recheck_org=practice.id)

    assert_ready_and_valid(practice, referral_id)


def test_a_practice_without_a_phone_is_held_until_one_is_entered(app: Flask, world: World):
    practice = world.practice("Quiet Dental", phone=None)
    referral_id = supervised_case(practice)
    assert_held_and_refused(app, practice, referral_id, "export-billing-phone")

    in_database(app, lambda s: setattr(s.get(Organization, uuid.UUID(practice.id)), "phone", "916-555-0100"),
                recheck_org=practice.id)

    assert_ready_and_valid(practice, referral_id)


def test_a_providers_bad_taxonomy_holds_the_claim_until_it_is_corrected(app: Flask, riverside: Practice):
    referral_id = supervised_case(riverside)
    dentist = uuid.UUID(riverside.dentist_provider_id)
    in_database(app, lambda s: setattr(s.get(Provider, dentist), "taxonomy", ""), recheck_org=riverside.id)
    claim = assert_held_and_refused(app, riverside, referral_id, "export-provider-ids")
    assert "taxonomy" in claim["edits"][0]["message"]

    in_database(app, lambda s: setattr(s.get(Provider, dentist), "taxonomy", "1223G0001X"), recheck_org=riverside.id)

    assert_ready_and_valid(riverside, referral_id)


def test_editing_a_patient_rechecks_only_that_patients_claims_and_says_so(app: Flask, riverside: Practice):
    from tests.support.fhir import audit_rows

    referral_id = supervised_case(riverside)
    generation = the_claim(riverside, referral_id)["generation"]

    riverside.staff.patch(f"/api/v1/patients/{riverside.patient_id}", {"first_name": "Janet"})

    [row] = audit_rows(app, "patient.update")
    assert row.details == {"fields": ["first_name"], "claims_rechecked": 1}
    assert the_claim(riverside, referral_id)["generation"] == generation, "an unchanged claim is left alone"


def test_new_fees_reprice_unsent_claims_and_leave_sent_ones_as_the_payer_has_them(app: Flask, world: World):
    practice = world.practice("Fee Change Dental")
    sent_case, open_case = supervised_case(practice), supervised_case(practice)
    sent = the_claim(practice, sent_case)
    assert practice.billing.get(f"/api/v1/claims/{sent['id']}/x12").status_code == 200
    sent_before, open_before = the_claim(practice, sent_case), the_claim(practice, open_case)

    fees = {**FEES, "D0220": "41.00"}
    assert practice.org_admin.put(f"/api/v1/organizations/{practice.id}/fee-schedule", fees).status_code == 200

    repriced = the_claim(practice, open_case)
    [periapical] = [line for line in repriced["lines"] if line["code"] == "D0220"]
    assert periapical["fee"] == "41.00"
    assert repriced["status"] == open_before["status"]
    assert repriced["generation"] == open_before["generation"] + 1
    kept = the_claim(practice, sent_case)
    assert kept["status"] == "submitted"
    assert kept["lines"] == sent_before["lines"], "the sent claim keeps the fees the payer was sent"
    assert kept["edits"] == sent_before["edits"], "a fee change does not flag a sent claim as changed"
    assert kept["generation"] == sent_before["generation"]
