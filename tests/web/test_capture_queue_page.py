"""The pieces of the offline-tolerant capture page the server provides: the service worker at the site's root,
and the case page's hooks for the queue (camera input, queue status, the send button it holds)."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.support.api import new_referral
from tests.support.web import sign_in, user_with_password
from tests.support.world import Practice, World

CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def test_the_service_worker_is_served_from_the_root_without_a_session(client: FlaskClient):
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["Service-Worker-Allowed"] == "/"
    assert response.headers["Content-Security-Policy"] == CSP
    body = response.get_data(as_text=True)
    assert 'addEventListener("fetch"' in body
    assert "<script" not in body
    # Only GET is offered: there is nothing to post to it.
    assert client.post("/sw.js").status_code in (400, 405)


def test_the_case_page_loads_the_queue_and_offers_the_camera(client: FlaskClient, world: World,
                                                             riverside: Practice):
    referral_id = new_referral(riverside, teeth=["19"])
    sign_in(client, user_with_password(world, riverside))
    html = client.get(f"/referrals/{referral_id}").get_data(as_text=True)
    assert "/web/static/capture-queue.js" in html
    assert f'data-capture-queue data-url="/api/v1/referrals/{referral_id}/images"' in html
    assert 'accept="image/*" capture="environment"' in html
    assert "data-queue-status" in html
    assert "data-send-case" in html
    assert "<script>" not in html
    with client.get("/web/static/capture-queue.js") as script:
        assert script.status_code == 200
