"""A provider answers link requests in the pages: a dentist whose provider an org admin asked to give a new login
sees the request on their home page, in the header and on ``/link-requests`` (who asked, for which login and role,
when), and confirms or refuses it through the API with the session cookie and the page's CSRF token. Without the
token, for someone else's request, or for one already answered, nothing changes (docs/web.md, Link requests)."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from referral.models import AuditEvent, ProviderLinkRequest, User
from tests.support.web import sign_in, user_with_password
from tests.support.world import Practice, World

NEW_EMAIL = "second-login@riverside.example.com"
REQUESTER = "org_admin@riverside-family-dental.example.com"


def _ask(practice: Practice) -> dict[str, Any]:
    """The practice's org admin asks for a new dentist login of the practice's dentist provider."""
    response = practice.org_admin.post(f"/api/v1/organizations/{practice.id}/users",
                                       {"email": NEW_EMAIL, "role": "dentist",
                                        "provider_id": practice.dentist_provider_id,
                                        "request_link_confirmation": True})
    assert response.status_code == 202, response.get_json()
    return dict(response.get_json())


def _dentist_browser(world: World, practice: Practice) -> tuple[FlaskClient, str]:
    """A dentist login of the practice's dentist provider, signed in to the pages; with its CSRF token."""
    browser = world.app.test_client()
    csrf = sign_in(browser, user_with_password(world, practice, "dentist"))
    return browser, csrf


def _state(app: Flask, pending: dict[str, Any]) -> tuple[str, bool, str | None, int]:
    """The request's status, the new login's active flag and provider, and how many answers were audited."""
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        request_row = session.get(ProviderLinkRequest, uuid.UUID(pending["link_request_id"]))
        user = session.get(User, uuid.UUID(pending["id"]))
        assert request_row is not None
        assert user is not None
        answers = session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
            AuditEvent.action.in_(["provider_link.confirm", "provider_link.refuse"]))) or 0
        return (request_row.status, user.active, str(user.provider_id) if user.provider_id else None, int(answers))


def _answer(browser: FlaskClient, pending: dict[str, Any], verb: str, csrf: str | None) -> Any:
    headers = {"X-CSRF-Token": csrf} if csrf is not None else {}
    return browser.post(f"/api/v1/link-requests/{pending['link_request_id']}/{verb}", headers=headers)


def test_the_dentist_sees_the_waiting_request_on_home_in_the_header_and_on_its_page(
        world: World, riverside: Practice) -> None:
    browser, _ = _dentist_browser(world, riverside)
    home = browser.get("/").get_data(as_text=True)
    assert 'data-testid="link-requests-waiting"' not in home
    assert 'data-testid="link-request-count"' not in home
    assert 'data-testid="no-link-requests"' in browser.get("/link-requests").get_data(as_text=True)

    pending = _ask(riverside)
    home = browser.get("/").get_data(as_text=True)
    assert 'data-testid="link-requests-waiting"' in home
    assert "A request is waiting for your answer" in home
    assert 'data-testid="link-request-count"' in home
    assert "1 waiting" in home

    page = browser.get("/link-requests")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-testid="link-requests"' in html
    assert f'data-link-request="{pending["link_request_id"]}"' in html
    assert NEW_EMAIL in html
    assert REQUESTER in html
    assert '<span class="hint" data-role>as dentist</span>' in html
    assert f'data-url="/api/v1/link-requests/{pending["link_request_id"]}/confirm"' in html
    assert f'data-url="/api/v1/link-requests/{pending["link_request_id"]}/refuse"' in html
    assert f'data-next="/link-requests?answered={pending["link_request_id"]}"' in html
    assert 'data-testid="link-request-outcome"' not in html


def test_the_dentist_confirms_and_the_page_shows_the_new_login_linked(app: Flask, world: World,
                                                                      riverside: Practice) -> None:
    pending = _ask(riverside)
    browser, csrf = _dentist_browser(world, riverside)

    confirmed = _answer(browser, pending, "confirm", csrf)
    assert confirmed.status_code == 200, confirmed.get_json()
    assert confirmed.get_json()["status"] == "confirmed"
    assert _state(app, pending) == ("confirmed", True, riverside.dentist_provider_id, 1)

    html = browser.get(f"/link-requests?answered={pending['link_request_id']}").get_data(as_text=True)
    assert 'data-testid="link-request-outcome" data-status="confirmed"' in html
    assert "Confirmed by you" in html
    assert NEW_EMAIL in html
    assert 'data-testid="link-requests"' not in html
    assert 'data-testid="no-link-requests"' in html
    assert 'data-testid="link-request-count"' not in html
    assert 'data-testid="link-requests-waiting"' not in browser.get("/").get_data(as_text=True)

    # Answered once: a second answer, either way, is refused with the reason and changes nothing.
    for verb in ("confirm", "refuse"):
        again = _answer(browser, pending, verb, csrf)
        assert again.status_code == 409, again.get_json()
        assert again.get_json()["message"] == "This link request was already confirmed"
    assert _state(app, pending) == ("confirmed", True, riverside.dentist_provider_id, 1)


def test_the_dentist_refuses_and_the_new_login_stays_inactive_and_unlinked(app: Flask, world: World,
                                                                           riverside: Practice) -> None:
    pending = _ask(riverside)
    browser, csrf = _dentist_browser(world, riverside)

    refused = _answer(browser, pending, "refuse", csrf)
    assert refused.status_code == 200, refused.get_json()
    assert refused.get_json()["status"] == "refused"
    assert _state(app, pending) == ("refused", False, None, 1)

    html = browser.get(f"/link-requests?answered={pending['link_request_id']}").get_data(as_text=True)
    assert 'data-testid="link-request-outcome" data-status="refused"' in html
    assert "stays inactive and linked to no provider" in html
    assert 'data-testid="link-requests"' not in html

    late = _answer(browser, pending, "confirm", csrf)
    assert late.status_code == 409, late.get_json()
    assert late.get_json()["message"] == "This link request was already refused"
    assert _state(app, pending) == ("refused", False, None, 1)


def test_an_answer_without_the_pages_csrf_token_is_refused_and_changes_nothing(app: Flask, world: World,
                                                                              riverside: Practice) -> None:
    pending = _ask(riverside)
    browser, _ = _dentist_browser(world, riverside)

    for verb in ("confirm", "refuse"):
        for token in (None, "", "not-the-sessions-token"):
            response = _answer(browser, pending, verb, token)
            assert response.status_code == 403, response.get_json()
            assert "X-CSRF-Token" in response.get_json()["message"]
    assert _state(app, pending) == ("pending", False, None, 0)
    assert f'data-link-request="{pending["link_request_id"]}"' in browser.get("/link-requests").get_data(as_text=True)


def test_someone_elses_request_is_404_is_not_listed_and_changes_nothing(app: Flask, world: World,
                                                                        riverside: Practice,
                                                                        hillside: Practice) -> None:
    pending = _ask(riverside)
    others = [
        ("another practice's dentist", *_dentist_browser(world, hillside)),
    ]
    for role in ("staff", "org_admin"):
        browser = world.app.test_client()
        csrf = sign_in(browser, user_with_password(world, riverside, role))
        others.append((f"the practice's {role}", browser, csrf))

    for who, browser, csrf in others:
        page = browser.get(f"/link-requests?answered={pending['link_request_id']}")
        assert page.status_code == 200, who
        html = page.get_data(as_text=True)
        assert NEW_EMAIL not in html, who
        assert 'data-testid="link-request-outcome"' not in html, who
        assert 'data-testid="link-request-count"' not in html, who
        for verb in ("confirm", "refuse"):
            response = _answer(browser, pending, verb, csrf)
            assert response.status_code == 404, (who, response.get_json())
            assert response.get_json()["message"] == "Link request not found"
    assert _state(app, pending) == ("pending", False, None, 0)

    # The dentist's own page: a request id that does not exist is 404 too, and a bad ``answered`` is ignored.
    browser, csrf = _dentist_browser(world, riverside)
    missing = browser.post(f"/api/v1/link-requests/{uuid.uuid4()}/confirm", headers={"X-CSRF-Token": csrf})
    assert missing.status_code == 404, missing.get_json()
    assert browser.get("/link-requests?answered=not-an-id").status_code == 200
    assert _state(app, pending) == ("pending", False, None, 0)
