"""Capturing on a bad connection: files chosen while offline wait in the browser (IndexedDB), survive a reload
while still offline (the service worker serves the kept page), and arrive exactly once when the connection
returns; an upload whose answer is lost is sent again with the same Idempotency-Key and stored once; the case
cannot be sent while files wait."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect

from tests.support import samples
from tests.support.api import new_referral
from tests.support.web import PASSWORD, user_with_password
from tests.support.world import Practice, World

pytestmark = pytest.mark.slow
ZONE = "America/Los_Angeles"
QUEUE_COUNT = """() => new Promise((resolve, reject) => {
    const open = indexedDB.open("referral-capture");
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
        const db = open.result;
        if (!db.objectStoreNames.contains("queue")) { db.close(); resolve(0); return; }
        const count = db.transaction("queue").objectStore("queue").count();
        count.onsuccess = () => { db.close(); resolve(count.result); };
    };
})"""


@pytest.fixture
def hygienist(world: World, riverside: Practice) -> str:
    world.reader(world.reader_practice("Coastal Endodontics"))
    email = "sam.lee@riverside.example.com"
    user_with_password(world, riverside, "staff", email)
    return email


def _photos(tmp_path: Path, count: int) -> list[str]:
    paths = []
    for n in range(count):
        path = tmp_path / f"photo-{n}.jpg"
        path.write_bytes(samples.jpeg_bytes(320 + 16 * n, 240))
        paths.append(str(path))
    return paths


def _images(practice: Practice, referral_id: str) -> list[dict[str, Any]]:
    response = practice.staff.get(f"/api/v1/referrals/{referral_id}/images")
    assert response.status_code == 200
    return list(response.get_json()["items"])


def _real_problems(problems: list[str]) -> list[str]:
    # A request that fails because the network is cut (or cut by the test) is logged by the browser; that is
    # the condition under test, not a fault of the page.
    return [p for p in problems if "net::ERR_" not in p and "Failed to fetch" not in p]


def _open_case(user: Any, referral_id: str) -> Any:
    page = user.page
    page.goto(f"/referrals/{referral_id}")
    # The service worker is in control and this page is kept for offline use.
    expect(page.locator('[data-capture-queue][data-offline-ready="true"]')).to_have_count(1, timeout=30_000)
    return page


def test_files_chosen_offline_survive_a_reload_and_arrive_exactly_once(
        app: Flask, browser_users: Any, riverside: Practice, hygienist: str, tmp_path: Path):
    referral_id = new_referral(riverside, teeth=["19"])
    # What reaches the server: the offline reload must be served by the browser alone.
    real = app.wsgi_app
    reached: list[str] = []

    def record(environ: dict[str, Any], start_response: Any) -> Any:
        reached.append(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}")
        return real(environ, start_response)

    app.wsgi_app = record  # type: ignore[method-assign]
    user = browser_users("hygienist", timezone_id=ZONE)
    user.sign_in(hygienist, PASSWORD)
    page = _open_case(user, referral_id)
    send = page.get_by_role("button", name="Send to a reader")
    expect(send).to_be_enabled()

    # -- the network is cut: three photos are chosen and "uploaded" -----------------------------------------
    user.context.set_offline(True)
    page.get_by_label("Choose radiographs and photos").set_input_files(_photos(tmp_path, 3))
    rows = page.locator("[data-upload-row]")
    expect(rows).to_have_count(3)
    expect(page.locator("[data-queue-status]")).to_contain_text("3 files are chosen but not uploaded yet")
    expect(send).to_be_disabled()
    page.get_by_role("button", name="Upload all").click()
    expect(page.locator('[data-upload-row][data-state="waiting"]')).to_have_count(3)
    status = page.locator("[data-queue-status]")
    expect(status).to_contain_text("Waiting to upload: 3")
    expect(status).to_contain_text("no connection")
    expect(status).to_have_attribute("data-waiting", "3")
    expect(send).to_be_disabled()
    expect(page.locator("[data-send-wait]")).to_contain_text("3 files are not uploaded yet")
    assert page.evaluate(QUEUE_COUNT) == 3

    # -- reloaded while still offline: the kept page opens and shows the same three waiting files ---------------
    reached.clear()
    reloaded = page.reload()
    assert reloaded is not None
    assert reloaded.from_service_worker
    expect(page.locator("h1")).to_contain_text("Doe")
    rows = page.locator("[data-upload-row]")
    expect(rows).to_have_count(3)
    expect(page.locator('[data-upload-row][data-state="waiting"]')).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("photo-0.jpg")
    expect(page.locator("[data-queue-status]")).to_contain_text("Waiting to upload: 3")
    expect(page.get_by_role("button", name="Send to a reader")).to_be_disabled()
    assert page.evaluate(QUEUE_COUNT) == 3
    assert reached == []
    app.wsgi_app = real  # type: ignore[method-assign]
    assert _images(riverside, referral_id) == []

    # -- back online: each file arrives once, on its own -----------------------------------------------------
    user.context.set_offline(False)
    expect(page.locator('[data-upload-row][data-state="done"]')).to_have_count(3, timeout=30_000)
    expect(page.get_by_role("button", name="Send to a reader")).to_be_enabled()
    expect(page.locator("[data-send-wait]")).to_be_hidden()
    expect(page.locator("[data-uploaded-list] > li")).to_have_count(3)
    images = _images(riverside, referral_id)
    assert len(images) == 3
    assert sorted(i["kind"] for i in images) == ["photo_intraoral"] * 3
    assert len({i["sha256"] for i in images}) == 3
    assert page.evaluate(QUEUE_COUNT) == 0

    # A later reload sends nothing again.
    page.reload()
    expect(page.locator("[data-uploaded-list] > li")).to_have_count(3)
    expect(page.locator("[data-upload-row]")).to_have_count(0)
    assert len(_images(riverside, referral_id)) == 3
    assert _real_problems(user.problems) == []


def test_a_closed_tab_keeps_its_queue_and_sends_it_when_the_case_is_opened_again(
        browser_users: Any, riverside: Practice, hygienist: str, tmp_path: Path):
    referral_id = new_referral(riverside, teeth=["19"])
    user = browser_users("hygienist", timezone_id=ZONE)
    user.sign_in(hygienist, PASSWORD)
    page = _open_case(user, referral_id)
    user.context.set_offline(True)
    page.get_by_label("Choose radiographs and photos").set_input_files(_photos(tmp_path, 2))
    page.get_by_role("button", name="Upload all").click()
    expect(page.locator('[data-upload-row][data-state="waiting"]')).to_have_count(2)
    page.close()

    user.context.set_offline(False)
    page = user.context.new_page()
    page.goto(f"/referrals/{referral_id}")
    expect(page.locator('[data-upload-row][data-state="done"]')).to_have_count(2, timeout=30_000)
    assert len(_images(riverside, referral_id)) == 2
    assert page.evaluate(QUEUE_COUNT) == 0


def test_an_upload_cut_off_on_its_way_is_retried_with_its_key_and_stored_once(
        browser_users: Any, riverside: Practice, hygienist: str, tmp_path: Path):
    referral_id = new_referral(riverside, teeth=["19"])
    user = browser_users("hygienist", timezone_id=ZONE)
    user.sign_in(hygienist, PASSWORD)
    page = _open_case(user, referral_id)

    keys: list[str | None] = []

    def break_the_first_upload(route: Any) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        keys.append(route.request.headers.get("idempotency-key"))
        if len(keys) == 1:
            route.abort("connectionreset")  # the connection breaks before the server has the file
        else:
            route.continue_()

    page.route(re.compile(rf"/api/v1/referrals/{referral_id}/images$"), break_the_first_upload)
    page.get_by_label("Choose radiographs and photos").set_input_files(_photos(tmp_path, 1))
    page.get_by_role("button", name="Upload all").click()
    row = page.locator("[data-upload-row]")
    expect(row).to_have_attribute("data-state", "done", timeout=30_000)
    assert len(keys) == 2
    assert keys[0]
    assert keys[1] == keys[0]
    assert len(_images(riverside, referral_id)) == 1
    expect(page.locator("[data-uploaded-list] > li")).to_have_count(1)
    expect(page.get_by_role("button", name="Send to a reader")).to_be_enabled()
    assert page.evaluate(QUEUE_COUNT) == 0
    assert _real_problems(user.problems) == []


def test_an_upload_whose_answer_is_lost_is_sent_again_and_stored_once(
        app: Flask, browser_users: Any, riverside: Practice, hygienist: str, tmp_path: Path):
    """The worst case for duplicates: the server stored the image but the connection broke before its answer
    arrived. The page sends the file again with the same key and gets the first answer back."""
    referral_id = new_referral(riverside, teeth=["19"])
    user = browser_users("hygienist", timezone_id=ZONE)
    user.sign_in(hygienist, PASSWORD)
    page = _open_case(user, referral_id)

    real = app.wsgi_app
    keys: list[str | None] = []
    replayed: list[str | None] = []

    def lose_the_first_answer(environ: dict[str, Any], start_response: Any) -> Any:
        if environ["REQUEST_METHOD"] != "POST" or not environ["PATH_INFO"].endswith(f"{referral_id}/images"):
            return real(environ, start_response)
        keys.append(environ.get("HTTP_IDEMPOTENCY_KEY"))
        answer: dict[str, Any] = {}

        def keep(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            answer.update(status=status, headers=headers)

        body = b"".join(real(environ, keep))
        if len(keys) > 1:
            replayed.append(dict(answer["headers"]).get("Idempotent-Replayed"))
            start_response(answer["status"], answer["headers"])
            return [body]
        assert answer["status"].startswith("201"), body
        start_response(answer["status"], answer["headers"])

        def cut_off() -> Iterator[bytes]:
            yield body[:1]  # the headers and one byte go out, then the connection drops
            raise ConnectionResetError("the connection broke (test)")
        return cut_off()

    app.wsgi_app = lose_the_first_answer  # type: ignore[method-assign]
    try:
        page.get_by_label("Choose radiographs and photos").set_input_files(_photos(tmp_path, 1))
        page.get_by_role("button", name="Upload all").click()
        row = page.locator("[data-upload-row]")
        expect(row).to_have_attribute("data-state", "done", timeout=30_000)
    finally:
        app.wsgi_app = real  # type: ignore[method-assign]
    assert len(keys) >= 2
    assert keys[0]
    assert all(key == keys[0] for key in keys)
    assert replayed[-1] == "true"
    assert len(_images(riverside, referral_id)) == 1
    expect(page.locator("[data-uploaded-list] > li")).to_have_count(1)
    assert page.evaluate(QUEUE_COUNT) == 0


def test_a_refused_file_stays_on_the_page_and_holds_the_send_button(
        browser_users: Any, riverside: Practice, hygienist: str, tmp_path: Path):
    referral_id = new_referral(riverside, teeth=["19"])
    user = browser_users("hygienist", timezone_id=ZONE)
    user.sign_in(hygienist, PASSWORD)
    page = _open_case(user, referral_id)
    bad = tmp_path / "notes.jpg"
    bad.write_bytes(b"this is not an image at all")
    page.get_by_label("Choose radiographs and photos").set_input_files([str(bad)])
    page.get_by_role("button", name="Upload all").click()
    row = page.locator("[data-upload-row]")
    expect(row).to_have_attribute("data-state", "failed", timeout=30_000)
    expect(row.locator("[data-row-errors]")).to_be_visible()
    expect(page.locator("[data-queue-status]")).to_contain_text("refused")
    expect(page.get_by_role("button", name="Send to a reader")).to_be_disabled()
    # Kept across a reload, with the server's reason, until it is removed.
    page.reload()
    row = page.locator("[data-upload-row]")
    expect(row).to_have_attribute("data-state", "failed")
    expect(row.locator("[data-row-errors]")).to_be_visible()
    row.get_by_role("button", name="Remove").click()
    expect(page.locator("[data-upload-row]")).to_have_count(0)
    expect(page.get_by_role("button", name="Send to a reader")).to_be_enabled()
    assert page.evaluate(QUEUE_COUNT) == 0
    assert _images(riverside, referral_id) == []
