"""From a payer's 835 to the denials worklist and out again: an 837D with the attachment's PWK goes out, the 835
denies a line for a missing attachment, the worklist says to send the package, the replacement names the payer's
claim number and goes out valid, and its own 835 pays it."""

from __future__ import annotations

from flask import Flask

from referral.billing.x12_validator import validate_837d
from tests.support.lifecycle import claim, post_file, reading_claim, reading_practice, remittance_for, send
from tests.support.world import Practice, World
from tests.support.x12 import claims_in, first, only


def test_an_835_denial_reaches_the_worklist_and_a_replacement_clears_it(app: Flask, world: World,
                                                                         riverside: Practice):
    reader, coastal = reading_practice(world)
    ours = reading_claim(world, riverside, reader, coastal)
    sent = send(coastal, ours["id"])
    control = coastal.billing.get(f"/api/v1/claims/{ours['id']}/attachments").headers["Attachment-Control-Number"]
    assert only(claims_in(sent)[0], "PWK")[0][6] == control
    ours = claim(coastal, ours["id"])

    denial = post_file(coastal.billing, "/api/v1/remittances", remittance_for(
        ours, coastal.npi, trace="T-2001", payer_claim_number="PCN9001", denied={"D0391": ("CO", "252", ["N29"])}))
    assert denial.status_code == 201, denial.get_json()

    items = coastal.billing.get("/api/v1/denials").get_json()["items"]
    assert [(item["code"], item["action"], item["payer_claim_number"]) for item in items] == [
        ("D0391", "send_attachment", "PCN9001")]
    assert items[0]["claim_status"] == "partially_paid"
    assert "attachment package" in items[0]["next_step"]

    replacement = coastal.billing.post(f"/api/v1/claims/{ours['id']}/corrections", {"frequency": "7"})
    assert replacement.status_code == 201, replacement.get_json()
    new = replacement.get_json()
    assert coastal.billing.get("/api/v1/denials").get_json()["items"] == []
    assert coastal.billing.get(f"/api/v1/claims/{ours['id']}/x12").status_code == 409, "the original stays put"

    text = send(coastal, new["id"])
    assert validate_837d(text) == []
    (block,) = claims_in(text)
    assert first(block, "CLM")[1] != ours["patient_control_number"]
    assert first(block, "CLM")[5].endswith(":7")
    assert first(block, "REF", "F8")[2] == "PCN9001"
    new = claim(coastal, new["id"])

    paid = post_file(coastal.billing, "/api/v1/remittances",
                     remittance_for(new, coastal.npi, trace="T-2002", payer_claim_number="PCN9002"))
    assert paid.status_code == 201, paid.get_json()
    assert [(c["claim_id"], c["status"]) for c in paid.get_json()["claims"]] == [(new["id"], "paid")]
    assert claim(coastal, ours["id"])["status"] == "corrected"
