"""A new server's first hour in a real browser, on a tablet in Los Angeles: the link `create-admin` printed
sets the platform admin's password, then a practice is added and edited, a provider added, a user invited
(whose own link signs them in) and fees typed and imported from CSV."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect

pytestmark = pytest.mark.slow
TABLET = {"width": 768, "height": 1024}


def _context(chromium: Any, server_url: str) -> tuple[Any, Any, list[str]]:
    context = chromium.new_context(base_url=server_url, viewport=TABLET, has_touch=True,
                                   timezone_id="America/Los_Angeles", locale="en-US")
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("dialog", lambda dialog: dialog.accept())
    return context, page, problems


def _link_path(text: str) -> str:
    match = re.search(r"(/set-password/[A-Za-z0-9_-]+)", text)
    assert match, text
    return match.group(1)


def test_from_the_printed_link_to_a_practice_with_a_provider_and_an_invited_user(
        app: Flask, chromium: Any, server_url: str, tmp_path: Path):
    result = app.test_cli_runner().invoke(args=["create-admin", "owner@example.com"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["token"].startswith("rfl_")
    context, page, problems = _context(chromium, server_url)
    try:
        assert page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == "America/Los_Angeles"
        # -- the printed link: choose a password, land signed in on the practices page ----------------------
        page.goto(_link_path(result.stderr))
        expect(page.get_by_role("heading", name="Set your password")).to_be_visible()
        page.get_by_label("New password").fill("harbour lantern plum kettle")
        page.get_by_label("The same password again").fill("harbour lantern plum kettle")
        page.get_by_role("button", name="Save password and sign in").click()
        expect(page.get_by_role("heading", name="Practices")).to_be_visible()

        # -- add a practice, then edit it ------------------------------------------------------------------
        page.get_by_label("Practice name").fill("Harbor Kids Dental")
        page.get_by_label("Organization NPI").fill("1234567893")
        page.get_by_label("Tax id (EIN)").fill("94-1112223")
        page.get_by_label("Street").fill("1 Harbor Way")
        page.get_by_label("City").fill("Long Beach")
        page.get_by_label("State").select_option("CA")
        page.get_by_label("ZIP or ZIP+4").fill("90802")
        page.get_by_role("button", name="Add practice").click()
        page.wait_for_url(re.compile(r"/admin/practices/[0-9a-f-]{36}$"))
        expect(page.get_by_label("Time zone")).to_have_value("America/Los_Angeles")

        page.get_by_label("ZIP or ZIP+4").fill("90802-0000")
        page.get_by_role("button", name="Save practice").click()
        expect(page.locator("#practice-errors")).to_contain_text("ZIP or ZIP+4")
        page.get_by_label("ZIP or ZIP+4").fill("90802-4411")
        page.get_by_label("Default place of service").select_option("03")
        page.get_by_label("Practice name").fill("Harbor Kids Dental & School Program")
        page.get_by_role("button", name="Save practice").click()
        expect(page.locator("#practice-saved")).to_be_visible()
        page.reload()
        expect(page.get_by_label("Practice name")).to_have_value("Harbor Kids Dental & School Program")
        expect(page.get_by_label("ZIP or ZIP+4")).to_have_value("90802-4411")
        expect(page.get_by_label("Default place of service")).to_have_value("03")

        # -- add a provider: a wrong check digit is refused in words, then the right NPI is taken ---------------
        adding = page.locator("details", has=page.get_by_role("button", name="Add provider"))
        adding.get_by_label("First name").fill("Rosa")
        adding.get_by_label("Last name").fill("Alvarez")
        adding.get_by_label("Credentials").fill("DDS")
        adding.get_by_label("Individual NPI").fill("1234567890")
        adding.get_by_label("Taxonomy code").fill("1223P0221X")
        adding.get_by_label("Specialty").select_option("pediatric")
        adding.get_by_label("License states").fill("ca, nv")
        adding.get_by_role("button", name="Add provider").click()
        expect(page.locator("#new-provider-errors")).to_contain_text("Individual NPI")
        adding.get_by_label("Individual NPI").fill("1245319599")
        adding.get_by_role("button", name="Add provider").click()
        expect(page.locator("[data-provider-row]")).to_contain_text("Rosa Alvarez, DDS")
        expect(page.locator("[data-provider-row]")).to_contain_text("CA, NV")

        # -- invite a dentist linked to that provider; the page shows their one-time link ------------------------
        inviting = page.locator("details", has=page.get_by_role("button", name="Invite"))
        inviting.get_by_label("Email").fill("rosa@harborkids.example.com")
        inviting.get_by_label("Role").select_option("dentist")
        inviting.get_by_label("Provider").select_option(label="Rosa Alvarez, DDS")
        inviting.get_by_role("button", name="Invite").click()
        link_box = page.locator("[data-link-url]")
        expect(link_box).to_be_visible()
        invite_link = link_box.input_value()
        assert "/set-password/" in invite_link
        expect(page.locator("#link-result")).to_contain_text("rosa@harborkids.example.com")
        page.reload()
        invited = page.locator('[data-user-row="rosa@harborkids.example.com"]')
        expect(invited).to_contain_text("Invited, no password yet")

        # -- fees: one typed in the table, then a CSV file imported over them ----------------------------------
        fees = page.locator("[data-fee-form]")
        fees.get_by_label("New code").fill("D0140")
        fees.get_by_label("New fee").fill("65")
        fees.get_by_role("button", name="Save fees").click()
        expect(page.get_by_label("Fee for D0140")).to_have_value("65.00")
        csv_file = tmp_path / "fees.csv"
        csv_file.write_text("code,fee\nD0140,70.00\nD0350,45.00\n")
        page.locator("[data-fee-import]").set_input_files(str(csv_file))
        expect(page.get_by_label("Fee for D0350")).to_have_value("45.00")
        expect(page.get_by_label("Fee for D0140")).to_have_value("70.00")
        # The two refusals above answered 422, which the browser logs as failed loads; nothing else went wrong.
        assert [p for p in problems if "status of 422" not in p] == [], problems
    finally:
        context.close()

    # -- the invited dentist opens their link in their own browser ------------------------------------------------
    context, page, problems = _context(chromium, server_url)
    try:
        page.goto(_link_path(invite_link))
        expect(page.get_by_text("rosa@harborkids.example.com")).to_be_visible()
        page.get_by_label("New password").fill("tide pool crayon meadow")
        page.get_by_label("The same password again").fill("tide pool crayon meadow")
        page.get_by_role("button", name="Save password and sign in").click()
        expect(page.get_by_role("heading", name="Your practice's referrals")).to_be_visible()
        expect(page.locator("header")).to_contain_text("Harbor Kids Dental & School Program")
        assert problems == [], problems
    finally:
        context.close()

