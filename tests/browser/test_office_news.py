"""The referring office hears about a signed report in its pages: the case's row is highlighted with what is new,
the header counts it, and once the case is opened it is no longer news. Browser on a tablet in New York."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.api import ready_referral, signed_case, submit
from tests.support.web import PASSWORD, user_with_password
from tests.support.world import Practice, World

pytestmark = pytest.mark.slow
HIGHLIGHT = re.compile(r"\bhighlight\b")


def test_the_office_sees_a_new_report_highlighted_until_it_opens_the_case(browser_users: Any, world: World,
                                                                           riverside: Practice):
    reader = world.reader(world.reader_practice("Coastal Endodontics"))
    reported = signed_case(world, riverside, reader)
    waiting = ready_referral(riverside)
    assert submit(riverside, waiting).status_code == 200
    email = "sam.lee@riverside.example.com"
    user_with_password(world, riverside, "staff", email)

    office = browser_users("office-news", viewport={"width": 768, "height": 1024}, touch=True,
                           timezone_id="America/New_York")
    office.sign_in(email, PASSWORD)
    page = office.page
    rows = page.get_by_test_id("referral-list").locator("tbody tr")
    expect(rows).to_have_count(2)
    news = page.locator(f'tbody tr:has(a[href="/referrals/{reported}"])')
    quiet = page.locator(f'tbody tr:has(a[href="/referrals/{waiting}"])')
    expect(news).to_have_class(HIGHLIGHT)
    expect(news).to_contain_text("New report")
    expect(quiet).not_to_have_class(HIGHLIGHT)
    expect(page.get_by_test_id("news-count")).to_have_text("1 new")

    news.get_by_role("link").tap()
    page.wait_for_url(f"**/referrals/{reported}")
    expect(page.get_by_role("heading", name="Report")).to_be_visible()
    page.goto("/")
    expect(page.get_by_test_id("referral-list").locator("tbody tr")).to_have_count(2)
    expect(page.locator(f'tbody tr:has(a[href="/referrals/{reported}"])')).not_to_have_class(HIGHLIGHT)
    expect(page.get_by_test_id("news-count")).to_have_count(0)
    assert office.problems == [], office.problems
