"""The billing pages follow a claim through its life cycle: the list offers ready claims to send as one 837D and
takes payer files; the claim page shows the status, its history and the narrative billing may edit until sent."""

from __future__ import annotations

from flask import Flask

from referral.billing.x12_validator import validate_837d
from tests.support.lifecycle import reading_claim, reading_practice
from tests.support.web import sign_in, user_with_password
from tests.support.world import Practice, World


def test_billing_sends_a_selection_from_the_list_and_follows_the_claim_on_its_page(
        app: Flask, world: World, riverside: Practice, hillside: Practice):
    reader, coastal = reading_practice(world)
    made = reading_claim(world, riverside, reader, coastal)
    clerk, outsider = app.test_client(), app.test_client()
    csrf = sign_in(clerk, user_with_password(world, coastal, "billing"))
    sign_in(outsider, user_with_password(world, hillside, "billing"))

    listing = clerk.get("/").get_data(as_text=True)
    page = clerk.get(f"/claims/{made['id']}").get_data(as_text=True)

    assert f'name="claim_id" value="{made["id"]}"' in listing
    assert "data-batch-form" in listing
    assert "data-payer-file-form" in listing
    assert "ready to send" in page
    assert 'data-testid="claim-events"' in page
    assert "Claim made from the case" in page
    assert "data-narrative-form" in page
    assert f'data-url="/api/v1/claims/{made["id"]}"' in page
    assert outsider.get(f"/claims/{made['id']}").status_code == 404

    # What the page's script does: the selection as one batch, with the session cookie and its CSRF token.
    refused = clerk.post("/api/v1/claim-batches", json={"claim_ids": [made["id"]]})
    sent = clerk.post("/api/v1/claim-batches", json={"claim_ids": [made["id"]]}, headers={"X-CSRF-Token": csrf})

    assert refused.status_code in (400, 403)
    assert sent.status_code == 201, sent.get_json()
    assert validate_837d(sent.get_json()["interchange"]) == []
    after = clerk.get(f"/claims/{made['id']}").get_data(as_text=True)
    assert "sent to the payer" in after
    assert "billing" in after
    assert "interchange 1" in after
    assert "data-narrative-form" not in after, "the narrative went out with the claim"
    assert f'name="claim_id" value="{made["id"]}"' not in clerk.get("/").get_data(as_text=True)
    assert f"/claims/{made['id']}" in clerk.get("/?status=submitted").get_data(as_text=True)
