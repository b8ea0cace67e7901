"""A practice's first day, through the pages only, from an empty database: the platform admin `create-admin` made
signs in with the printed link and sets up a capturing practice and a reading practice with their people and
fees; the capturing practice's dental assistant registers a child on a parent's plan, captures a radiograph whose
DICOM time is kept, fixes its mislabelled tooth and sends the case; the endodontist of the other practice reads
it, is offered to stay signed in before the idle logoff, and signs; each practice's billing clerk downloads an
837D. The only reads outside the pages are the downloaded files.

The server ends idle sessions after 30 seconds (the notice shows 15 seconds before), so each person signs in
just before their part and closes their browser after it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect

from referral.billing.x12_validator import validate_837d
from referral.config import Settings
from tests.support import samples
from tests.support.settings import make_settings
from tests.support.world import new_npi

pytestmark = pytest.mark.slow
IDLE_MINUTES = 0.5
TABLET = {"width": 768, "height": 1024}
ADMIN_PASSWORD = "harbour lantern plum kettle"
PASSWORD = "long enough browser password"
# A fee for every code either practice bills in this day; without one a claim is held, not ready.
FEES_CSV = "code,fee\nD0707,32.00\nD0220,38.00\nD0391,45.00\nD9996,15.00\nD0140,60.00\n"
CHILD = "Rivera, Ava"


@pytest.fixture
def app_settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, session_idle_minutes=IDLE_MINUTES)


def _link_path(text: str) -> str:
    match = re.search(r"(/set-password/[A-Za-z0-9_-]+)", text)
    assert match, text
    return match.group(1)


def _set_password(user: Any, link: str, password: str) -> None:
    page = user.page
    page.goto(_link_path(link))
    expect(page.get_by_role("heading", name="Set your password")).to_be_visible()
    page.get_by_label("New password").fill(password)
    page.get_by_label("The same password again").fill(password)
    page.get_by_role("button", name="Save password and sign in").click()
    expect(page.get_by_role("button", name="Save password and sign in")).to_have_count(0)


def _add_practice(page: Any, name: str, street: str, zip_code: str) -> None:
    page.get_by_label("Practice name").fill(name)
    page.get_by_label("Organization NPI").fill(new_npi())
    page.get_by_label("Tax id (EIN)").fill("94-1112223")
    page.get_by_label("Phone").fill("916-555-0142")  # the 837D names the billing office's number
    page.get_by_label("Street").fill(street)
    page.get_by_label("City").fill("Sacramento")
    page.get_by_label("State").select_option("CA")
    page.get_by_label("ZIP or ZIP+4").fill(zip_code)
    page.get_by_role("button", name="Add practice").click()
    page.wait_for_url(re.compile(r"/admin/practices/[0-9a-f-]{36}$"))
    expect(page.get_by_label("Time zone")).to_have_value("America/Los_Angeles")


def _add_provider(page: Any, first: str, last: str, credentials: str, taxonomy: str, specialty: str,
                  takes_referrals: bool) -> str:
    adding = page.locator("details", has=page.locator("summary", has_text="Add a provider"))
    if adding.get_attribute("open") is None:  # closed once the practice has a provider
        adding.locator("summary").click()
    adding.get_by_label("First name").fill(first)
    adding.get_by_label("Last name").fill(last)
    adding.get_by_label("Credentials").fill(credentials)
    adding.get_by_label("Individual NPI").fill(new_npi())
    adding.get_by_label("Taxonomy code").fill(taxonomy)
    adding.get_by_label("Specialty").select_option(specialty)
    adding.get_by_label("License states").fill("CA")
    adding.get_by_label("Takes referrals").set_checked(takes_referrals)
    adding.get_by_role("button", name="Add provider").click()
    name = f"{first} {last}, {credentials}"
    expect(page.locator("[data-provider-row]", has_text=name)).to_have_count(1)
    return name


def _invite(page: Any, email: str, role: str, provider: str | None = None) -> str:
    inviting = page.locator("details", has=page.locator("summary", has_text="Invite a user"))
    inviting.get_by_label("Email").fill(email)
    inviting.get_by_label("Role").select_option(role)
    if provider:
        inviting.get_by_label("Provider").select_option(label=provider)
    inviting.get_by_role("button", name="Invite").click()
    expect(page.locator("#link-result")).to_contain_text(email)
    link = page.locator("[data-link-url]").input_value()
    assert "/set-password/" in link
    return link


def _import_fees(page: Any, tmp_path: Path, name: str) -> None:
    csv_file = tmp_path / f"{name}-fees.csv"
    csv_file.write_text(FEES_CSV)
    page.locator("[data-fee-import]").set_input_files(str(csv_file))
    expect(page.get_by_label("Fee for D0707")).to_have_value("32.00")
    expect(page.get_by_label("Fee for D0391")).to_have_value("45.00")


def _set_up_both_practices(app: Flask, open_browser: Any, tmp_path: Path, zone: str) -> dict[str, str]:
    """The platform admin's part; returns each person's one-time link by email."""
    created = app.test_cli_runner().invoke(args=["create-admin", "owner@example.com"])
    assert created.exit_code == 0, created.output
    admin = open_browser("platform-admin", timezone_id=zone)
    _set_password(admin, created.stderr, ADMIN_PASSWORD)
    page = admin.page
    expect(page.get_by_role("heading", name="Practices")).to_be_visible()
    links: dict[str, str] = {}

    _add_practice(page, "Sunrise Family Dental", "100 Main St", "95814-1234")
    dentist = _add_provider(page, "Rosa", "Alvarez", "DDS", "1223G0001X", "general", takes_referrals=True)
    assistant = _add_provider(page, "Nia", "Park", "RDA", "126800000X", "assistant", takes_referrals=False)
    _add_provider(page, "Sam", "Lee", "RDH", "124Q00000X", "hygiene", takes_referrals=False)
    assert dentist
    links["nia@sunrise.example.com"] = _invite(page, "nia@sunrise.example.com", "staff", assistant)
    links["claims@sunrise.example.com"] = _invite(page, "claims@sunrise.example.com", "billing")
    _import_fees(page, tmp_path, "sunrise")
    admin.screenshot("day-one-capturing-practice")

    page.get_by_role("link", name="All practices").click()
    expect(page.get_by_role("heading", name="Practices")).to_be_visible()
    expect(page.get_by_role("link", name="Sunrise Family Dental")).to_be_visible()
    _add_practice(page, "Coastal Endodontics", "200 Capitol Mall", "95814-2001")
    endodontist = _add_provider(page, "Ade", "Okafor", "DDS, MS", "1223E0200X", "endodontics", takes_referrals=True)
    links["dr.okafor@coastal.example.com"] = _invite(page, "dr.okafor@coastal.example.com", "specialist",
                                                     endodontist)
    links["claims@coastal.example.com"] = _invite(page, "claims@coastal.example.com", "billing")
    _import_fees(page, tmp_path, "coastal")
    assert admin.problems == [], admin.problems
    admin.close()

    for email, link in links.items():
        person = open_browser(f"first-sign-in-{email}", timezone_id=zone)
        _set_password(person, link, PASSWORD)
        expect(person.page.locator("header")).to_contain_text(
            "Sunrise Family Dental" if "sunrise" in email else "Coastal Endodontics")
        assert person.problems == [], (email, person.problems)
        person.close()
    return links


def _register_the_child(page: Any) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Patients").click()
    page.get_by_role("link", name="New patient").click()
    page.get_by_label("First name", exact=True).fill("Ava")
    page.get_by_label("Last name", exact=True).fill("Rivera")
    page.get_by_label("Birth date", exact=True).fill("2016-05-14")
    page.get_by_label("Sex", exact=True).select_option("F")
    page.get_by_label("State of residence").select_option("CA")
    page.get_by_label("Street address", exact=True).fill("12 Oak Street")
    page.get_by_label("City", exact=True).fill("Sacramento")
    page.get_by_label("ZIP code", exact=True).fill("95816-4321")
    page.get_by_label("The patient has dental insurance").check()
    page.get_by_label("Insurance company (payer)").fill("Example Dental Plan")
    page.get_by_label("Payer id").fill("60054")
    page.get_by_label("Member id (the subscriber's)").fill("W123456789")
    page.get_by_label("Patient's relationship to the subscriber").select_option("child")
    page.get_by_label("Subscriber's first name").fill("Maria")
    page.get_by_label("Subscriber's last name").fill("Rivera")
    page.get_by_label("Subscriber's birth date").fill("1984-03-09")
    page.get_by_label("Subscriber's sex").select_option("F")
    expect(page.get_by_label("The subscriber lives at the patient's address")).to_be_checked()
    page.get_by_role("button", name="Add patient").click()
    page.wait_for_url(re.compile(r"/patients/[0-9a-f-]{36}\?saved=1$"))
    expect(page.locator("[data-saved]")).to_contain_text("Saved")


def _capture_and_send(page: Any, tmp_path: Path) -> str:
    page.get_by_role("link", name="New referral").first.click()
    page.wait_for_url(re.compile(r"/referrals/new$"))
    page.get_by_label("Find a patient").fill("Rivera")
    page.get_by_role("button", name=re.compile(CHILD)).click()
    expect(page.locator("[data-patient-chosen]")).to_contain_text(CHILD)
    # The assistant refers under the practice's dentist: an assistant is never the referring provider.
    expect(page.get_by_label("Referring provider").locator("option:checked")).to_contain_text("Rosa Alvarez")
    expect(page.get_by_label("Referring provider").locator("option", has_text="Nia Park")).to_have_count(0)
    page.get_by_label("Specialty needed").select_option("endodontics")
    page.get_by_label("Urgency").select_option("routine")
    page.get_by_label("Reason for referral").fill("Lingering pain to cold on the lower left first molar")
    page.get_by_role("button", name="Tooth 19", exact=True).click()
    expect(page.locator("[data-tooth-summary]")).to_have_text("19")
    page.get_by_label("Consent has been given").check()
    page.get_by_label("Given by").select_option("guardian")
    expect(page.get_by_label(re.compile(r"^When"))).not_to_have_value("")
    page.get_by_role("button", name="Create referral").click()
    page.wait_for_url(re.compile(r"/referrals/[0-9a-f-]{36}$"))
    referral_id = page.url.rsplit("/", 1)[1]

    # Taken by the assistant at 09:30 on Jan 1 by the practice's clock, without an offset in the file.
    radiograph = tmp_path / "pa.dcm"
    radiograph.write_bytes(samples.dicom_bytes(patient_name="Rivera^Ava", birth_date="20160514", teeth=(),
                                               acquisition="20260101093000", operator="Park^Nia"))
    page.get_by_label("Choose radiographs and photos").set_input_files(str(radiograph))
    row = page.locator("[data-upload-row]")
    expect(row).to_have_count(1)
    taken_by = row.get_by_label("Taken by")
    expect(taken_by.locator("option")).to_have_count(3)  # the dentist, the assistant and the hygienist
    expect(taken_by.locator("option:checked")).to_contain_text("Nia Park")
    expect(row.get_by_label(re.compile("Taken at"))).to_have_value("")  # the file's time is used
    row.get_by_label("Kind").select_option("periapical")
    row.get_by_label(re.compile(r"^Teeth")).fill("18")  # the wrong tooth
    page.get_by_role("button", name="Upload all").click()
    expect(page.locator('[data-upload-row][data-state="done"]')).to_have_count(1, timeout=30_000)

    uploaded = page.locator("[data-uploaded-list] > li")
    expect(uploaded).to_have_count(1)
    expect(uploaded).to_contain_text("teeth 18")
    expect(uploaded).to_contain_text("Jan 1, 2026, 9:30 AM PST")
    expect(page.locator("[data-missing]")).to_contain_text("a periapical of tooth 19")

    uploaded.get_by_text("Change or remove").click()
    uploaded.get_by_label(re.compile(r"^Teeth")).fill("19")
    uploaded.get_by_role("button", name="Save changes").click()
    expect(uploaded.locator(".image-label")).to_have_text("Periapical radiograph · teeth 19")
    expect(page.locator("[data-missing]")).to_be_hidden()
    expect(uploaded).to_contain_text("Jan 1, 2026, 9:30 AM PST")

    page.get_by_role("button", name="Send to a reader").click()
    expect(page.locator(".page-head .status")).to_have_text("routed")
    expect(page.locator("[data-image-fix]")).to_have_count(0)
    return referral_id


def _read_and_sign(reader: Any, referral_id: str) -> None:
    page = reader.page
    inbox = page.get_by_test_id("inbox")
    expect(inbox).to_contain_text(CHILD)
    inbox.get_by_role("link", name=CHILD).click()
    page.wait_for_url(re.compile(rf"/referrals/{referral_id}$"))
    page.get_by_role("button", name="Accept case").click()
    expect(page.locator(".page-head .status")).to_have_text("accepted")
    finding = "Periapical radiolucency at the mesial root apex"
    impression = "Symptomatic apical periodontitis, tooth 19"
    page.locator("[data-finding]").first.get_by_label("Periapical area").fill(finding)
    page.get_by_label("Impression").fill(impression)

    # Nothing happens for a while: the notice offers to stay signed in, and staying works.
    notice = page.locator("[data-idle-notice]")
    expect(notice).to_be_visible(timeout=45_000)
    expect(notice).to_contain_text("signed out in")
    reader.screenshot("day-one-idle-notice")
    notice.get_by_role("button", name="Stay signed in").click()
    expect(notice).to_be_hidden()
    expect(page.get_by_label("Impression")).to_have_value(impression)

    page.get_by_label("Recommendation").fill("Root canal treatment of tooth 19")
    page.get_by_role("button", name="Sign report").click()
    expect(page.get_by_test_id("signed-report")).to_contain_text(impression)
    expect(page.locator(".page-head .status")).to_have_text("reported")


def _export_837d(clerk: Any, codes: list[str]) -> str:
    page = clerk.page
    claims = page.get_by_test_id("claim-list")
    expect(claims).to_contain_text(codes[0])
    claims.get_by_role("link", name=CHILD).click()
    page.wait_for_url(re.compile(r"/claims/[0-9a-f-]{36}$"))
    lines = page.get_by_test_id("claim-lines")
    for code in codes:
        expect(lines).to_contain_text(code)
    expect(page.get_by_test_id("claim-status")).to_have_text(re.compile("ready", re.I))
    expect(page.locator(".edit-hold")).to_have_count(0)
    with page.expect_download() as download_info:
        page.get_by_role("button", name="837D file").click()
    text = Path(download_info.value.path()).read_text()
    assert text.startswith("ISA*")
    assert validate_837d(text) == []
    return text


def _segments(text: str) -> list[list[str]]:
    return [segment.strip().split("*") for segment in text.split("~") if segment.strip()]


def _procedure_codes(text: str) -> list[str]:
    return sorted(s[1].split(":")[1] for s in _segments(text) if s[0] == "SV3")


def _has_child_loop(text: str) -> bool:
    segments = _segments(text)
    levels = [s[3] for s in segments if s[0] == "HL"]
    patient = [s for s in segments if s[0] == "PAT"]
    return "23" in levels and patient == [["PAT", "19"]]


# One zone, the farthest behind UTC on the mainland (New York and Los Angeles both run in test_capture_fixes.py).
@pytest.mark.parametrize("browser_zone", ["America/Los_Angeles"])
def test_a_practice_day_from_an_empty_database_to_two_837d_files(
        app: Flask, browser_users: Any, tmp_path: Path, browser_zone: str):
    _set_up_both_practices(app, browser_users, tmp_path, browser_zone)

    assistant = browser_users("assistant", viewport=TABLET, touch=True, timezone_id=browser_zone)
    assistant.sign_in("nia@sunrise.example.com", PASSWORD)
    assert assistant.page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == browser_zone
    _register_the_child(assistant.page)
    referral_id = _capture_and_send(assistant.page, tmp_path)
    assistant.screenshot(f"day-one-sent-{browser_zone.split('/')[1].lower()}")
    assert assistant.problems == [], assistant.problems
    assistant.close()

    reader = browser_users("endodontist", viewport=TABLET, touch=True, timezone_id=browser_zone)
    reader.sign_in("dr.okafor@coastal.example.com", PASSWORD)
    _read_and_sign(reader, referral_id)
    assert reader.problems == [], reader.problems
    reader.close()

    capturing_clerk = browser_users("sunrise-billing", timezone_id=browser_zone)
    capturing_clerk.sign_in("claims@sunrise.example.com", PASSWORD)
    capture_file = _export_837d(capturing_clerk, ["D0707"])
    assert _procedure_codes(capture_file) == ["D0707"]
    assert _has_child_loop(capture_file)
    assert capturing_clerk.problems == [], capturing_clerk.problems
    capturing_clerk.close()

    reading_clerk = browser_users("coastal-billing", timezone_id=browser_zone)
    reading_clerk.sign_in("claims@coastal.example.com", PASSWORD)
    reading_file = _export_837d(reading_clerk, ["D0391", "D9996"])
    assert _procedure_codes(reading_file) == ["D0391", "D9996"]
    assert _has_child_loop(reading_file)
    assert reading_clerk.problems == [], reading_clerk.problems
