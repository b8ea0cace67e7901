"""Two-step sign-in through the Flask test client: enrolling on the page, and codes computed with pyotp."""

from __future__ import annotations

import html
import re
import time
from dataclasses import dataclass

import pyotp
from flask.testing import FlaskClient

from tests.support.web import form_token


@dataclass
class Enrolled:
    secret: str
    recovery_codes: list[str]
    enrolled_at: float  # the moment whose code confirmed the enrolment

    def code(self, steps_later: int = 1) -> str:
        """The authenticator's code ``steps_later`` 30-second steps after enrolling: the enrolment spent its own
        step's code, and the server accepts one step either side of its clock."""
        return pyotp.TOTP(self.secret).at(self.enrolled_at + 30 * steps_later)

    def wrong_code(self) -> str:
        """Six digits that match none of the codes the server could accept now."""
        now = time.time()
        valid = {pyotp.TOTP(self.secret).at(now + 30 * offset) for offset in range(-2, 3)}
        return next(c for c in ("000000", "111111", "222222", "333333", "444444", "555555") if c not in valid)


def secret_on(page: str) -> str:
    match = re.search(r'data-testid="mfa-secret">([A-Z2-7]+)<', page)
    assert match, page
    return match.group(1)


def recovery_codes_on(page: str) -> list[str]:
    section = page.split('data-testid="recovery-codes"', 1)[1].split("</ul>", 1)[0]
    return [html.unescape(c) for c in re.findall(r"<code>([^<]+)</code>", section)]


def enrol(client: FlaskClient) -> Enrolled:
    """Open the two-step page as the signed-in (or sent-to-enrol) user, type the app's code, keep the codes."""
    page = client.get("/settings/mfa")
    assert page.status_code == 200, page.get_data(as_text=True)
    text = page.get_data(as_text=True)
    secret = secret_on(text)
    now = time.time()
    confirmed = client.post("/settings/mfa", data={"csrf_token": form_token(text), "action": "confirm",
                                                   "code": pyotp.TOTP(secret).at(now)})
    assert confirmed.status_code == 200, confirmed.get_data(as_text=True)
    codes = recovery_codes_on(confirmed.get_data(as_text=True))
    assert len(codes) == 10
    return Enrolled(secret=secret, recovery_codes=codes, enrolled_at=now)


def send_code(client: FlaskClient, code: str, next_page: str | None = None) -> object:
    page = client.get("/login/code")
    assert page.status_code == 200, page.get_data(as_text=True)
    data = {"csrf_token": form_token(page.get_data(as_text=True)), "code": code}
    if next_page:
        data["next"] = next_page
    return client.post("/login/code", data=data)
