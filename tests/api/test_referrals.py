from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import Flask

from referral.models import AuditEvent, Referral
from tests.support.api import new_referral
from tests.support.world import Practice, referral_body


def test_staff_open_a_draft_referral_with_a_response_deadline(riverside: Practice):
    body = referral_body(riverside, urgency="emergency", teeth=["19", "k", "030"],
                         consent={"given_by": "patient", "method": "verbal", "given_at": "2026-01-05T09:00:00Z"})

    response = riverside.staff.post("/api/v1/referrals", body)

    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert created["status"] == "draft"
    assert created["teeth"] == ["19", "K", "30"]
    assert created["scope"] == "evaluate_only"
    assert created["place_of_service"] == "11"
    assert created["consent"]["given_by"] == "patient"
    assert created["images"] == []
    assert created["report"] == {"status": "none"}

    created_at = datetime.fromisoformat(created["created_at"])
    assert datetime.fromisoformat(created["due_at"]) - created_at == timedelta(hours=4)


def test_a_referral_is_read_by_both_capturing_roles_and_every_read_is_audited(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)

    assert riverside.staff.get(f"/api/v1/referrals/{referral_id}").status_code == 200
    assert riverside.dentist.get(f"/api/v1/referrals/{referral_id}").status_code == 200

    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        reads = session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "referral.read",
                                        AuditEvent.referral_id == uuid.UUID(referral_id))
        ).all()
    assert len(reads) == 2
    assert {str(r.actor_user_id) for r in reads} == {riverside.users["staff"], riverside.users["dentist"]}


def test_referrals_are_listed_by_deadline_then_id_a_page_at_a_time(riverside: Practice):
    ids = [new_referral(riverside) for _ in range(5)]

    first = riverside.staff.get("/api/v1/referrals?limit=2").get_json()
    second = riverside.staff.get(f"/api/v1/referrals?limit=2&cursor={first['next_cursor']}").get_json()
    third = riverside.staff.get(f"/api/v1/referrals?limit=2&cursor={second['next_cursor']}").get_json()

    listed = [item["id"] for page in (first, second, third) for item in page["items"]]
    assert listed == ids, "same urgency: the earliest deadline is the oldest draft"
    assert third["next_cursor"] is None


def test_referrals_can_be_filtered_by_status(riverside: Practice):
    new_referral(riverside)
    assert len(riverside.staff.get("/api/v1/referrals?status=draft").get_json()["items"]) == 1
    assert riverside.staff.get("/api/v1/referrals?status=routed").get_json()["items"] == []
    assert riverside.staff.get("/api/v1/referrals?status=lost").status_code == 422


def test_a_bad_cursor_or_limit_is_refused(riverside: Practice):
    assert riverside.staff.get("/api/v1/referrals?cursor=%%%").status_code == 422
    assert riverside.staff.get("/api/v1/referrals?limit=0").status_code == 422
    assert riverside.staff.get("/api/v1/referrals?limit=1000").status_code == 422


def test_another_organization_never_sees_a_referral_and_the_attempt_is_audited(app: Flask, riverside: Practice,
                                                                                hillside: Practice):
    referral_id = new_referral(riverside)

    for client in (hillside.staff, hillside.dentist, hillside.billing, hillside.org_admin):
        response = client.get(f"/api/v1/referrals/{referral_id}")
        assert response.status_code == 404
        assert response.get_json()["message"] == "Referral not found"
    assert hillside.staff.get("/api/v1/referrals").get_json()["items"] == []

    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        denied = session.scalars(sa.select(AuditEvent).where(AuditEvent.outcome == "denied")).all()
    assert len(denied) == 4


def test_an_unknown_referral_id_is_404_and_a_malformed_one_too(riverside: Practice):
    assert riverside.staff.get("/api/v1/referrals/0195f3a0-0000-7000-8000-000000000000").status_code == 404
    assert riverside.staff.get("/api/v1/referrals/42").status_code == 404


def test_bad_referral_fields_are_refused_with_422(app: Flask, riverside: Practice, hillside: Practice):
    cases = {
        "teeth": {"teeth": ["33"]},
        "urgency": {"urgency": "whenever"},
        "mode": {"mode": "fax"},
        "specialty": {"specialty": "cardiology"},
        "place_of_service": {"place_of_service": "02"},
        "reason": {"reason": "   "},
        "status": {"status": "accepted"},
        "patient_id": {"patient_id": hillside.patient_id},
        "referring_provider_id": {"referring_provider_id": hillside.dentist_provider_id},
        "target_provider_id": {"target_provider_id": "0195f3a0-0000-7000-8000-000000000000"},
        "consent": {"consent": {"given_by": "neighbour", "method": "verbal", "given_at": "2026-01-05T09:00:00Z"}},
    }
    for field, overrides in cases.items():
        response = riverside.staff.post("/api/v1/referrals", referral_body(riverside, **overrides))
        assert response.status_code == 422, field
        errors = response.get_json()["errors"]
        assert field in errors.get("json", errors), (field, errors)

    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Referral)) == 0


def test_malformed_json_and_wrong_types_are_refused(riverside: Practice):
    raw = riverside.staff.client.post("/api/v1/referrals", data="{not json",
                                      headers={"Authorization": f"Bearer {riverside.staff.token}",
                                               "Content-Type": "application/json"})
    assert raw.status_code in (400, 422)
    assert raw.get_json()["code"] == raw.status_code
    wrong = riverside.staff.post("/api/v1/referrals", referral_body(riverside, teeth="19", reason=12))
    assert wrong.status_code == 422


def test_only_capturing_roles_open_referrals(riverside: Practice):
    assert riverside.billing.post("/api/v1/referrals", referral_body(riverside)).status_code == 403
    assert riverside.org_admin.post("/api/v1/referrals", referral_body(riverside)).status_code == 403
    assert riverside.dentist.post("/api/v1/referrals", referral_body(riverside)).status_code == 201


def test_a_referral_may_name_its_reason_as_a_code_from_the_dental_reasons_for_referral(riverside: Practice):
    coded = riverside.staff.post("/api/v1/referrals", referral_body(riverside, reason_code="27355003"))
    unknown = riverside.staff.post("/api/v1/referrals", referral_body(riverside, reason_code="22298006"))
    uncoded = riverside.staff.post("/api/v1/referrals", referral_body(riverside))

    assert coded.status_code == 201, coded.get_json()
    assert coded.get_json()["reason_code"] == "27355003"
    assert unknown.status_code == 422
    assert list(unknown.get_json()["errors"]["json"]) == ["reason_code"]
    assert uncoded.get_json()["reason_code"] is None
