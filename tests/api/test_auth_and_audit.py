from __future__ import annotations

import json

from flask import Flask

from tests.support import samples
from tests.support.api import new_referral, upload
from tests.support.world import Practice, World


def test_a_call_without_a_token_is_401_with_a_bearer_challenge(world: World):
    response = world.anonymous.get("/api/v1/referrals")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json() == {"code": 401, "status": "Unauthorized",
                                   "message": "Send an API token as 'Authorization: Bearer <token>'"}


def test_a_wrong_or_malformed_token_is_401(world: World):
    for token in ("rfl_" + "A" * 43, "not-a-token", "rfl_"):
        assert world.as_token(token).get("/api/v1/referrals").status_code == 401
    assert world.client.get("/api/v1/referrals", headers={"Authorization": "Basic dXNlcjpwYXNz"}).status_code == 401


def test_create_admin_prints_an_id_and_a_working_token(app: Flask, world: World):
    result = app.test_cli_runner().invoke(args=["create-admin", "second.operator@example.com"])

    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert set(printed) == {"user_id", "token"}
    assert world.as_token(printed["token"]).get("/api/v1/organizations").status_code == 200


def test_create_admin_refuses_a_duplicate_or_a_non_email(app: Flask, world: World):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["create-admin", "operator@example.com"]).exit_code != 0
    assert runner.invoke(args=["create-admin", "nobody"]).exit_code != 0


def test_the_org_admin_sees_the_audit_trail_of_a_referral(riverside: Practice, hillside: Practice):
    referral_id = new_referral(riverside)
    image = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes()).get_json()
    riverside.dentist.get(f"/api/v1/referrals/{referral_id}")
    riverside.dentist.get(f"/api/v1/images/{image['id']}/content")
    hillside.staff.get(f"/api/v1/referrals/{referral_id}")

    events = riverside.org_admin.get(f"/api/v1/audit-events?referral_id={referral_id}").get_json()["items"]

    actions = [(e["action"], e["outcome"]) for e in reversed(events)]
    assert actions == [("referral.create", "success"), ("image.create", "success"),
                       ("referral.read", "success"), ("image.download", "success")]
    assert all(e["ip_address"] == "127.0.0.1" and e["at"] for e in events)
    # The other practice's refused attempt is in its own admins' trail, holding only what its user sent.
    denied = hillside.org_admin.get(f"/api/v1/audit-events?referral_id={referral_id}").get_json()["items"]
    assert [(e["action"], e["outcome"], e["object_id"]) for e in denied] == [
        ("referral.access", "denied", referral_id)]


def test_only_admins_read_the_audit_trail(riverside: Practice):
    for client in (riverside.staff, riverside.dentist, riverside.billing):
        assert client.get("/api/v1/audit-events").status_code == 403
    assert riverside.org_admin.get("/api/v1/audit-events?referral_id=nope").status_code == 422
