"""The access notices page: an org admin sees who was given a role, a provider link or emergency access in their
practice, with a count in the page header until they mark them read; nobody else has the page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask.testing import FlaskClient

from referral.services import access
from tests.support.api import signed_case
from tests.support.web import PASSWORD, sign_in, user_with_password
from tests.support.world import Practice, World


def test_an_org_admin_reads_access_notices_and_the_header_counts_them(world: World, riverside: Practice) -> None:
    email = user_with_password(world, riverside, "org_admin", email="web-admin@riverside.example.com")
    browser = world.app.test_client()
    sign_in(browser, email)
    page = browser.get("/notices")
    assert page.status_code == 200
    assert 'data-testid="no-notices"' in page.get_data(as_text=True)

    changed = riverside.org_admin.patch(f"/api/v1/users/{riverside.users['staff']}",
                                        {"role": "billing", "provider_id": None})
    assert changed.status_code == 200, changed.get_json()

    html = browser.get("/notices").get_data(as_text=True)
    assert "Role or provider link changed" in html
    assert "staff@riverside-family-dental.example.com" in html
    assert "Role: staff → billing" in html
    assert 'data-testid="notice-count"' in html
    assert "1 new" in html


def test_only_org_admins_have_the_notices_page(world: World, riverside: Practice, client: FlaskClient) -> None:
    for role in ("staff", "billing"):
        browser = world.app.test_client()
        sign_in(browser, user_with_password(world, riverside, role))
        page = browser.get("/notices")
        assert page.status_code == 403
        assert "Access notices" not in browser.get("/").get_data(as_text=True)


def test_a_case_opened_in_an_emergency_shows_on_its_page_until_the_grant_ends(
        monkeypatch: pytest.MonkeyPatch, world: World, riverside: Practice) -> None:
    practice_e = world.reader_practice("Reader Practice E")
    reader = world.reader(practice_e, last_name="Assigned")
    covering = world.reader(practice_e, last_name="Covering", accepting=False, role=None)
    email = "covering@reader-e.example.com"
    made = world.admin.post(f"/api/v1/organizations/{practice_e}/users",
                            {"email": email, "role": "specialist", "provider_id": covering.provider_id,
                             "password": PASSWORD})
    assert made.status_code == 201, made.get_json()
    case = signed_case(world, riverside, reader, target_provider_id=reader.provider_id)
    browser = world.app.test_client()
    csrf = sign_in(browser, email)
    assert browser.get(f"/referrals/{case}").status_code == 404

    opened = browser.post(f"/api/v1/referrals/{case}/emergency-access",
                          json={"reason": "Covering for Dr Assigned today"}, headers={"X-CSRF-Token": csrf})
    assert opened.status_code == 201, opened.get_json()
    page = browser.get(f"/referrals/{case}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-testid="emergency-access"' in html
    assert "Send message" not in html
    assert "Accept case" not in html

    later = access.now() + timedelta(minutes=61)
    monkeypatch.setattr(access, "now", lambda: later)
    assert browser.get(f"/referrals/{case}").status_code == 404
