"""A dentist answers a provider link request in the pages: the practice's admin asked for a new login linked to
the dentist; the dentist signs in, sees the request on the home page and in the header, opens it, confirms, and
the page says the new login is linked and can sign in. Browser on a tablet in Los Angeles."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.web import PASSWORD, user_with_password
from tests.support.world import Practice, World

pytestmark = pytest.mark.slow
NEW_EMAIL = "front-desk-tablet@riverside.example.com"


def test_a_dentist_confirms_a_new_login_for_their_provider(browser_users: Any, world: World, riverside: Practice):
    email = "dr.avery@riverside.example.com"
    user_with_password(world, riverside, "dentist", email)
    asked = riverside.org_admin.post(f"/api/v1/organizations/{riverside.id}/users",
                                     {"email": NEW_EMAIL, "role": "dentist",
                                      "provider_id": riverside.dentist_provider_id,
                                      "request_link_confirmation": True})
    assert asked.status_code == 202, asked.get_json()
    new_login = asked.get_json()

    dentist = browser_users("link-request", viewport={"width": 768, "height": 1024}, touch=True,
                            timezone_id="America/Los_Angeles")
    dentist.sign_in(email, PASSWORD)
    page = dentist.page
    expect(page.get_by_test_id("link-request-count")).to_have_text("1 waiting")
    waiting = page.get_by_test_id("link-requests-waiting")
    expect(waiting).to_contain_text("A request is waiting for your answer")
    waiting.get_by_role("link", name="Review and answer").click()
    page.wait_for_url("**/link-requests")

    row = page.locator(f'tr[data-link-request="{new_login["link_request_id"]}"]')
    expect(row).to_contain_text(NEW_EMAIL)
    expect(row).to_contain_text("org_admin@riverside-family-dental.example.com")
    expect(row).to_contain_text("dentist")
    dentist.screenshot("link-request")
    row.get_by_role("button", name="Confirm").click()  # the confirmation dialog is accepted

    page.wait_for_url(re.compile(r"/link-requests\?answered="))
    outcome = page.get_by_test_id("link-request-outcome")
    expect(outcome).to_contain_text("Confirmed by you")
    expect(outcome).to_contain_text(f"{NEW_EMAIL} is linked to you as dentist and can sign in")
    expect(page.get_by_test_id("no-link-requests")).to_be_visible()
    expect(page.get_by_test_id("link-request-count")).to_have_count(0)

    users = riverside.org_admin.get(f"/api/v1/organizations/{riverside.id}/users").get_json()["items"]
    [linked] = [u for u in users if u["email"] == NEW_EMAIL]
    assert (linked["active"], linked["provider_id"]) == (True, riverside.dentist_provider_id)
    assert dentist.problems == [], dentist.problems
