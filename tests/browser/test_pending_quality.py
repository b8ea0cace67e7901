"""A server that draws previews after the upload's answer (PREVIEWS_AFTER_ANSWER=always): the hygienist's case
page says the quality check is under way, then shows its warning without a reload once the drawing is done."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect

from referral.config import Settings
from referral.imaging import previews
from referral.services import renditions
from tests.support import samples
from tests.support.api import new_referral
from tests.support.settings import make_settings
from tests.support.web import PASSWORD, user_with_password
from tests.support.world import Practice, World

pytestmark = pytest.mark.slow


@pytest.fixture
def app_settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, previews_after_answer="always", preview_background_threads=1)


@pytest.fixture(autouse=True)
def _drawings_finished(app: Flask) -> Iterator[None]:
    yield
    app.extensions[renditions.DRAWER].wait_idle()


def test_the_quality_warning_arrives_on_the_case_page_once_the_preview_is_drawn(
        browser_users: Any, world: World, riverside: Practice, tmp_path: Path):
    email = "sam.lee@riverside.example.com"
    user_with_password(world, riverside, "staff", email)
    referral_id = new_referral(riverside, teeth=["19"])
    dark = tmp_path / "pa-19.dcm"
    dark.write_bytes(samples.dicom_bytes(teeth=(), pixel_fill=40))

    user = browser_users("hygienist", timezone_id="America/Chicago")
    user.sign_in(email, PASSWORD)
    page = user.page
    page.goto(f"/referrals/{referral_id}")
    # Every drawing slot is held, so the upload is answered with its preview still to be drawn.
    slots = previews._slots
    held = 0
    while slots.acquire(blocking=False):
        held += 1
    try:
        page.get_by_label("Choose radiographs and photos").set_input_files(str(dark))
        page.locator("[data-upload-row]").first.get_by_label("Kind").select_option("periapical")
        page.get_by_role("button", name="Upload all").click()
        expect(page.locator('[data-upload-row][data-state="done"]')).to_have_count(1, timeout=30_000)
        uploaded = page.locator("[data-uploaded-list] > li")
        expect(uploaded.locator("[data-quality-pending]")).to_be_visible(timeout=15_000)
        expect(uploaded.locator("[data-quality-warning]")).to_have_count(0)
    finally:
        for _ in range(held):
            slots.release()

    expect(uploaded.locator('[data-quality-warning="underexposed"]')).to_be_visible(timeout=30_000)
    expect(uploaded.locator("[data-quality-pending]")).to_have_count(0)
    expect(uploaded.locator("img")).to_have_js_property("complete", True)
    assert user.problems == []
