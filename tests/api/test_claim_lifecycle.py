"""The claim life cycle over the API: status and events, the narrative billing edits, exporting marks a claim
submitted, regeneration never rewrites a sent claim, and batches of claims in one 837D interchange."""

from __future__ import annotations

import uuid

from flask import Flask

from referral.billing.x12_validator import validate_837d
from referral.models import Claim, ClaimBatch, ClaimEvent, Referral
from referral.services import claims as claim_service
from referral.services.actor import Actor
from tests.support.api import signed_case
from tests.support.lifecycle import (
    claim,
    control_number,
    count,
    reading_claim,
    reading_practice,
    send,
)
from tests.support.world import Practice, World


def test_a_claim_goes_from_ready_to_submitted_with_its_events_and_narrative(app: Flask, world: World,
                                                                          riverside: Practice, hillside: Practice):
    reader, coastal = reading_practice(world)
    made = reading_claim(world, riverside, reader, coastal)
    path = f"/api/v1/claims/{made['id']}"

    assert made["status"] == "ready"
    assert [(e["from"], e["to"]) for e in made["events"]] == [(None, "ready")]
    assert made["narrative"], "the engine writes a default narrative"
    assert all(line["date_basis"] for line in made["lines"])

    # Billing edits the narrative; too long, from the wrong people or another practice: refused, nothing changed.
    too_long = coastal.billing.patch(path, {"narrative": "X" * 81})
    assert too_long.status_code == 422
    assert "80" in too_long.get_json()["message"]
    assert coastal.dentist.patch(path, {"narrative": "Read remotely"}).status_code == 403
    assert hillside.billing.patch(path, {"narrative": "Read remotely"}).status_code == 404
    assert coastal.billing.patch(path, {"narrative": "ok", "status": "paid"}).status_code == 422
    assert claim(coastal, made["id"])["narrative"] == made["narrative"]
    edited = coastal.billing.patch(path, {"narrative": "Async teledentistry: read 1 PA tooth 19~ sent by Riverside"})
    assert edited.status_code == 200, edited.get_json()
    body = edited.get_json()
    assert body["narrative"] == "ASYNC TELEDENTISTRY READ 1 PA TOOTH 19 SENT BY RIVERSIDE"
    assert body["narrative_edited"] is True
    assert body["status"] == "ready"

    interchange = send(coastal, made["id"])

    assert "NTE*ADD*ASYNC TELEDENTISTRY READ 1 PA TOOTH 19 SENT BY RIVERSIDE~" in interchange
    assert control_number(interchange) == 1, "the practice's first interchange"
    sent = claim(coastal, made["id"])
    assert sent["status"] == "submitted"
    assert sent["submitted_at"]
    assert sent["patient_control_number"]
    assert f"CLM*{sent['patient_control_number']}*" in interchange
    last = sent["events"][-1]
    assert (last["from"], last["to"]) == ("ready", "submitted")
    assert last["who"] == "billing@coastal.example.com"
    assert last["when"]
    assert "interchange 1" in last["note"]

    # Sending again (a lost file) keeps it submitted with a new control number; the narrative is now fixed.
    again = send(coastal, made["id"])
    assert control_number(again) == 2
    assert claim(coastal, made["id"])["status"] == "submitted"
    assert coastal.billing.patch(path, {"narrative": "Changed"}).status_code == 409
    assert hillside.billing.get(path).status_code == 404


def test_new_facts_never_rewrite_a_sent_claim(app: Flask, world: World, riverside: Practice):
    reader, coastal = reading_practice(world)
    made = reading_claim(world, riverside, reader, coastal)
    send(coastal, made["id"])
    assert coastal.billing.put(f"/api/v1/organizations/{coastal.id}/fee-schedule",
                               {"D0391": 99, "D9996": 20}).status_code == 200
    # New fees are for claims still to be sent: the one the payer has is not re-checked, nor flagged.
    untouched = claim(coastal, made["id"])
    assert untouched["lines"] == made["lines"]
    assert untouched["edits"] == made["edits"]

    # The case's facts re-checked against the new fees (as an addendum would): the sent claim stays as sent.
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        referral = session.get(Referral, uuid.UUID(made["referral_id"]))
        assert referral is not None
        claim_service.regenerate(session, Actor.operator(), referral)
        claim_service.regenerate(session, Actor.operator(), referral)
        session.commit()

    after = claim(coastal, made["id"])
    assert after["status"] == "submitted"
    assert after["lines"] == made["lines"], "the lines the payer has stay as sent"
    assert after["generation"] == made["generation"]
    changed = [e for e in after["edits"] if e["rule"] == "changed-after-submission"]
    assert len(changed) == 1
    assert changed[0]["severity"] == "hold"
    resend = coastal.billing.get(f"/api/v1/claims/{made['id']}/x12")
    assert resend.status_code == 409, "not sent again as it stands"
    assert "changed after this claim was sent" in str(resend.get_json()["errors"])
    notes = [e for e in after["events"] if e["from"] == e["to"] == "submitted"]
    assert len(notes) == 1
    assert "changed after this claim was sent" in notes[0]["note"]
    assert notes[0]["who"] == "the system"  # the re-check above ran as the operator


def test_a_batch_sends_ready_claims_of_one_practice_and_payer_in_one_interchange(
        app: Flask, world: World, riverside: Practice, hillside: Practice):
    reader, coastal = reading_practice(world)
    first = reading_claim(world, riverside, reader, coastal)
    second = reading_claim(world, hillside, reader, coastal)  # another patient: no frequency edit
    theirs = riverside.billing.get(f"/api/v1/referrals/{first['referral_id']}/claims").get_json()["claims"][0]
    batches = "/api/v1/claim-batches"
    ids = [first["id"], second["id"]]

    refused = [
        (coastal.billing.post(batches, {"claim_ids": []}), 422),
        (coastal.billing.post(batches, {}), 422),
        (coastal.billing.post(batches, {"claim_ids": ["not-an-id"]}), 422),
        (coastal.billing.post(batches, {"claim_ids": [first["id"], first["id"]]}), 422),
        (coastal.billing.post(batches, {"claim_ids": [*ids, str(uuid.uuid4())]}), 404),
        (coastal.billing.post(batches, {"claim_ids": [*ids, theirs["id"]]}), 404),  # another practice's claim
        (hillside.billing.post(batches, {"claim_ids": ids}), 404),
        (coastal.dentist.post(batches, {"claim_ids": ids}), 403),
    ]
    for response, status in refused:
        assert response.status_code == status, response.get_json()
        assert response.get_json()["message"]
    # Two payers: refused, naming the claims.
    set_payer(app, second["id"], "OTHERPAYER")
    mixed = coastal.billing.post(batches, {"claim_ids": ids})
    assert mixed.status_code == 422, mixed.get_json()
    assert "one payer" in mixed.get_json()["message"]
    set_payer(app, second["id"], first["payer_id"])
    assert count(app, ClaimBatch) == 0, "nothing recorded after a refusal"
    assert [claim(coastal, i)["status"] for i in ids] == ["ready", "ready"]

    created = coastal.billing.post(batches, {"claim_ids": ids})

    assert created.status_code == 201, created.get_json()
    batch = created.get_json()
    text = batch["interchange"]
    assert validate_837d(text) == []
    assert batch["control_number"] == 1 == control_number(text)
    assert batch["claim_ids"] == ids
    assert text.count("~CLM*") == 2
    assert text.count("~ST*837*") == 1
    assert [claim(coastal, i)["status"] for i in ids] == ["submitted", "submitted"]
    assert count(app, ClaimEvent, to_status="submitted") == 2
    assert coastal.billing.get(f"{batches}/{batch['id']}").get_json()["interchange"] == text
    assert hillside.billing.get(f"{batches}/{batch['id']}").status_code == 404

    # Already sent: not batched again. The next interchange of the practice takes the next number.
    resent = coastal.billing.post(batches, {"claim_ids": ids})
    assert resent.status_code == 409
    assert "not ready" in resent.get_json()["message"]
    third = reading_claim(world, world.practice("Lakeside Dental"), reader, coastal)
    assert control_number(send(coastal, third["id"])) == 2
    assert count(app, ClaimBatch, organization_id=coastal.id) == 2


def set_payer(app: Flask, claim_id: str, payer_id: str) -> None:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        row = session.get(Claim, uuid.UUID(claim_id))
        assert row is not None
        row.payer_id = payer_id
        session.commit()


def test_stored_lines_keep_their_own_place_and_date_basis_for_the_837d(app: Flask, world: World,
                                                                      riverside: Practice):
    remote = world.reader(riverside.id, specialty="general", role="dentist", last_name="Remote")
    referral_id = signed_case(world, riverside, remote, specialty="general", place_of_service="03")
    made = riverside.billing.get(f"/api/v1/referrals/{referral_id}/claims").get_json()["claims"][0]

    assert made["role"] == "single"
    assert made["place_of_service"] == "02"
    imaging = [line for line in made["lines"] if line["code"] != "D9996"]
    teledentistry = next(line for line in made["lines"] if line["code"] == "D9996")
    assert imaging
    assert {line["place_of_service"] for line in imaging} == {"03"}, "taken at the school"
    assert teledentistry["place_of_service"] is None
    assert teledentistry["date_basis"] == "visit"
    assert teledentistry["date_of_service"] == imaging[0]["date_of_service"]
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        row = session.get(Claim, uuid.UUID(made["id"]))
        assert row is not None
        model = claim_service.claim_model(session, row)
    assert [line.place_of_service for line in model.lines] == [line["place_of_service"] for line in made["lines"]]
    assert model.narrative == made["narrative"]
