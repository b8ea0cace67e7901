"""The whole referral in a real browser: a hygienist sends it, an endodontist reads and signs it, and
the reading practice's billing clerk downloads the 837D."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from referral.billing.x12_validator import validate_837d
from tests.browser.conftest import evaluate_settled
from tests.support import samples
from tests.support.api import new_referral, ready_referral, submit, upload
from tests.support.world import Practice, World

pytestmark = pytest.mark.slow
PASSWORD = "long enough browser password"


def _user(world: World, organization_id: str, email: str, role: str, provider_id: str | None = None) -> str:
    body: dict[str, Any] = {"email": email, "role": role, "password": PASSWORD}
    if provider_id:
        body["provider_id"] = provider_id
    created = world.admin.post(f"/api/v1/organizations/{organization_id}/users", body)
    assert created.status_code == 201, created.get_json()
    return email


@pytest.fixture
def people(world: World, riverside: Practice) -> dict[str, str]:
    endo_org = world.reader_practice(
        "Coastal Endodontics", phone="916-555-0100",
        address={"line1": "200 Capitol Mall", "city": "Sacramento", "state": "CA", "zip": "95814-2001"})
    endodontist = world.reader(endo_org, role=None, last_name="Okafor")
    return {
        "hygienist": _user(world, riverside.id, "sam.lee@riverside.example.com", "staff",
                           riverside.hygienist_provider_id),
        "endodontist": _user(world, endo_org, "dr.okafor@coastal.example.com", "specialist",
                             endodontist.provider_id),
        "billing": _user(world, endo_org, "claims@coastal.example.com", "billing"),
    }


def _files(tmp_path: Path) -> list[Path]:
    radiograph = tmp_path / "pa-19.dcm"
    # Large enough that the browser reports upload progress before the end.
    radiograph.write_bytes(samples.dicom_bytes(teeth=(), rows=1024, columns=1024))
    photo = tmp_path / "buccal-19.jpg"
    photo.write_bytes(samples.jpeg_bytes(320, 240))
    return [radiograph, photo]


def test_a_referral_from_capture_to_signed_report_to_837d(browser_users, people, tmp_path: Path):
    # -- the hygienist creates the referral, uploads two files and sends it -------------------------
    hygienist = browser_users("hygienist")
    hygienist.sign_in(people["hygienist"], PASSWORD)
    page = hygienist.page
    expect(page.get_by_role("heading", name="Your practice's referrals")).to_be_visible()
    hygienist.screenshot("office-referrals")

    page.get_by_role("link", name="New referral").first.click()
    page.get_by_label("Find a patient").fill("Do")
    page.get_by_role("button", name=re.compile(r"Doe, Jane")).click()
    expect(page.locator("[data-patient-chosen]")).to_contain_text("Doe, Jane")
    page.get_by_label("Specialty needed").select_option("endodontics")
    page.get_by_label("Urgency").select_option("urgent")
    page.get_by_label("Reason for referral").fill("Lingering pain to cold on the lower left first molar")
    page.get_by_role("button", name="Tooth 19", exact=True).click()
    expect(page.locator("[data-tooth-summary]")).to_have_text("19")
    page.get_by_label("Consent has been given").check()
    page.get_by_label("When").fill("2026-01-05T09:00")
    hygienist.screenshot("office-new-referral")
    page.get_by_role("button", name="Create referral").click()
    page.wait_for_url(re.compile(r"/referrals/[0-9a-f-]{36}$"))
    referral_id = page.url.rsplit("/", 1)[1]

    page.evaluate("""() => {
        window.progressSeen = [];
        new MutationObserver(() => document.querySelectorAll('[data-state]').forEach(
            el => window.progressSeen.push(el.textContent))).observe(document.body,
            {subtree: true, childList: true, characterData: true});
    }""")
    page.get_by_label("Choose radiographs and photos").set_input_files([str(p) for p in _files(tmp_path)])
    rows = page.locator("[data-upload-row]")
    expect(rows).to_have_count(2)
    rows.nth(0).get_by_label("Kind").select_option("periapical")
    rows.nth(1).get_by_label("Kind").select_option("photo_intraoral")
    page.get_by_role("button", name="Upload all").click()
    expect(page.locator('[data-upload-row][data-state="done"]')).to_have_count(2, timeout=30_000)
    for index in range(2):
        expect(rows.nth(index).locator("[data-progress]")).to_have_attribute("value", "100")
    seen = page.evaluate("window.progressSeen")
    assert any(re.fullmatch(r"Uploading \d+%", text) for text in seen), seen
    expect(page.locator("[data-uploaded-list] img")).to_have_count(2)
    hygienist.screenshot("office-uploaded")

    page.get_by_role("button", name="Send to a reader").click()
    expect(page.locator(".page-head .status")).to_have_text("routed")
    expect(page.get_by_test_id("timeline")).to_contain_text("routed")

    # -- the endodontist reads it -------------------------------------------------------------------
    reader = browser_users("endodontist")
    reader.sign_in(people["endodontist"], PASSWORD)
    rpage = reader.page
    inbox = rpage.get_by_test_id("inbox")
    expect(inbox).to_contain_text("Doe, Jane")
    reader.screenshot("reader-inbox")
    inbox.get_by_role("link", name="Doe, Jane").click()
    rpage.wait_for_url(f"**/referrals/{referral_id}")
    rpage.get_by_role("button", name="Accept case").click()
    expect(rpage.locator(".page-head .status")).to_have_text("accepted")

    viewer = rpage.locator("[data-viewer]")
    expect(viewer).to_be_visible()
    pane = viewer.locator(".viewer-pane").first
    expect(pane.locator("img")).to_have_js_property("complete", True)
    zoom_before = float(pane.get_attribute("data-zoom") or "0")
    viewer.get_by_role("button", name=re.compile("Zoom in", re.I)).click()
    assert float(pane.get_attribute("data-zoom") or "0") > zoom_before
    viewer.get_by_label(re.compile("Invert", re.I)).check()
    expect(pane).to_have_attribute("data-invert", "true")
    viewer.get_by_label(re.compile("Side by side", re.I)).check()
    expect(viewer.locator(".viewer-pane:visible")).to_have_count(2)
    reader.screenshot("reader-viewer")

    findings = rpage.locator("[data-finding]")
    expect(findings).to_have_count(2)
    # The two files were uploaded together, so either may come first; a photo asks only for what a photo shows.
    radiograph = rpage.locator('[data-finding][data-kind="periapical"]')
    photo = rpage.locator('[data-finding][data-kind="photo_intraoral"]')
    radiograph.get_by_label("Periapical area").fill("Periapical radiolucency at the mesial root apex")
    radiograph.get_by_label("Roots and canals").fill("Two roots; canals not treated")
    photo.get_by_label("Crown").fill("Deep distal caries visible clinically")
    expect(photo.get_by_label("Roots and canals")).to_have_count(0)
    rpage.get_by_label("Impression").fill("Symptomatic apical periodontitis, tooth 19")
    rpage.get_by_label("Recommendation").fill("Root canal treatment of tooth 19")
    rpage.get_by_role("button", name="Save draft").click()
    expect(rpage.locator("[data-report-status]")).to_contain_text("Draft saved")
    rpage.get_by_role("button", name="Sign report").click()
    expect(rpage.get_by_test_id("signed-report")).to_contain_text("Root canal treatment of tooth 19")
    expect(rpage.locator(".page-head .status")).to_have_text("reported")
    reader.screenshot("reader-signed-report")

    # -- the office sees the report come back -------------------------------------------------------------
    page.reload()
    expect(page.get_by_test_id("signed-report")).to_contain_text("Symptomatic apical periodontitis")
    expect(page.get_by_test_id("timeline")).to_contain_text("accepted")
    hygienist.screenshot("office-returned-report")

    # -- the reading practice's billing clerk downloads the 837D ---------------------------------------------
    clerk = browser_users("billing")
    clerk.sign_in(people["billing"], PASSWORD)
    bpage = clerk.page
    claims = bpage.get_by_test_id("claim-list")
    expect(claims).to_contain_text("D0391")
    clerk.screenshot("billing-claims")
    claims.get_by_role("link", name="Doe, Jane").click()
    lines = bpage.get_by_test_id("claim-lines")
    expect(lines).to_contain_text("D0391")
    expect(lines).to_contain_text("D9996")
    clerk.screenshot("billing-claim")
    with bpage.expect_download() as download_info:
        bpage.get_by_role("button", name="837D file").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".x12")
    text = Path(download.path()).read_text()
    assert text.startswith("ISA*")
    assert "*D0391*" in text.replace(":", "*")
    assert validate_837d(text) == []

    for person in (hygienist, reader, clerk):
        assert person.problems == [], (person.name, person.problems)


def test_a_refused_file_shows_the_api_message_and_is_retried_alone(browser_users, people, world: World,
                                                                   riverside: Practice, tmp_path: Path):
    referral_id = new_referral(riverside)
    hygienist = browser_users("hygienist")
    hygienist.sign_in(people["hygienist"], PASSWORD)
    page = hygienist.page
    page.goto(f"/referrals/{referral_id}")
    page.get_by_label("Choose radiographs and photos").set_input_files([str(p) for p in _files(tmp_path)])
    rows = page.locator("[data-upload-row]")
    rows.nth(0).get_by_label("Kind").select_option("periapical")
    rows.nth(0).get_by_label("Teeth (e.g. 19, 20)").fill("19, 99")
    rows.nth(1).get_by_label("Kind").select_option("photo_intraoral")
    page.get_by_role("button", name="Upload all").click()

    expect(rows.nth(1)).to_have_attribute("data-state", "done", timeout=30_000)
    expect(rows.nth(0)).to_have_attribute("data-state", "failed")
    refused = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes(teeth=()), teeth="19, 99")
    assert refused.status_code == 422
    api_message = refused.get_json()["errors"]["form"]["teeth"][0]
    errors = rows.nth(0).locator("[data-row-errors]")
    expect(errors).to_be_visible()
    expect(errors).to_contain_text(api_message)
    hygienist.screenshot("office-upload-refused")

    rows.nth(0).get_by_label("Teeth (e.g. 19, 20)").fill("19")
    rows.nth(0).get_by_role("button", name="Retry this file").click()
    expect(rows.nth(0)).to_have_attribute("data-state", "done", timeout=30_000)
    images = riverside.staff.get(f"/api/v1/referrals/{referral_id}/images").get_json()
    items = images["items"] if isinstance(images, dict) else images
    assert sorted(i["kind"] for i in items) == ["periapical", "photo_intraoral"], "the good file went up once"
    failed = [p for p in hygienist.problems if not p.startswith(("422 POST", "console: Failed to load resource"))]
    assert failed == []


def test_a_retake_is_asked_for_uploaded_against_the_image_and_sent_back(browser_users, people, world: World,
                                                                        riverside: Practice, tmp_path: Path):
    referral_id = ready_referral(riverside)
    assert submit(riverside, referral_id).status_code == 200
    reader = browser_users("endodontist")
    reader.sign_in(people["endodontist"], PASSWORD)
    rpage = reader.page
    rpage.goto(f"/referrals/{referral_id}")
    rpage.get_by_role("button", name="Accept case").click()
    expect(rpage.locator(".page-head .status")).to_have_text("accepted")
    retake = rpage.get_by_role("region", name="Request a retake")
    retake.get_by_role("checkbox").first.check()
    retake.get_by_label("What is wrong").fill("Apex of the mesial root cut off")
    retake.get_by_role("button", name="Request retake").click()
    expect(rpage.locator(".page-head .status")).to_have_text("retake requested")

    hygienist = browser_users("hygienist")
    hygienist.sign_in(people["hygienist"], PASSWORD)
    page = hygienist.page
    page.goto(f"/referrals/{referral_id}")
    expect(page.get_by_test_id("timeline")).to_contain_text("Apex of the mesial root cut off")
    radiograph = tmp_path / "pa-19-retake.dcm"
    radiograph.write_bytes(samples.dicom_bytes(teeth=(), rows=128, columns=128, pixel_fill=900))
    page.get_by_label("Choose radiographs and photos").set_input_files(str(radiograph))
    row = page.locator("[data-upload-row]")
    row.get_by_label("Retake of").select_option(index=1)
    row.get_by_label("Why retaken").fill("apex cut off")
    page.get_by_role("button", name="Upload all").click()
    expect(row).to_have_attribute("data-state", "done", timeout=30_000)
    hygienist.screenshot("office-retake")
    page.get_by_role("button", name="Send the retakes").click()
    # The retake goes back to the reader who asked for it, still accepted by them.
    expect(page.locator(".page-head .status")).to_have_text("accepted")

    rpage.reload()
    expect(rpage.locator("[data-finding]")).to_have_count(2)
    expect(rpage.locator(".viewer-thumb")).to_have_count(2)
    images = riverside.staff.get(f"/api/v1/referrals/{referral_id}").get_json()["images"]
    assert len(images) == 2
    assert [i["retake_of"] is not None for i in images] == [False, True]
    for person in (reader, hygienist):
        assert person.problems == [], (person.name, person.problems)


TABLET = {"width": 768, "height": 1024}


def _fits_the_width(page: Any) -> bool:
    return bool(evaluate_settled(page, "document.documentElement.scrollWidth <= window.innerWidth"))


def test_the_main_pages_fit_a_tablet_held_upright(browser_users, people, riverside: Practice):
    hygienist = browser_users("hygienist-tablet", viewport=TABLET, touch=True)
    hygienist.sign_in(people["hygienist"], PASSWORD)
    for path, name in (("/", "tablet-office-referrals"), ("/referrals/new", "tablet-office-new-referral")):
        hygienist.page.goto(path)
        assert _fits_the_width(hygienist.page), f"{path} scrolls sideways on a tablet"
        hygienist.screenshot(name)
    page = hygienist.page
    page.get_by_role("button", name="Tooth 30", exact=True).tap()
    expect(page.locator("[data-tooth-summary]")).to_have_text("30")
    expect(page.get_by_label("Given by")).to_be_hidden()
    page.get_by_label("Consent has been given").tap()
    expect(page.get_by_label("Given by")).to_be_visible()

    referral_id = ready_referral(riverside)
    assert submit(riverside, referral_id).status_code == 200
    reader = browser_users("endodontist-tablet", viewport=TABLET, touch=True)
    reader.sign_in(people["endodontist"], PASSWORD)
    reader.page.goto(f"/referrals/{referral_id}")
    reader.page.get_by_role("button", name="Accept case").tap()
    expect(reader.page.locator("[data-viewer]")).to_be_visible()
    assert _fits_the_width(reader.page), "the case page with the viewer scrolls sideways on a tablet"
    reader.screenshot("tablet-reader-case")
    for person in (hygienist, reader):
        assert person.problems == [], (person.name, person.problems)
