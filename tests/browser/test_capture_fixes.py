"""Capturing in the pages from a tablet (768 px, touch) whose clock is in a US zone: the DICOM file's own time
is kept, consent is recorded at the practice's local time, and a mislabelled image is fixed (and a stray one
removed) before the case is sent."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from referral import timezones
from tests.support import samples
from tests.support.api import new_referral
from tests.support.web import PASSWORD, user_with_password
from tests.support.world import Practice, World

pytestmark = pytest.mark.slow
TABLET = {"width": 768, "height": 1024}


@pytest.fixture
def hygienist(world: World, riverside: Practice) -> str:
    world.reader(world.reader_practice("Coastal Endodontics"))
    email = "sam.lee@riverside.example.com"
    user_with_password(world, riverside, "staff", email)
    return email


def _uploaded(page: Any, kind: str) -> Any:
    return page.locator("[data-uploaded-list] > li").filter(has=page.locator(".image-label", has_text=kind))


@pytest.mark.parametrize("browser_zone", ["America/Los_Angeles", "America/New_York"])
def test_a_tablet_in_a_us_zone_keeps_the_dicom_time_and_fixes_a_mislabelled_image(
        browser_users: Any, world: World, riverside: Practice, hygienist: str, tmp_path: Path, browser_zone: str):
    referral_id = new_referral(riverside, teeth=["19"])
    radiograph = tmp_path / "pa.dcm"
    # Taken by the hygienist at 09:30 on Jan 1 by the practice's clock (Sacramento), without an offset.
    radiograph.write_bytes(samples.dicom_bytes(teeth=(), acquisition="20260101093000", operator="Lee^Sam"))
    stray = tmp_path / "stray.jpg"
    stray.write_bytes(samples.jpeg_bytes(320, 240))

    tablet = browser_users("hygienist", viewport=TABLET, touch=True, timezone_id=browser_zone)
    tablet.sign_in(hygienist, PASSWORD)
    page = tablet.page
    assert page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == browser_zone
    page.goto(f"/referrals/{referral_id}")

    # -- consent at the pre-filled local time of the practice: never "in the future" -------------------
    consent_at = page.get_by_label(re.compile(r"^When"))
    expect(consent_at).not_to_have_value("")
    typed = consent_at.input_value()
    page.get_by_role("button", name="Record consent").tap()
    expect(page.locator("#consent-h")).to_have_count(0)
    given_at = riverside.staff.get(f"/api/v1/referrals/{referral_id}").get_json()["consent"]["given_at"]
    expected = timezones.from_local(datetime.fromisoformat(typed), "America/Los_Angeles")
    assert datetime.fromisoformat(given_at) == expected
    assert expected <= datetime.now(UTC)

    # -- the radiograph, mislabelled as tooth 18, and a stray photo -----------------------------------
    page.get_by_label("Choose radiographs and photos").set_input_files([str(radiograph), str(stray)])
    rows = page.locator("[data-upload-row]")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).get_by_label(re.compile("Taken at"))).to_have_value("")
    expect(rows.nth(0).locator("[data-time-hint]")).to_be_visible()
    expect(rows.nth(1).get_by_label(re.compile("Taken at"))).not_to_have_value("")
    expect(rows.nth(0).get_by_label("Taken by")).to_have_value(riverside.hygienist_provider_id)
    taken_by = rows.nth(0).get_by_label("Taken by").locator("option")
    expect(taken_by).to_have_count(2)  # the dentist and the hygienist
    rows.nth(0).get_by_label("Kind").select_option("periapical")
    rows.nth(0).get_by_label(re.compile(r"^Teeth")).fill("18")
    rows.nth(1).get_by_label("Kind").select_option("photo_intraoral")
    page.get_by_role("button", name="Upload all").tap()
    expect(page.locator('[data-upload-row][data-state="done"]')).to_have_count(2, timeout=30_000)

    uploaded = page.locator("[data-uploaded-list] > li")
    expect(uploaded).to_have_count(2)
    pa = _uploaded(page, "Periapical radiograph")
    expect(pa).to_contain_text("teeth 18")
    # The file's own time, read on the practice's clock whatever the tablet's zone.
    expect(pa).to_contain_text("Jan 1, 2026, 9:30 AM PST")
    expect(pa.locator("[data-capture-note]")).to_have_count(0)
    expect(page.locator("[data-missing]")).to_contain_text("a periapical of tooth 19")
    tablet.screenshot(f"capture-mislabelled-{browser_zone.split('/')[1].lower()}")

    # -- fix the tooth, remove the stray photo ----------------------------------------------------------
    pa.get_by_text("Change or remove").tap()
    pa.get_by_label(re.compile(r"^Teeth")).fill("19")
    pa.get_by_role("button", name="Save changes").tap()
    expect(_uploaded(page, "Periapical radiograph").locator(".image-label")).to_have_text(
        "Periapical radiograph · teeth 19")
    expect(page.locator("[data-missing]")).to_be_hidden()
    photo = _uploaded(page, "Intraoral photo")
    photo.get_by_text("Change or remove").tap()
    photo.get_by_role("button", name="Remove image").tap()
    expect(page.locator("[data-uploaded-list] > li")).to_have_count(1)

    images = riverside.staff.get(f"/api/v1/referrals/{referral_id}/images").get_json()["items"]
    assert [(i["kind"], i["teeth"], i["captured_at"]) for i in images] == \
        [("periapical", ["19"], "2026-01-01T17:30:00+00:00")]
    assert images[0]["captured_by_provider_id"] == riverside.hygienist_provider_id

    page.get_by_role("button", name="Send to a reader").tap()
    expect(page.locator(".page-head .status")).to_have_text("routed")
    expect(page.locator("[data-image-fix]")).to_have_count(0)
    assert riverside.staff.patch(f"/api/v1/images/{images[0]['id']}", {"teeth": ["18"]}).status_code == 409
    assert tablet.problems == []
