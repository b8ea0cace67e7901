"""The billing office's denials page: each claim with denied or reduced lines, the reasons, the next steps and the
ways out."""

from __future__ import annotations

from flask import Flask

from tests.support.claim_cases import endodontics_practice, reading_claim
from tests.support.denials import Paid, record_payment
from tests.support.web import sign_in, user_with_password
from tests.support.world import Practice, World


def test_the_denials_page_lists_reasons_next_steps_and_actions(app: Flask, world: World, riverside: Practice,
                                                               hillside: Practice):
    reader, coastal = endodontics_practice(world)
    claim = reading_claim(world, riverside, reader, coastal)
    record_payment(app, claim["id"], [Paid(1, "0", (("CO", "252", "0.00"),), ("N29",)),
                                      Paid(2, "0", (("CO", "97", "0.00"),), ("M15",))],
                   payer_claim_number="PCN-555")
    clerk, outsider = app.test_client(), app.test_client()
    sign_in(clerk, user_with_password(world, coastal, "billing"))
    sign_in(outsider, user_with_password(world, hillside, "billing"))

    response = clerk.get("/denials")
    page = response.get_data(as_text=True)
    home = clerk.get("/").get_data(as_text=True)
    theirs = outsider.get("/denials").get_data(as_text=True)

    assert response.status_code == 200
    assert 'href="/denials"' in home
    assert "Denied and reduced lines" in page
    assert "PCN-555" in page
    assert "send the claim&#39;s attachment package" in page
    assert "review the patient&#39;s claim history" in page
    assert "CO-252" in page
    assert f'data-url="/api/v1/claims/{claim["id"]}/attachments"' in page
    assert f'data-url="/api/v1/claims/{claim["id"]}/appeal"' in page
    assert f'data-url="/api/v1/claims/{claim["id"]}/corrections"' in page
    assert claim["id"] not in theirs
    assert "No denied or reduced lines" in theirs


def test_the_denials_page_is_for_billing_staff(app: Flask, world: World, riverside: Practice):
    office = app.test_client()
    sign_in(office, user_with_password(world, riverside, "staff"))

    response = office.get("/denials")

    assert response.status_code == 403
    assert 'href="/denials"' not in office.get("/").get_data(as_text=True)
