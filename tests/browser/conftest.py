"""A real server and Debian's Chromium, driven by Playwright, for end-to-end tests of the pages.

The app under test runs in a thread of this process on a free loopback port, on PostgreSQL and S3
(moto's server) like a deployment; the browser is the system ``chromium`` (never a downloaded one).
Screenshots of each main page are written under ``test-artifacts/screenshots`` (or SCREENSHOT_DIR).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.support.live import served

REQUIRE_BROWSER = os.environ.get("REQUIRE_BROWSER") == "1"
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR")
                   or Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]


@pytest.fixture(params=["postgres-s3"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server_url(app: Flask) -> Iterator[str]:
    with served(app, name="browser-test-server") as url:
        yield url


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    executable = shutil.which("chromium")
    if executable is None:
        message = "Debian's chromium is not installed (infra/system-deps.sh installs it)"
        if REQUIRE_BROWSER:
            pytest.fail(message + "; REQUIRE_BROWSER=1 makes this a failure", pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class BrowserUser:
    """One person's browser: its own context (cookies), a page, and every console error and CSP report."""

    def __init__(self, browser: Any, base_url: str, name: str, viewport: dict[str, int] | None = None,
                 touch: bool = False, timezone: str | None = None, timezone_id: str | None = None) -> None:
        self.name = name
        zone = timezone_id or timezone
        options: dict[str, Any] = {"timezone_id": zone} if zone else {}
        self.context = browser.new_context(base_url=base_url, accept_downloads=True, has_touch=touch,
                                           viewport=viewport or {"width": 1280, "height": 900}, **options)
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        self.page.on("dialog", lambda dialog: dialog.accept())
        self.page.on("response", self._response)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.problems.append(f"console: {message.text}")

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.problems.append(f"{response.status} {response.request.method} {response.url}")

    def sign_in(self, email: str, password: str) -> None:
        self.page.goto("/login")
        self.page.get_by_label("Email").fill(email)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(re.compile(r"/$"))

    def screenshot(self, name: str) -> Path | None:
        """A picture of the page for people to look at (never an assertion): the whole page, or the visible part
        when a busy machine cannot draw the whole of a long page in time; None when neither could be taken."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        for full_page in (True, False):
            try:
                self.page.screenshot(path=str(path), full_page=full_page, timeout=15_000)
                return path
            except PlaywrightTimeout:
                continue
        return None

    def close(self) -> None:
        self.context.close()


def evaluate_settled(page: Any, script: str, attempts: int = 3) -> Any:
    """``page.evaluate`` once the page has loaded, tried again if a navigation replaced the document meanwhile
    (a redirect finishing late on a busy machine); the last failure is raised with the page's address."""
    from playwright.sync_api import Error as PlaywrightError

    for attempt in range(attempts):
        page.wait_for_load_state("load")
        try:
            return page.evaluate(script)
        except PlaywrightError as exc:
            if "Execution context was destroyed" not in str(exc) or attempt == attempts - 1:
                raise AssertionError(f"could not evaluate on {page.url}: {exc}") from exc
    return None


@pytest.fixture
def browser_users(chromium: Any, server_url: str) -> Iterator[Any]:
    users: list[BrowserUser] = []

    def open_browser(name: str, **options: Any) -> BrowserUser:
        user = BrowserUser(chromium, server_url, name, **options)
        users.append(user)
        return user

    yield open_browser
    for user in users:
        user.close()
