"""Submit, route, accept or decline, retake, cancel: the referral state machine over HTTP."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import Flask

from referral.models import AuditEvent, Organization, Referral
from tests.support import samples
from tests.support.api import PDF, new_referral, put_form, ready_referral, submit, upload
from tests.support.world import Client, Practice, World

pytestmark = pytest.mark.both_backends  # stored bytes or database behaviour: both set-ups


@pytest.fixture
def endo_org(world: World) -> str:
    return world.reader_practice("Coastal Endodontics")


def test_submit_routes_to_an_eligible_reader_and_starts_the_clock(world: World, riverside: Practice, endo_org):
    reader = world.reader(endo_org)
    referral_id = ready_referral(riverside, urgency="urgent")

    response = submit(riverside, referral_id)

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "routed"
    assert body["assigned_provider_id"] == reader.provider_id
    submitted = datetime.fromisoformat(body["submitted_at"])
    assert datetime.fromisoformat(body["due_at"]) - submitted == timedelta(hours=24)
    assert [(e["action"], e["from_status"], e["to_status"]) for e in body["events"]] == [
        ("submit", "draft", "routed")]
    assert body["events"][0]["provider_id"] == reader.provider_id


def test_routing_skips_readers_of_another_specialty_state_or_without_capacity(world: World, riverside: Practice,
                                                                               endo_org):
    world.reader(endo_org, states=("NV",), last_name="Nevada")
    world.reader(endo_org, specialty="periodontics", last_name="Perio")
    world.reader(endo_org, accepting=False, last_name="Busy")
    world.reader(endo_org, role=None, last_name="NoLogin")
    eligible = world.reader(endo_org, states=("NV", "CA"), last_name="Right")

    body = submit(riverside, ready_referral(riverside)).get_json()

    assert body["assigned_provider_id"] == eligible.provider_id


def test_the_least_loaded_reader_gets_the_next_case_and_ties_go_to_the_earliest(world: World, riverside: Practice,
                                                                                endo_org):
    first = world.reader(endo_org, last_name="First")
    second = world.reader(endo_org, last_name="Second")

    assigned = [submit(riverside, ready_referral(riverside)).get_json()["assigned_provider_id"] for _ in range(3)]

    assert assigned == [first.provider_id, second.provider_id, first.provider_id]


def test_a_named_reader_is_used_when_eligible_and_refused_with_reasons_otherwise(world: World, riverside: Practice,
                                                                                 endo_org):
    world.reader(endo_org, last_name="Default")
    named = world.reader(endo_org, last_name="Named")
    unlicensed = world.reader(endo_org, states=("TX",), accepting=False, last_name="Texas")

    chosen = submit(riverside, ready_referral(riverside, target_provider_id=named.provider_id)).get_json()
    refused_id = ready_referral(riverside, target_provider_id=unlicensed.provider_id)
    refused = submit(riverside, refused_id)

    assert chosen["assigned_provider_id"] == named.provider_id
    assert refused.status_code == 422
    assert "not licensed in CA" in refused.get_json()["message"]
    assert "not accepting referrals" in refused.get_json()["message"]
    assert riverside.staff.get(f"/api/v1/referrals/{refused_id}").get_json()["status"] == "draft"


def test_a_reader_in_the_referring_practice_can_read_its_own_captures(world: World, riverside: Practice):
    remote_dentist = world.reader(riverside.id, specialty="general", role="dentist", last_name="Remote")
    referral_id = ready_referral(riverside, specialty="general")

    body = submit(riverside, referral_id).get_json()

    assert body["assigned_provider_id"] == remote_dentist.provider_id
    assert remote_dentist.client.post(f"/api/v1/referrals/{referral_id}/accept").status_code == 200


def test_with_nobody_eligible_the_case_is_unassigned_and_can_be_sent_again_later(world: World, riverside: Practice,
                                                                                 endo_org):
    referral_id = ready_referral(riverside)

    first = submit(riverside, referral_id).get_json()
    reader = world.reader(endo_org)
    second = submit(riverside, referral_id).get_json()

    assert first["status"] == "unassigned"
    assert first["assigned_provider_id"] is None
    assert second["status"] == "routed"
    assert second["assigned_provider_id"] == reader.provider_id


def test_submit_needs_images_the_right_views_and_consent(world: World, riverside: Practice, endo_org):
    world.reader(endo_org)
    empty = new_referral(riverside, consent={"given_by": "patient", "method": "verbal",
                                             "given_at": "2026-01-05T09:00:00Z"})
    no_images = submit(riverside, empty)

    wrong_views = new_referral(riverside, teeth=["19", "30"], consent={"given_by": "guardian", "method": "written",
                                                                       "given_at": "2026-01-05T09:00:00Z"})
    upload(riverside.staff, riverside, wrong_views, samples.dicom_bytes(teeth=()), teeth="19")
    upload(riverside.staff, riverside, wrong_views, samples.dicom_bytes(teeth=()), kind="bitewing", teeth="30,31")
    missing_view = submit(riverside, wrong_views)

    no_consent = new_referral(riverside)
    upload(riverside.staff, riverside, no_consent, samples.dicom_bytes())
    refused_for_consent = submit(riverside, no_consent)
    recorded = riverside.staff.put(f"/api/v1/referrals/{no_consent}/consent",
                                   {"given_by": "patient", "method": "verbal", "given_at": "2026-01-05T09:00:00Z"})
    after_consent = submit(riverside, no_consent)

    assert no_images.status_code == 422
    assert missing_view.status_code == 422
    assert missing_view.get_json()["errors"]["missing_teeth"] == ["30"]
    assert "30" in missing_view.get_json()["message"]
    assert refused_for_consent.status_code == 422
    assert "consent" in refused_for_consent.get_json()["errors"]
    assert recorded.status_code == 200
    assert recorded.get_json()["consent"]["given_by"] == "patient"
    assert after_consent.get_json()["status"] == "routed"


def test_bad_consent_is_refused(riverside: Practice):
    referral_id = new_referral(riverside)
    for body in ({"given_by": "friend", "method": "verbal", "given_at": "2026-01-05T09:00:00Z"},
                 {"given_by": "patient", "method": "telepathy", "given_at": "2026-01-05T09:00:00Z"},
                 {"given_by": "patient", "method": "verbal", "given_at": "2999-01-05T09:00:00Z"},
                 {"given_by": "patient", "method": "verbal"}):
        assert riverside.staff.put(f"/api/v1/referrals/{referral_id}/consent", body).status_code == 422


def test_a_practice_that_does_not_require_consent_may_send_without_it_unless_the_state_does(
        world: World, endo_org, app: Flask):
    world.reader(endo_org)
    relaxed = world.practice("Relaxed Dental")
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        session.get(Organization, uuid.UUID(relaxed.id)).requires_teledentistry_consent = False
        session.commit()
    referral_id = new_referral(relaxed)
    upload(relaxed.staff, relaxed, referral_id, samples.dicom_bytes())

    assert submit(relaxed, referral_id).get_json()["status"] == "routed"

    app.extensions["referral.settings"] = dataclasses.replace(app.extensions["referral.settings"],
                                                              consent_required_states=frozenset({"CA"}))
    strict_id = new_referral(relaxed)
    upload(relaxed.staff, relaxed, strict_id, samples.dicom_bytes())
    assert submit(relaxed, strict_id).status_code == 422


def test_only_the_assigned_reader_accepts_and_only_once(world: World, riverside: Practice, hillside: Practice,
                                                        endo_org):
    reader = world.reader(endo_org, last_name="Assigned")
    other_reader = world.reader(endo_org, last_name="Other")
    referral_id = ready_referral(riverside)
    submit(riverside, referral_id)

    assert other_reader.client.post(f"/api/v1/referrals/{referral_id}/accept").status_code == 404
    assert riverside.staff.post(f"/api/v1/referrals/{referral_id}/accept").status_code == 403
    assert hillside.dentist.post(f"/api/v1/referrals/{referral_id}/accept").status_code == 404
    accepted = reader.client.post(f"/api/v1/referrals/{referral_id}/accept")
    again = reader.client.post(f"/api/v1/referrals/{referral_id}/accept")

    assert accepted.status_code == 200
    assert accepted.get_json()["status"] == "accepted"
    assert accepted.get_json()["accepted_at"]
    assert again.status_code == 409


def test_ten_parallel_accepts_give_exactly_one_success(app: Flask, world: World, riverside: Practice, endo_org):
    reader = world.reader(endo_org)
    referral_id = ready_referral(riverside)
    submit(riverside, referral_id)
    statuses: list[int] = []
    barrier = threading.Barrier(10)

    def accept() -> None:
        client = Client(app.test_client(), reader.client.token)
        barrier.wait()
        statuses.append(client.post(f"/api/v1/referrals/{referral_id}/accept").status_code)

    threads = [threading.Thread(target=accept) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(statuses) == [200] + [409] * 9
    events = riverside.staff.get(f"/api/v1/referrals/{referral_id}").get_json()["events"]
    assert [e["action"] for e in events] == ["submit", "accept"]


def test_a_decline_routes_to_the_next_reader_and_the_last_decline_leaves_it_unassigned(
        world: World, riverside: Practice, endo_org):
    first = world.reader(endo_org, last_name="First")
    second = world.reader(endo_org, last_name="Second")
    referral_id = ready_referral(riverside)
    submit(riverside, referral_id)

    no_reason = first.client.post(f"/api/v1/referrals/{referral_id}/decline", {})
    declined = first.client.post(f"/api/v1/referrals/{referral_id}/decline", {"reason": "on leave"})
    first_lost_access = first.client.get(f"/api/v1/referrals/{referral_id}").status_code
    declined_again = second.client.post(f"/api/v1/referrals/{referral_id}/decline", {"reason": "outside scope"})
    detail = riverside.staff.get(f"/api/v1/referrals/{referral_id}").get_json()

    assert no_reason.status_code == 422
    assert declined.get_json()["status"] == "routed"
    assert first_lost_access == 404
    assert declined_again.get_json()["status"] == "unassigned"
    assert detail["assigned_provider_id"] is None
    assert [(e["action"], e["to_status"], e["reason"]) for e in detail["events"]] == [
        ("submit", "routed", None), ("decline", "routed", "on leave"), ("decline", "unassigned", "outside scope")]
    # submitting again does not bring it back to readers who declined
    assert submit(riverside, referral_id).get_json()["status"] == "unassigned"


def test_a_retake_goes_back_to_the_same_reader_already_accepted(world: World, riverside: Practice, endo_org):
    reader = world.reader(endo_org)
    referral_id = ready_referral(riverside)
    submit(riverside, referral_id)
    reader.client.post(f"/api/v1/referrals/{referral_id}/accept")
    image_id = riverside.staff.get(f"/api/v1/referrals/{referral_id}").get_json()["images"][0]["id"]
    other_referral = ready_referral(riverside)
    foreign_image = riverside.staff.get(f"/api/v1/referrals/{other_referral}").get_json()["images"][0]["id"]

    foreign = reader.client.post(f"/api/v1/referrals/{referral_id}/retake-requests",
                                 {"image_ids": [foreign_image], "reason": "apex cut off"})
    requested = reader.client.post(f"/api/v1/referrals/{referral_id}/retake-requests",
                                   {"image_ids": [image_id], "reason": "apex cut off"})
    too_early = submit(riverside, referral_id)
    retake = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes(teeth=()), teeth="19",
                    retake_of=image_id, retake_reason="apex cut off")
    resubmitted = submit(riverside, referral_id)

    assert foreign.status_code == 422
    assert requested.status_code == 201
    assert requested.get_json()["status"] == "retake_requested"
    assert too_early.status_code == 422
    assert retake.status_code == 201
    assert resubmitted.get_json()["status"] == "accepted"
    assert resubmitted.get_json()["assigned_provider_id"] == reader.provider_id


def test_the_referring_office_cancels_before_a_report_and_the_reader_cannot(world: World, riverside: Practice,
                                                                            endo_org):
    reader = world.reader(endo_org)
    referral_id = ready_referral(riverside)
    submit(riverside, referral_id)

    by_reader = reader.client.post(f"/api/v1/referrals/{referral_id}/cancel", {})
    by_billing = riverside.billing.post(f"/api/v1/referrals/{referral_id}/cancel", {})
    cancelled = riverside.dentist.post(f"/api/v1/referrals/{referral_id}/cancel", {"reason": "patient moved"})
    again = riverside.dentist.post(f"/api/v1/referrals/{referral_id}/cancel", {})

    assert by_reader.status_code == 403
    assert by_billing.status_code == 403
    assert cancelled.get_json()["status"] == "cancelled"
    assert again.status_code == 409


def test_illegal_transitions_answer_409(world: World, riverside: Practice, endo_org):
    reader = world.reader(endo_org)
    referral_id = ready_referral(riverside)
    assert submit(riverside, referral_id).status_code == 200

    assert submit(riverside, referral_id).status_code == 409  # already routed
    assert upload(riverside.staff, riverside, referral_id, samples.dicom_bytes()).status_code == 409
    assert reader.client.post(f"/api/v1/referrals/{referral_id}/accept").status_code == 200
    assert reader.client.post(f"/api/v1/referrals/{referral_id}/decline", {"reason": "late"}).status_code == 409
    assert submit(riverside, referral_id).status_code == 409  # accepted
    riverside.staff.post(f"/api/v1/referrals/{referral_id}/cancel", {})
    assert reader.client.post(f"/api/v1/referrals/{referral_id}/retake-requests",
                              {"image_ids": [], "reason": "x"}).status_code == 422
    image_id = riverside.staff.get(f"/api/v1/referrals/{referral_id}").get_json()["images"][0]["id"]
    assert reader.client.post(f"/api/v1/referrals/{referral_id}/retake-requests",
                              {"image_ids": [image_id], "reason": "x"}).status_code == 409
    assert riverside.staff.put(f"/api/v1/referrals/{referral_id}/consent",
                               {"given_by": "patient", "method": "verbal",
                                "given_at": "2026-01-05T09:00:00Z"}).status_code == 409


def test_each_role_sees_exactly_what_it_should(world: World, riverside: Practice, hillside: Practice, endo_org):
    reader = world.reader(endo_org, last_name="Assigned")
    colleague = world.reader(endo_org, last_name="Colleague")
    referral_id = ready_referral(riverside)
    submit(riverside, referral_id)
    image_id = riverside.staff.get(f"/api/v1/referrals/{referral_id}").get_json()["images"][0]["id"]

    detail = reader.client.get(f"/api/v1/referrals/{referral_id}")
    assert detail.status_code == 200
    assert detail.get_json()["patient"]["last_name"] == "Doe"
    assert reader.client.get(f"/api/v1/images/{image_id}/content").status_code == 200
    for outsider in (colleague.client, hillside.staff, hillside.billing, hillside.dentist):
        assert outsider.get(f"/api/v1/referrals/{referral_id}").status_code == 404
        assert outsider.get(f"/api/v1/images/{image_id}/content").status_code == 404
        assert outsider.get(f"/api/v1/referrals/{referral_id}/images").status_code == 404
    assert riverside.billing.get(f"/api/v1/referrals/{referral_id}").status_code == 200
    assert riverside.billing.get(f"/api/v1/images/{image_id}/content").status_code == 403
    # a reader cannot add images to someone else's case
    assert upload(reader.client, riverside, referral_id, samples.dicom_bytes()).status_code == 403


def test_the_inbox_is_ordered_by_deadline_and_filters_by_status_urgency_and_overdue(
        app: Flask, world: World, riverside: Practice, endo_org):
    reader = world.reader(endo_org)
    routine = ready_referral(riverside, urgency="routine")
    urgent = ready_referral(riverside, urgency="urgent")
    emergency = ready_referral(riverside, urgency="emergency")
    for referral_id in (routine, urgent, emergency):
        submit(riverside, referral_id)
    reader.client.post(f"/api/v1/referrals/{urgent}/accept")
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        session.execute(sa.update(Referral).where(Referral.id == uuid.UUID(routine))
                        .values(due_at=datetime.now(UTC) - timedelta(hours=1)))
        session.commit()

    inbox = reader.client.get("/api/v1/referrals").get_json()["items"]
    first = reader.client.get("/api/v1/referrals?limit=2").get_json()
    rest = reader.client.get(f"/api/v1/referrals?limit=2&cursor={first['next_cursor']}").get_json()

    assert [r["id"] for r in inbox] == [routine, emergency, urgent]
    assert [r["overdue"] for r in inbox] == [True, False, False]
    assert [r["id"] for r in first["items"] + rest["items"]] == [routine, emergency, urgent]
    assert rest["next_cursor"] is None
    assert [r["id"] for r in reader.client.get("/api/v1/referrals?overdue=true").get_json()["items"]] == [routine]
    assert [r["id"] for r in reader.client.get("/api/v1/referrals?status=accepted").get_json()["items"]] == [urgent]
    assert [r["id"] for r in reader.client.get("/api/v1/referrals?urgency=emergency").get_json()["items"]] == [
        emergency]
    assert len(reader.client.get("/api/v1/referrals?status=routed,accepted").get_json()["items"]) == 3
    assert len(riverside.staff.get("/api/v1/referrals").get_json()["items"]) == 3
    assert riverside.staff.get("/api/v1/referrals?view=inbox").status_code == 422
    assert reader.client.get("/api/v1/referrals?status=routed,nope").status_code == 422
    assert reader.client.get("/api/v1/referrals?cursor=bm90LWEtY3Vyc29y").status_code == 422


def test_every_state_change_is_audited_and_the_trail_filters_by_user_and_time(
        app: Flask, world: World, riverside: Practice, endo_org):
    reader = world.reader(endo_org)
    referral_id = ready_referral(riverside)
    submit(riverside, referral_id)
    reader.client.post(f"/api/v1/referrals/{referral_id}/accept")

    by_staff = riverside.org_admin.get(
        f"/api/v1/audit-events?referral_id={referral_id}&user_id={riverside.users['staff']}").get_json()["items"]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    none_yet = riverside.org_admin.get(f"/api/v1/audit-events?since={future}").get_json()["items"]
    all_events = riverside.org_admin.get(f"/api/v1/audit-events?referral_id={referral_id}&limit=100").get_json()

    assert "referral.submit" in {e["action"] for e in by_staff}
    assert all(e["actor_user_id"] == riverside.users["staff"] for e in by_staff)
    assert none_yet == []
    assert "referral.accept" in {e["action"] for e in all_events["items"]}
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        accepted = session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "referral.accept")).one()
    assert accepted.details == {"from": "routed", "to": "accepted", "provider_id": reader.provider_id}


def test_a_scanned_consent_form_is_kept_with_the_referral(world: World, riverside: Practice, hillside: Practice,
                                                          endo_org):
    reader = world.reader(endo_org)
    referral_id = ready_referral(riverside)

    stored = put_form(riverside.staff, referral_id, PDF)
    replaced = put_form(riverside.staff, referral_id, samples.png_bytes(), filename="scan.png")
    submit(riverside, referral_id)
    by_reader = reader.client.get(f"/api/v1/referrals/{referral_id}/consent/form")

    assert stored.status_code == 200
    assert stored.get_json()["consent"]["form_on_file"] is True
    assert replaced.status_code == 200
    assert by_reader.status_code == 200
    assert by_reader.data == samples.png_bytes()
    assert by_reader.headers["Content-Type"] == "image/png"
    assert by_reader.headers["Content-Disposition"].startswith("attachment;")
    assert hillside.staff.get(f"/api/v1/referrals/{referral_id}/consent/form").status_code == 404
    assert put_form(hillside.staff, referral_id, PDF).status_code == 404
    assert put_form(reader.client, referral_id, PDF).status_code == 403


def test_a_bad_consent_form_is_refused_and_nothing_is_kept(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)

    html = put_form(riverside.staff, referral_id, samples.html_bytes(), filename="consent.pdf")
    cut = put_form(riverside.staff, referral_id, PDF[:30])
    dicom = put_form(riverside.staff, referral_id, samples.dicom_bytes(), filename="consent.dcm")
    empty = put_form(riverside.staff, referral_id, b"")
    missing = riverside.staff.get(f"/api/v1/referrals/{referral_id}/consent/form")

    assert (html.status_code, cut.status_code, dicom.status_code, empty.status_code) == (415, 422, 415, 422)
    assert missing.status_code == 404
    assert list(app.extensions["referral.storage"].keys("consent/")) == []
