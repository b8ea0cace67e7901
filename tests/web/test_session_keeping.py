"""Sessions that do not lose work: use of a page renews the session (keep-alive), asking how long is left does
not, and after an idle logoff signing in again returns to the same page with a new CSRF token."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from referral.db import utcnow
from referral.models import WebSession
from tests.support.api import new_referral, ready_referral, submit
from tests.support.web import PASSWORD, form_token, sign_in, user_with_password
from tests.support.world import Practice, World


def _last_seen(app: Flask) -> object:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        return session.scalar(sa.select(WebSession.last_seen_at))


def _idle_for(app: Flask, minutes: float) -> None:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        session.execute(sa.update(WebSession).values(last_seen_at=utcnow() - timedelta(minutes=minutes)))
        session.commit()


def test_keep_alive_renews_the_session_and_needs_the_csrf_header(app: Flask, client: FlaskClient, world: World,
                                                                 riverside: Practice):
    token = sign_in(client, user_with_password(world, riverside))
    _idle_for(app, 10)

    refused = client.post("/session/keep-alive")
    renewed = client.post("/session/keep-alive", headers={"X-CSRF-Token": token})

    assert refused.status_code == 403
    assert renewed.status_code == 200
    assert renewed.get_json()["signed_in"] is True
    assert 14 * 60 <= renewed.get_json()["seconds_left"] <= 15 * 60


def test_asking_how_long_is_left_is_not_activity(app: Flask, client: FlaskClient, world: World,
                                                 riverside: Practice):
    sign_in(client, user_with_password(world, riverside))
    _idle_for(app, 10)
    before = _last_seen(app)

    status = client.get("/session/status")

    assert status.status_code == 200
    assert status.get_json()["signed_in"] is True
    assert 4 * 60 <= status.get_json()["seconds_left"] <= 5 * 60
    assert _last_seen(app) == before


def test_once_idle_the_status_says_so_and_keep_alive_answers_401(app: Flask, client: FlaskClient, world: World,
                                                                 riverside: Practice):
    token = sign_in(client, user_with_password(world, riverside))
    _idle_for(app, 16)

    assert client.get("/session/status").get_json() == {"signed_in": False, "seconds_left": 0, "ended": "idle"}
    ended = client.post("/session/keep-alive", headers={"X-CSRF-Token": token})
    assert ended.status_code == 401
    assert ended.get_json()["signed_in"] is False


def test_after_an_idle_logoff_signing_in_returns_to_the_same_page_with_a_new_token(
        app: Flask, client: FlaskClient, world: World, riverside: Practice):
    email = user_with_password(world, riverside)
    old_token = sign_in(client, email)
    referral_id = new_referral(riverside)
    _idle_for(app, 16)

    bounced = client.get(f"/referrals/{referral_id}")
    assert bounced.status_code == 303
    assert bounced.headers["Location"] == f"/login?ended=idle&next=%2Freferrals%2F{referral_id}"
    login_page = client.get(bounced.headers["Location"]).get_data(as_text=True)
    assert f'name="next" value="/referrals/{referral_id}"' in login_page
    assert "kept on this device" in login_page

    back = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": form_token(login_page),
                                       "next": f"/referrals/{referral_id}"})

    assert back.status_code == 303
    assert back.headers["Location"] == f"/referrals/{referral_id}"
    page = client.get(back.headers["Location"]).get_data(as_text=True)
    new_token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    assert new_token is not None
    assert new_token.group(1) != old_token


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "/login",
                                    "javascript:alert(1)", "/logout", "relative/page", "/%0d%0aSet-Cookie:x"])
def test_only_a_page_of_this_site_is_returned_to(client: FlaskClient, world: World, riverside: Practice,
                                                 target: str):
    email = user_with_password(world, riverside)
    token = form_token(client.get(f"/login?next={target}").get_data(as_text=True))
    response = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token,
                                           "next": target})
    assert response.status_code == 303
    assert response.headers["Location"] in ("/", "/%0d%0aSet-Cookie:x")
    assert "evil" not in response.headers["Location"]


def test_the_case_page_takes_times_in_the_practice_zone_and_offers_fixes_until_sent(
        client: FlaskClient, world: World, riverside: Practice):
    sign_in(client, user_with_password(world, riverside))
    referral_id = ready_referral(riverside)

    draft = client.get(f"/referrals/{referral_id}").get_data(as_text=True)
    assert "Taken at (America/Los_Angeles)" in draft
    assert "data-image-fix" in draft
    assert "Periapical radiograph · teeth 19" in draft
    assert "Change or remove" in draft
    # The default sample's operator is nobody of the practice: the page says so.
    assert 'data-capture-note="operator_differs"' in draft

    assert submit(riverside, referral_id).status_code == 200
    sent = client.get(f"/referrals/{referral_id}").get_data(as_text=True)
    assert "data-image-fix" not in sent


def test_the_session_meta_tags_tell_the_page_when_to_warn(client: FlaskClient, world: World, riverside: Practice):
    sign_in(client, user_with_password(world, riverside))
    page = client.get("/referrals/new").get_data(as_text=True)
    assert '<meta name="session-idle-seconds" content="900">' in page
    assert '<meta name="session-warning-seconds" content="120">' in page
    assert 'data-draft="new-referral"' in page
    assert "When (America/Los_Angeles)" in page
