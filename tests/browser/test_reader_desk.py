"""The reader's desk in a real browser, keyboard only: a reader accepts, reads and signs a case without a mouse
(Tab, Enter, the viewer's shortcuts and typing), every control reached shows where the focus is, and the page never
scrolls sideways. Also: an org admin's turnaround page draws its chart and tables. Browsers run in a US zone."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support import samples
from tests.support.api import new_referral, signed_case, submit, upload
from tests.support.world import Practice, World

pytestmark = pytest.mark.slow
PASSWORD = "long enough browser password"
ZONE = "America/New_York"
DESKTOP = {"width": 1280, "height": 900}
TABLET = {"width": 768, "height": 1024}
CONSENT = {"given_by": "patient", "method": "verbal", "given_at": "2026-01-05T09:00:00Z"}

# What has the focus, and whether it is drawn: an outline (or a box shadow) other than none.
FOCUS = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const outlined = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0;
  const text = el.innerText || el.value || el.getAttribute('aria-label') || '';
  return {tag: el.tagName, id: el.id, text: text.slice(0, 60),
          visible: outlined || style.boxShadow !== 'none', testid: el.dataset.testid || '',
          attrs: Array.from(el.attributes).map(a => a.name).join(' ')};
}"""


def _login(world: World, organization_id: str, email: str, role: str, provider_id: str | None) -> str:
    body: dict[str, Any] = {"email": email, "role": role, "password": PASSWORD}
    if provider_id:
        body["provider_id"] = provider_id
    created = world.admin.post(f"/api/v1/organizations/{organization_id}/users", body)
    assert created.status_code == 201, created.get_json()
    return email


class Keyboard:
    """Moves the focus with Tab / Shift+Tab only, and checks every stop is visibly focused."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.stops: list[dict[str, Any]] = []

    def tab_to(self, selector: str, *, back: bool = False, limit: int = 120) -> None:
        for _ in range(limit):
            self.page.keyboard.press("Shift+Tab" if back else "Tab")
            focus = self.page.evaluate(FOCUS)
            if focus is not None:
                self.stops.append(focus)
                assert focus["visible"], f"the focus is not drawn on {focus}"
            if self.page.evaluate("(s) => !!document.activeElement && document.activeElement.matches(s)", selector):
                return
        raise AssertionError(f"Tab never reached {selector}; last stops: {self.stops[-8:]}")

    def focused(self, selector: str) -> bool:
        return bool(self.page.evaluate("(s) => document.activeElement.matches(s)", selector))


def _sign_in_by_keyboard(page: Any, email: str) -> None:
    page.goto("/login")
    keys = Keyboard(page)
    keys.tab_to("input[type=email]")
    page.keyboard.type(email)
    keys.tab_to("input[type=password]")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/$"))


def _case_for_the_keyboard(world: World, riverside: Practice) -> tuple[str, str, dict[str, str]]:
    """A case naming teeth 19 then 30, whose images came in as 30, a photo of 19, then the periapical of 19."""
    endo = world.reader_practice("Coastal Endodontics")
    reader = world.reader(endo, role=None, last_name="Okafor")
    email = _login(world, endo, "dr.okafor@coastal.example.com", "specialist", reader.provider_id)
    referral_id = new_referral(riverside, teeth=["19", "30"], consent=CONSENT, target_provider_id=reader.provider_id)
    ids = {}
    for name, data, fields in (
            ("30", samples.dicom_bytes(teeth=()), {"teeth": "30"}),
            ("photo", samples.jpeg_bytes(), {"teeth": "19", "kind": "photo_intraoral", "filename": "cheek.jpg"}),
            ("19", samples.dicom_bytes(teeth=()), {"teeth": "19"})):
        sent = upload(riverside.staff, riverside, referral_id, data, **fields)
        assert sent.status_code == 201, sent.get_json()
        ids[name] = sent.get_json()["id"]
    assert submit(riverside, referral_id).get_json()["assigned_provider_id"] == reader.provider_id
    return referral_id, email, ids


def test_a_reader_reads_and_signs_a_case_with_the_keyboard_only(browser_users, world: World, riverside: Practice):
    referral_id, email, ids = _case_for_the_keyboard(world, riverside)
    person = browser_users("reader-keyboard", viewport=DESKTOP, timezone_id=ZONE)
    page = person.page
    _sign_in_by_keyboard(page, email)
    keys = Keyboard(page)

    # The inbox: reach the case by Tab and open it with Enter.
    expect(page.get_by_test_id("inbox")).to_be_visible()
    keys.tab_to(f'a[href="/referrals/{referral_id}"]')
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/referrals/{referral_id}$"))
    keys.tab_to("button[data-api-action]")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Accept case"
    page.keyboard.press("Enter")
    desk = page.get_by_test_id("reader-desk")
    expect(desk).to_be_visible()

    # The viewer opens on the periapical of tooth 19, the first tooth named.
    pane = page.locator('.viewer-pane[data-pane="1"]')
    expect(pane).to_have_attribute("data-image-id", ids["19"])
    expect(page.get_by_test_id("viewer-shortcuts")).to_contain_text("Next image")
    # The viewer's shortcuts work from the page: next image, zoom, contrast; and back.
    page.keyboard.press("n")
    expect(pane).not_to_have_attribute("data-image-id", ids["19"])
    page.keyboard.press("p")
    expect(pane).to_have_attribute("data-image-id", ids["19"])
    page.keyboard.press("+")
    expect(pane).to_have_attribute("data-zoom", "1.25")
    page.keyboard.press("c")
    expect(pane).to_have_attribute("data-contrast", "110")
    page.keyboard.press("Shift+C")
    expect(pane).to_have_attribute("data-contrast", "100")
    # Tab reaches the image itself, where the arrow keys pan it.
    keys.tab_to('.viewer-pane[data-pane="1"]')
    page.keyboard.press("ArrowRight")
    expect(pane).not_to_have_attribute("data-pan-x", "0")

    # The findings sit beside the viewer: the image stays in sight while typing.
    viewer_box = page.locator("[data-viewer]").bounding_box()
    form_box = page.locator("[data-report-form]").bounding_box()
    assert viewer_box
    assert form_box
    assert form_box["x"] >= viewer_box["x"] + viewer_box["width"] - 1

    # Image 30's findings: moving into them shows image 30; "within normal limits" fills its fields.
    keys.tab_to(f'[data-finding][data-image-id="{ids["30"]}"] [data-wnl-fill]')
    expect(pane).to_have_attribute("data-image-id", ids["30"])
    page.keyboard.press("Enter")
    expect(page.locator(f'#f-{ids["30"]}-roots')).to_have_value("Within normal limits")
    # The photo asks only for what a photo shows.
    photo_fields = page.locator(f'[data-finding][data-image-id="{ids["photo"]}"] textarea')
    expect(photo_fields).to_have_count(2)
    keys.tab_to(f'#f-{ids["photo"]}-crown')
    expect(pane).to_have_attribute("data-image-id", ids["photo"])
    page.keyboard.type("Deep distal caries visible")
    # The viewer still answers while typing, with Alt.
    page.keyboard.press("Alt+PageDown")
    expect(pane).to_have_attribute("data-image-id", ids["19"])
    assert keys.focused(f'#f-{ids["photo"]}-crown'), "the shortcut leaves the focus in the field"
    keys.tab_to(f'#f-{ids["19"]}-periapical_area')
    expect(pane).to_have_attribute("data-image-id", ids["19"])
    page.keyboard.type("Radiolucency about 4 mm at the mesial root")

    # A phrase of the reader's own, added and used by keyboard.
    keys.tab_to("[data-phrase-new]")
    page.keyboard.type("Recommend root canal treatment.")
    page.keyboard.press("Enter")
    expect(page.locator("[data-phrase-insert]")).to_have_count(1)
    keys.tab_to("#recommendation", back=True)
    page.keyboard.type("For tooth 19:")
    page.keyboard.press("Alt+p")
    assert keys.focused("[data-phrase-insert]")
    page.keyboard.press("Enter")
    expect(page.locator("#recommendation")).to_have_value("For tooth 19: Recommend root canal treatment.")
    assert keys.focused("#recommendation"), "after a phrase the reader types on in the same field"
    keys.tab_to("#impression", back=True)
    page.keyboard.type("Symptomatic apical periodontitis, tooth 19")

    page.evaluate("window.scrollTo(0, document.querySelector('[data-report-form]').offsetTop)")
    page.screenshot(path=str(person.screenshot("desktop-reader-desk")))
    # Sign: Tab to the button, Enter (the confirmation is accepted from the keyboard, no click anywhere).
    keys.tab_to("[data-sign-report]")
    page.keyboard.press("Enter")
    report = page.get_by_test_id("signed-report")
    expect(report).to_be_visible(timeout=20000)
    expect(report).to_contain_text("Symptomatic apical periodontitis, tooth 19")
    expect(report).to_contain_text("Recommend root canal treatment.")
    expect(report).to_contain_text("Deep distal caries visible")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert len(keys.stops) > 20
    person.screenshot("desktop-reader-keyboard-signed")
    assert person.problems == [], person.problems


def test_on_a_tablet_the_desk_stacks_without_sideways_scrolling(browser_users, world: World, riverside: Practice):
    referral_id, email, _ids = _case_for_the_keyboard(world, riverside)
    person = browser_users("reader-tablet-desk", viewport=TABLET, touch=True, timezone_id=ZONE)
    person.sign_in(email, PASSWORD)
    page = person.page
    page.goto(f"/referrals/{referral_id}")
    page.get_by_role("button", name="Accept case").tap()
    expect(page.get_by_test_id("reader-desk")).to_be_visible()
    viewer_box = page.locator("[data-viewer]").bounding_box()
    form_box = page.locator("[data-report-form]").bounding_box()
    assert viewer_box
    assert form_box
    assert form_box["y"] >= viewer_box["y"] + viewer_box["height"] - 1, "stacked"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    person.screenshot("tablet-reader-desk")
    assert person.problems == [], person.problems


def test_an_org_admin_sees_the_turnaround_chart_and_tables(browser_users, world: World, riverside: Practice):
    reader = world.reader(world.reader_practice("Coastal Endodontics"), last_name="Okafor")
    signed_case(world, riverside, reader)
    email = _login(world, riverside.id, "admin@riverside.example.com", "org_admin", None)
    person = browser_users("org-admin-turnaround", viewport=DESKTOP, timezone_id=ZONE)
    person.sign_in(email, PASSWORD)
    page = person.page
    page.get_by_role("link", name="Turnaround").click()
    page.wait_for_url(re.compile(r"/reports/turnaround"))
    chart = page.get_by_test_id("turnaround-chart")
    expect(chart).to_be_visible()
    expect(chart.locator("rect")).to_have_count(2)
    expect(chart).to_contain_text("Okafor")
    expect(page.get_by_test_id("by-reader")).to_contain_text("Okafor")
    expect(page.get_by_test_id("by-practice")).to_contain_text("Riverside Family Dental")
    expect(page.get_by_test_id("totals")).to_contain_text("Sent")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    person.screenshot("desktop-org-admin-turnaround")
    assert person.problems == [], person.problems
