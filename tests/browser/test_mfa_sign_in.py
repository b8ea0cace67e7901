"""Two-step sign-in in a real browser in New York: a dentist sets up an authenticator from the page (QR code and
key, no inline script), saves the recovery codes, signs out, and signs in again with the password and a code
computed by pyotp as an authenticator app would."""

from __future__ import annotations

import re
import time
from typing import Any

import pyotp
import pytest
from playwright.sync_api import expect

from tests.support.web import PASSWORD, user_with_password
from tests.support.world import Practice, World

pytestmark = pytest.mark.slow


def test_a_dentist_enrols_and_signs_in_with_a_code(browser_users: Any, world: World, riverside: Practice):
    email = "dr.rivera@riverside.example.com"
    user_with_password(world, riverside, "dentist", email)
    dentist = browser_users("dentist", timezone_id="America/New_York")
    page = dentist.page
    dentist.sign_in(email, PASSWORD)

    page.get_by_role("link", name="Two-step sign-in").click()
    expect(page.get_by_role("heading", name="Set up two-step sign-in")).to_be_visible()
    expect(page.get_by_test_id("mfa-qr").locator("svg")).to_be_visible()
    assert page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == "America/New_York"
    secret = page.get_by_test_id("mfa-secret").inner_text().strip()
    totp = pyotp.TOTP(secret)
    dentist.screenshot("mfa-enrol")
    enrolled_at = time.time()
    page.get_by_label("Code from the app").fill(totp.at(enrolled_at))
    page.get_by_role("button", name="Turn on two-step sign-in").click()
    expect(page.get_by_role("heading", name="Two-step sign-in is on")).to_be_visible()
    expect(page.get_by_test_id("recovery-codes").locator("li")).to_have_count(10)
    page.get_by_role("link", name="I have saved them; continue").click()
    page.wait_for_url(re.compile(r"/$"))

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/login"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/login/code$"))
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    # The enrolment spent its own step's code; the app's next code is taken.
    page.get_by_label("Code").fill(totp.at(enrolled_at + 30))
    page.get_by_role("button", name="Verify and sign in").click()
    page.wait_for_url(re.compile(r"/$"))
    expect(page.get_by_role("heading", name="Your practice's referrals")).to_be_visible()
    assert not dentist.problems, dentist.problems
