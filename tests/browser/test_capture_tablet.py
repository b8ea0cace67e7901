"""The capture-first flow on a 768-px touch screen: pick the patient, tap the teeth, take a photo with the
device camera, see the quality checks, send. Every control is at least 44 px each way and nothing scrolls
sideways."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support import samples
from tests.support.web import PASSWORD, user_with_password
from tests.support.world import Practice, World

pytestmark = pytest.mark.slow
TABLET = {"width": 768, "height": 1024}
MIN_TARGET = 44

# Every control a finger can aim at, as drawn: a checkbox is aimed at through its label (label.check), the
# camera's file input through its button-like label; closed or hidden parts of the page are not drawn.
SMALL_CONTROLS = """(minimum) => {
    const selector = 'a[href], button, input:not([type=hidden]):not([type=checkbox]):not([type=radio]), ' +
                     'select, textarea, summary, label.check, label.button';
    const small = [];
    for (const el of document.querySelectorAll(selector)) {
        if (el.classList.contains('camera-input') || el.classList.contains('skip')) continue;
        const box = el.getBoundingClientRect();
        if (box.width === 0 && box.height === 0) continue;
        if (getComputedStyle(el).visibility === 'hidden') continue;
        if (box.width < minimum || box.height < minimum) {
            const name = (el.textContent || el.name || el.id || '').trim().slice(0, 30);
            small.push(`${el.tagName.toLowerCase()} "${name}" ${Math.round(box.width)}x${Math.round(box.height)}`);
        }
    }
    return small;
}"""
SIDEWAYS = """() => ({scroll: document.documentElement.scrollWidth, view: document.documentElement.clientWidth})"""


@pytest.fixture
def hygienist(world: World, riverside: Practice) -> str:
    world.reader(world.reader_practice("Coastal Endodontics"))
    email = "sam.lee@riverside.example.com"
    user_with_password(world, riverside, "staff", email)
    return email


def _assert_touch_friendly(page: Any, where: str) -> None:
    page.wait_for_load_state("load")
    small = page.evaluate(SMALL_CONTROLS, MIN_TARGET)
    assert small == [], f"controls under {MIN_TARGET} px on {where}: {small}"
    width = page.evaluate(SIDEWAYS)
    assert width["scroll"] <= width["view"], f"{where} scrolls sideways: {width}"


def test_a_hygienist_captures_and_sends_a_case_from_a_tablet(
        browser_users: Any, riverside: Practice, hygienist: str, tmp_path: Path):
    photo = tmp_path / "buccal.jpg"
    photo.write_bytes(samples.jpeg_bytes(40, 30))  # too few pixels: the quality check says so
    radiograph = tmp_path / "pa-19.dcm"
    radiograph.write_bytes(samples.dicom_bytes(teeth=()))

    tablet = browser_users("hygienist", viewport=TABLET, touch=True, timezone_id="America/New_York")
    tablet.sign_in(hygienist, PASSWORD)
    page = tablet.page
    _assert_touch_friendly(page, "the referrals page")

    # -- pick the patient and tap the teeth ---------------------------------------------------------------
    page.get_by_role("link", name="New referral").first.tap()
    expect(page.get_by_role("heading", name="New referral")).to_be_visible()
    _assert_touch_friendly(page, "the new referral page")
    page.get_by_label("Find a patient").fill("Do")
    page.get_by_role("button", name=re.compile(r"Doe, Jane")).tap()
    expect(page.locator("[data-patient-chosen]")).to_contain_text("Doe, Jane")
    page.get_by_label("Specialty needed").select_option("endodontics")
    page.get_by_label("Reason for referral").fill("Pain to cold on the lower left first molar")
    page.get_by_role("button", name="Tooth 19", exact=True).tap()
    expect(page.locator("[data-tooth-summary]")).to_have_text("19")
    page.get_by_label("Consent has been given").check()
    page.get_by_label("When").fill("2026-01-05T09:00")
    _assert_touch_friendly(page, "the filled new referral page")
    page.get_by_role("button", name="Create referral").tap()
    page.wait_for_url(re.compile(r"/referrals/[0-9a-f-]{36}$"))
    referral_id = page.url.rsplit("/", 1)[1]

    # -- the camera: a photo is taken and goes up on its own ---------------------------------------------------
    camera = page.get_by_label("Take a photo")
    expect(camera).to_have_attribute("capture", "environment")
    expect(camera).to_have_attribute("accept", "image/*")
    _assert_touch_friendly(page, "the case page")
    camera.set_input_files(str(photo))
    expect(page.locator('[data-upload-row][data-state="done"]')).to_have_count(1, timeout=30_000)
    uploaded = page.locator("[data-uploaded-list] > li")
    expect(uploaded).to_have_count(1)
    expect(uploaded.locator('[data-quality-warning="too_small"]')).to_be_visible()
    expect(uploaded.locator(".image-label")).to_contain_text("Intraoral photo")

    # -- the periapical from the sensor's export, then send ---------------------------------------------------
    send = page.get_by_role("button", name="Send to a reader")
    page.get_by_label("Choose radiographs and photos").set_input_files(str(radiograph))
    row = page.locator("[data-upload-row]").nth(1)
    row.get_by_label("Kind").select_option("periapical")
    expect(send).to_be_disabled()
    expect(page.locator("[data-send-wait]")).to_be_visible()
    _assert_touch_friendly(page, "the case page with a file to upload")
    page.get_by_role("button", name="Upload all").tap()
    expect(page.locator('[data-upload-row][data-state="done"]')).to_have_count(2, timeout=30_000)
    expect(uploaded).to_have_count(2)
    expect(send).to_be_enabled()
    _assert_touch_friendly(page, "the case page with its images")
    tablet.screenshot("capture-tablet")
    send.tap()
    expect(page.locator(".page-head .status")).to_have_text("routed")
    images = riverside.staff.get(f"/api/v1/referrals/{referral_id}/images").get_json()["items"]
    assert sorted(i["kind"] for i in images) == ["periapical", "photo_intraoral"]
    photo_json = next(i for i in images if i["kind"] == "photo_intraoral")
    assert "too_small" in [w["code"] for w in photo_json["quality_warnings"]]
    assert tablet.problems == []
