"""Two practices talk about a case in the browser: the referring hygienist asks about an image, the reader
answers, and each sees what is new to them. Both browsers are tablets held upright, in a US time zone."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import evaluate_settled
from tests.support.api import ready_referral, submit
from tests.support.world import Practice, World

pytestmark = pytest.mark.slow
PASSWORD = "long enough browser password"
TABLET = {"width": 768, "height": 1024}
ZONE = "America/Los_Angeles"


def _user(world: World, organization_id: str, email: str, role: str, provider_id: str) -> str:
    body: dict[str, Any] = {"email": email, "role": role, "password": PASSWORD, "provider_id": provider_id}
    created = world.admin.post(f"/api/v1/organizations/{organization_id}/users", body)
    assert created.status_code == 201, created.get_json()
    return email


def test_the_office_and_the_reader_talk_about_an_image_of_the_case(browser_users, world: World,
                                                                   riverside: Practice):
    endo_org = world.reader_practice("Coastal Endodontics")
    endodontist = world.reader(endo_org, role=None, last_name="Okafor")
    hygienist_email = _user(world, riverside.id, "sam.lee@riverside.example.com", "staff",
                            riverside.hygienist_provider_id)
    reader_email = _user(world, endo_org, "dr.okafor@coastal.example.com", "specialist", endodontist.provider_id)
    referral_id = ready_referral(riverside, target_provider_id=endodontist.provider_id)
    assert submit(riverside, referral_id).status_code == 200

    office = browser_users("office-conversation", viewport=TABLET, touch=True, timezone=ZONE)
    office.sign_in(hygienist_email, PASSWORD)
    page = office.page
    page.goto(f"/referrals/{referral_id}")
    conversation = page.get_by_test_id("conversation")
    expect(conversation).to_contain_text("No messages yet.")
    page.get_by_label("Message").fill("Is the mesial apex of 19 readable on this film?")
    page.get_by_label("About an image (optional)").select_option(index=1)
    page.get_by_role("button", name="Send message").tap()
    first = page.get_by_test_id("messages").locator("li.message")
    expect(first).to_have_count(1)
    expect(first).to_contain_text("Is the mesial apex of 19 readable on this film?")
    expect(first).to_contain_text("About: Periapical radiograph · teeth 19")
    expect(first).to_contain_text("Sam Lee, RDH")
    assert evaluate_settled(page, "document.documentElement.scrollWidth <= window.innerWidth")

    reader = browser_users("reader-conversation", viewport=TABLET, touch=True, timezone=ZONE)
    reader.sign_in(reader_email, PASSWORD)
    reader.page.goto(f"/referrals/{referral_id}")
    expect(reader.page.get_by_test_id("unread-count")).to_have_text("1 new")
    expect(reader.page.locator("li.message.new")).to_contain_text("mesial apex")
    reader.page.get_by_label("Message").fill("Yes: the apex is clear, no widening of the PDL.")
    reader.page.get_by_role("button", name="Send message").tap()
    expect(reader.page.get_by_test_id("messages").locator("li.message")).to_have_count(2)
    expect(reader.page.get_by_test_id("unread-count")).to_have_count(0)
    reader.screenshot("tablet-reader-conversation")

    page.goto(f"/referrals/{referral_id}")
    expect(page.get_by_test_id("unread-count")).to_have_text("1 new")
    reply = page.locator("li.message.new")
    expect(reply).to_contain_text("the apex is clear")
    expect(reply).to_contain_text("Coastal Endodontics")
    # The times are the practice's own (Sacramento), whatever the time zone the browser itself runs in.
    expect(reply.locator("time")).to_have_text(re.compile(r" P[SD]T$"))
    page.wait_for_load_state("networkidle")
    page.reload()
    expect(page.get_by_test_id("unread-count")).to_have_count(0)
    office.screenshot("tablet-office-conversation")
    for person in (office, reader):
        assert person.problems == [], (person.name, person.problems)
