"""An endodontist on a tablet types findings, is offered to stay signed in before the idle logoff, is signed out
after all, signs in again, lands on the same case with what was typed, and signs the report. The app under test
ends idle sessions after 15 seconds so the test does not wait a quarter of an hour."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from referral.config import Settings
from tests.support.api import ready_referral, submit
from tests.support.settings import make_settings
from tests.support.world import Practice, World

pytestmark = pytest.mark.slow
PASSWORD = "long enough browser password"
IDLE_MINUTES = 0.25  # 15 s: the notice shows 7 s before the end


@pytest.fixture
def app_settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, session_idle_minutes=IDLE_MINUTES)


@pytest.fixture
def routed_case(world: World, riverside: Practice) -> tuple[str, str]:
    endo_org = world.reader_practice("Coastal Endodontics")
    endodontist = world.reader(endo_org, role=None, last_name="Okafor")
    email = "dr.okafor@coastal.example.com"
    created = world.admin.post(f"/api/v1/organizations/{endo_org}/users",
                               {"email": email, "role": "specialist", "password": PASSWORD,
                                "provider_id": endodontist.provider_id})
    assert created.status_code == 201, created.get_json()
    referral_id = ready_referral(riverside)
    assert submit(riverside, referral_id).get_json()["assigned_provider_id"] == endodontist.provider_id
    return email, referral_id


# One US zone here (the capture pages' local times are checked in New York and Los Angeles by test_capture_fixes.py).
@pytest.mark.parametrize("browser_zone", ["America/Denver"])
def test_typed_findings_survive_an_idle_logoff_and_the_report_is_signed(browser_users: Any, routed_case,
                                                                        browser_zone: str):
    email, referral_id = routed_case
    reader = browser_users("endodontist", viewport={"width": 768, "height": 1024}, touch=True,
                           timezone_id=browser_zone)
    reader.sign_in(email, PASSWORD)
    page = reader.page
    page.goto(f"/referrals/{referral_id}")
    page.get_by_role("button", name="Accept case").tap()
    expect(page.locator(".page-head .status")).to_have_text("accepted")

    finding = "Periapical radiolucency at the mesial root apex"
    impression = "Symptomatic apical periodontitis, tooth 19"
    page.locator("[data-finding]").first.get_by_label("Periapical area").fill(finding)
    page.get_by_label("Impression").fill(impression)

    # Nothing happens for a while: the notice offers to stay signed in, and staying works.
    notice = page.locator("[data-idle-notice]")
    expect(notice).to_be_visible(timeout=20_000)
    expect(notice).to_contain_text("signed out in")
    reader.screenshot("idle-notice")
    notice.get_by_role("button", name="Stay signed in").tap()
    expect(notice).to_be_hidden()

    # Then nothing again, to the end: signed out, back at the sign-in page that knows where to return.
    page.wait_for_url(re.compile(r"/login\?ended=idle&next=%2Freferrals%2F"), timeout=40_000)
    expect(page.get_by_role("status")).to_contain_text("without activity")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").tap()
    page.wait_for_url(re.compile(rf"/referrals/{referral_id}$"))

    expect(page.locator("[data-draft-restored]")).to_be_visible()
    expect(page.locator("[data-finding]").first.get_by_label("Periapical area")).to_have_value(finding)
    expect(page.get_by_label("Impression")).to_have_value(impression)
    reader.screenshot("idle-restored")

    # The page carries the new session's token: saving and signing work.
    page.get_by_role("button", name="Save draft").tap()
    expect(page.locator("[data-report-status]")).to_contain_text("Draft saved")
    page.get_by_label("Recommendation").fill("Root canal treatment of tooth 19")
    page.get_by_role("button", name="Sign report").tap()
    expect(page.get_by_test_id("signed-report")).to_contain_text(impression)
    assert page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('referral-draft:'))") == []
    assert reader.problems == []
