"""The denials worklist in a real browser, on a tablet held upright in a US time zone: the billing clerk reads why a
line was denied, downloads the attachment package, marks the appeal sent and creates the replacement claim."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect

from tests.browser.conftest import evaluate_settled
from tests.support.claim_cases import endodontics_practice, reading_claim
from tests.support.denials import Paid, claim_state, record_payment
from tests.support.world import Practice, World

pytestmark = pytest.mark.slow
PASSWORD = "long enough browser password"
TABLET = {"width": 768, "height": 1024}


def test_a_billing_clerk_works_a_denial_from_the_worklist(app: Flask, world: World, riverside: Practice,
                                                          chromium: Any, server_url: str):
    reader, coastal = endodontics_practice(world)
    claim = reading_claim(world, riverside, reader, coastal)
    record_payment(app, claim["id"], [Paid(1, "0", (("CO", "252", "0.00"),), ("N29",))],
                   payer_claim_number="PCN-4242")
    email = "clerk@coastal.example.com"
    created = world.admin.post(f"/api/v1/organizations/{coastal.id}/users",
                               {"email": email, "role": "billing", "password": PASSWORD})
    assert created.status_code == 201, created.get_json()

    context = chromium.new_context(base_url=server_url, accept_downloads=True, has_touch=True, viewport=TABLET,
                                   timezone_id="America/Los_Angeles", locale="en-US")
    problems: list[str] = []
    page = context.new_page()
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("dialog", lambda dialog: dialog.accept())
    try:
        page.goto("/login")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"/$"))
        page.get_by_role("link", name="Denials").tap()
        page.wait_for_url(re.compile(r"/denials$"))

        card = page.get_by_test_id("denial-claim")
        expect(card).to_have_count(1)
        expect(card).to_contain_text("PCN-4242")
        row = card.locator("tr[data-action='send_attachment']")
        expect(row).to_contain_text("D0391")
        expect(row).to_contain_text("attachment package")
        assert evaluate_settled(page, "document.documentElement.scrollWidth <= window.innerWidth"), "scrolls sideways"

        with page.expect_download() as download:
            card.get_by_role("button", name="Attachment package (PDF)").tap()
        path = download.value.path()
        assert path is not None
        with open(path, "rb") as pdf:
            assert pdf.read(5) == b"%PDF-"

        card.get_by_role("button", name="Mark appeal sent").tap()
        expect(card.get_by_role("button", name="Mark appeal sent")).to_have_count(0)
        expect(page.get_by_test_id("denial-claim")).to_contain_text("appealed")
        assert claim_state(app, claim["id"])[0] == "appealed"

        card = page.get_by_test_id("denial-claim")
        expect(card.get_by_label("Payer's claim number")).to_have_value("PCN-4242")
        card.get_by_label("Correct the claim").select_option("7")
        card.get_by_label("Note (optional)").fill("images now attached")
        card.get_by_role("button", name="Create correction").tap()
        expect(page.get_by_text("No denied or reduced lines")).to_be_visible()
        assert claim_state(app, claim["id"])[0] == "corrected"
        assert problems == [], problems
    finally:
        context.close()
