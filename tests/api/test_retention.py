"""Image retention: a per-organization period, and `retention apply` deleting the images of cases closed
longer ago than it."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from referral.models import AuditEvent, Image, Organization, ReferralEvent
from referral.models.images import ImageDeletionReason, ImmutableImageError
from referral.services.lifecycle import retention_starts
from storage import StorageUnavailable
from tests.support import samples
from tests.support.api import (
    CAPTURED_AT,
    draft_body,
    images_of,
    new_referral,
    ready_referral,
    run_retention,
    signed_case,
    submit,
    upload,
)
from tests.support.world import Client, Practice, Reader, World

pytestmark = pytest.mark.both_backends  # stored bytes or database behaviour: both set-ups


def patch(client: Client, path: str, body: Any) -> Any:
    return client.client.patch(path, data=json.dumps(body), content_type="application/json",
                               headers={"Authorization": f"Bearer {client.token}"})


def set_retention(client: Client, organization_id: str, days: Any) -> Any:
    return patch(client, f"/api/v1/organizations/{organization_id}", {"image_retention_days": days})


def closed_days_ago(app: Flask, referral_id: str, days: int) -> None:
    """Move the whole history of a referral back in time, as if it had closed ``days`` ago."""
    with app.app_context():
        factory = app.extensions["referral.sessionmaker"]
        with factory() as session:
            session.execute(sa.update(ReferralEvent).where(ReferralEvent.referral_id == uuid.UUID(referral_id))
                            .values(at=datetime.now(UTC) - timedelta(days=days)))
            session.commit()


def stored_keys(app: Flask, practice_id: str, referral_id: str) -> list[str]:
    return sorted(app.extensions["referral.storage"].keys(f"images/{practice_id}/{referral_id}/"))


def audit_rows(app: Flask, action: str) -> list[AuditEvent]:
    with app.app_context():
        factory = app.extensions["referral.sessionmaker"]
        with factory() as session:
            return list(session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)))


def sign(practice: Practice, reader: Reader, referral_id: str) -> None:
    assert submit(practice, referral_id).get_json()["assigned_provider_id"] == reader.provider_id
    assert reader.client.post(f"/api/v1/referrals/{referral_id}/accept").status_code == 200
    images = [i["id"] for i in practice.staff.get(f"/api/v1/referrals/{referral_id}").get_json()["images"]]
    assert reader.client.put(f"/api/v1/referrals/{referral_id}/report", draft_body(images)).status_code == 200
    assert reader.client.post(f"/api/v1/referrals/{referral_id}/report/sign").status_code == 200


def cancelled_case(practice: Practice) -> str:
    referral_id = ready_referral(practice)
    response = practice.staff.post(f"/api/v1/referrals/{referral_id}/cancel", {"reason": "Patient moved away"})
    assert response.status_code == 200, response.get_json()
    return referral_id


@pytest.fixture
def reader(world: World) -> Reader:
    return world.reader(world.reader_practice("Coastal Endodontics"))


# -- the setting ------------------------------------------------------------------------------------------


def test_an_organization_admin_sets_and_clears_the_retention_period(world: World, riverside: Practice):
    before = riverside.org_admin.get(f"/api/v1/organizations/{riverside.id}").get_json()

    seven_years = set_retention(riverside.org_admin, riverside.id, 7 * 365 + 2)
    by_platform = set_retention(world.admin, riverside.id, 365)
    cleared = set_retention(riverside.org_admin, riverside.id, None)

    assert before["image_retention_days"] is None
    assert seven_years.status_code == 200, seven_years.get_json()
    assert seven_years.get_json()["image_retention_days"] == 2557
    assert by_platform.status_code == 200
    assert by_platform.get_json()["image_retention_days"] == 365
    assert cleared.status_code == 200
    assert cleared.get_json()["image_retention_days"] is None
    events = riverside.org_admin.get("/api/v1/audit-events?limit=100").get_json()["items"]
    updates = [e for e in events if e["action"] == "organization.update"]
    assert [e["details"]["changes"]["image_retention_days"]["to"] for e in updates] == [None, 365, 2557]


def test_a_bad_retention_period_is_refused_and_nothing_is_stored(app: Flask, riverside: Practice):
    assert set_retention(riverside.org_admin, riverside.id, 3650).status_code == 200
    bad = [-1, 0, 30, 364, 36_526, 10**30, "400", 400.5, True, [400], {"days": 400}]

    responses = [set_retention(riverside.org_admin, riverside.id, value) for value in bad]

    assert [response.status_code for response in responses] == [422] * len(bad)
    assert all("image_retention_days" in response.get_json()["errors"]["json"] for response in responses)
    assert riverside.org_admin.get(f"/api/v1/organizations/{riverside.id}").get_json()["image_retention_days"] == 3650
    assert len(audit_rows(app, "organization.update")) == 1


def test_an_empty_or_unknown_change_is_refused(riverside: Practice):
    empty = patch(riverside.org_admin, f"/api/v1/organizations/{riverside.id}", {})
    unknown = patch(riverside.org_admin, f"/api/v1/organizations/{riverside.id}", {"colour": "blue"})

    assert empty.status_code == 422
    assert unknown.status_code == 422
    assert "colour" in unknown.get_json()["errors"]["json"]


def test_only_admins_of_the_organization_change_its_retention(world: World, riverside: Practice,
                                                               hillside: Practice, reader: Reader):
    refused = {role: set_retention(getattr(riverside, role), riverside.id, 400).status_code
               for role in ("staff", "dentist", "billing")}
    by_reader = set_retention(reader.client, riverside.id, 400)
    other_admin = set_retention(hillside.org_admin, riverside.id, 400)
    anonymous = set_retention(world.anonymous, riverside.id, 400)

    assert refused == {"staff": 403, "dentist": 403, "billing": 403}
    assert by_reader.status_code == 404, "a reader of another practice is an outsider to this organization"
    assert other_admin.status_code == 404
    assert anonymous.status_code == 401
    assert riverside.org_admin.get(f"/api/v1/organizations/{riverside.id}").get_json()["image_retention_days"] is None


# -- applying it ------------------------------------------------------------------------------------------


def test_retention_deletes_only_the_images_of_cases_closed_longer_ago_than_the_period(
        app: Flask, world: World, riverside: Practice, hillside: Practice, reader: Reader):
    assert set_retention(riverside.org_admin, riverside.id, 365).status_code == 200
    old_report = signed_case(world, riverside, reader)
    recent_report = signed_case(world, riverside, reader)
    old_cancelled = cancelled_case(riverside)
    long_open = ready_referral(riverside)
    submit(riverside, long_open)
    other_practice = cancelled_case(hillside)
    for referral_id, days in ((old_report, 400), (recent_report, 300), (old_cancelled, 366), (long_open, 900)):
        closed_days_ago(app, referral_id, days)
    closed_days_ago(app, other_practice, 4000)
    expired = [image.id for referral_id in (old_report, old_cancelled) for image in images_of(app, referral_id)]

    code, counts = run_retention(app)

    assert code == 0
    assert counts == {"dry_run": False, "organizations": 1, "images_expired": 2, "images_deleted": 2,
                      "objects_removed": 6, "removals_failed": 0}
    assert stored_keys(app, riverside.id, old_report) == []
    assert stored_keys(app, riverside.id, old_cancelled) == []
    assert len(stored_keys(app, riverside.id, recent_report)) == 3
    assert len(stored_keys(app, riverside.id, long_open)) == 3
    assert len(stored_keys(app, hillside.id, other_practice)) == 3
    for image in images_of(app, old_report) + images_of(app, old_cancelled):
        assert image.deleted_reason == ImageDeletionReason.RETENTION
        assert image.deleted_at is not None
        assert image.objects_removed_at is not None
        assert image.original_filename is None
        assert not {"patient_name", "patient_id", "patient_birth_date"} & set(image.dicom or {})
        assert image.sha256
        assert image.size
    for referral_id in (recent_report, long_open, other_practice):
        assert all(image.deleted_at is None for image in images_of(app, referral_id))
    events = audit_rows(app, "image.retention_delete")
    assert sorted(event.object_id for event in events) == sorted(expired)
    assert all(event.actor_user_id is None and event.organization_id is not None for event in events)
    assert all(event.details == {"reason": "retention", "retention_days": 365} for event in events)


def test_a_deleted_image_keeps_its_metadata_while_its_content_is_gone(
        app: Flask, world: World, riverside: Practice, reader: Reader):
    assert set_retention(riverside.org_admin, riverside.id, 365).status_code == 200
    referral_id = signed_case(world, riverside, reader)
    closed_days_ago(app, referral_id, 400)
    image_id = str(images_of(app, referral_id)[0].id)
    run_retention(app)

    metadata = riverside.staff.get(f"/api/v1/images/{image_id}")
    answers = {name: riverside.staff.get(f"/api/v1/images/{image_id}/{name}").status_code
               for name in ("content", "preview", "thumbnail")}
    by_url = riverside.staff.get(f"/api/v1/images/{image_id}/content?redirect=true")
    case = riverside.dentist.get(f"/api/v1/referrals/{referral_id}")
    report = riverside.dentist.get(f"/api/v1/referrals/{referral_id}/documents/report.html")
    claims = riverside.billing.get(f"/api/v1/referrals/{referral_id}/claims")
    outsider = world.practice("Lakeside Dental").staff.get(f"/api/v1/images/{image_id}/content")

    assert metadata.status_code == 200
    body = metadata.get_json()
    assert body["deleted_reason"] == "retention"
    assert body["deleted_at"]
    assert (body["content_url"], body["preview_url"], body["thumbnail_url"]) == (None, None, None)
    assert body["original_filename"] is None
    assert answers == {"content": 410, "preview": 410, "thumbnail": 410}
    assert by_url.status_code == 410
    assert case.status_code == 200
    assert case.get_json()["images"][0]["deleted_reason"] == "retention"
    assert case.get_json()["patient"]["last_name"] == "Doe"
    assert report.status_code == 200
    assert b"No preview available." in report.data
    assert claims.status_code == 200
    assert claims.get_json()["claims"][0]["lines"]
    assert outsider.status_code == 404


def test_a_second_run_deletes_nothing_new(app: Flask, world: World, riverside: Practice, reader: Reader):
    assert set_retention(riverside.org_admin, riverside.id, 365).status_code == 200
    referral_id = signed_case(world, riverside, reader)
    closed_days_ago(app, referral_id, 400)

    first = run_retention(app)
    second = run_retention(app)

    assert first[1]["images_deleted"] == 1
    assert second == (0, {"dry_run": False, "organizations": 1, "images_expired": 0, "images_deleted": 0,
                          "objects_removed": 0, "removals_failed": 0})
    assert len(audit_rows(app, "image.retention_delete")) == 1


def test_a_dry_run_counts_and_changes_nothing(app: Flask, world: World, riverside: Practice, reader: Reader):
    assert set_retention(riverside.org_admin, riverside.id, 365).status_code == 200
    referral_id = signed_case(world, riverside, reader)
    closed_days_ago(app, referral_id, 400)

    code, counts = run_retention(app, "--dry-run")

    assert code == 0
    assert counts == {"dry_run": True, "organizations": 1, "images_expired": 1, "images_deleted": 0,
                      "objects_removed": 0, "removals_failed": 0, "removals_pending": 0}
    assert len(stored_keys(app, riverside.id, referral_id)) == 3
    assert all(image.deleted_at is None for image in images_of(app, referral_id))
    assert audit_rows(app, "image.retention_delete") == []


def test_without_a_period_nothing_is_ever_deleted(app: Flask, world: World, riverside: Practice, reader: Reader):
    referral_id = signed_case(world, riverside, reader)
    closed_days_ago(app, referral_id, 50 * 365)

    code, counts = run_retention(app)

    assert (code, counts["organizations"], counts["images_deleted"]) == (0, 0, 0)
    assert len(stored_keys(app, riverside.id, referral_id)) == 3


def test_a_minors_images_are_kept_until_the_period_has_run_from_their_21st_birthday(
        app: Flask, world: World, riverside: Practice, reader: Reader):
    child = riverside.staff.post("/api/v1/patients", {"first_name": "Sam", "last_name": "Young",
                                                      "birth_date": "2015-06-01", "sex": "M", "state": "CA"})
    assert child.status_code == 201
    assert set_retention(riverside.org_admin, riverside.id, 365).status_code == 200
    referral_id = new_referral(riverside, patient_id=child.get_json()["id"],
                               consent={"given_by": "guardian", "method": "verbal", "given_at": CAPTURED_AT})
    dicom = samples.dicom_bytes(patient_name="Young^Sam", birth_date="20150601", teeth=())
    assert upload(riverside.staff, riverside, referral_id, dicom).status_code == 201
    sign(riverside, reader, referral_id)
    closed_days_ago(app, referral_id, 3 * 365)

    _, counts = run_retention(app)

    assert counts["images_deleted"] == 0
    assert len(stored_keys(app, riverside.id, referral_id)) == 3
    closed = datetime(2020, 1, 1, tzinfo=UTC)
    assert retention_starts(closed, date(2015, 6, 1)) == datetime(2036, 6, 1, tzinfo=UTC)
    assert retention_starts(closed, date(1980, 1, 1)) == closed
    assert retention_starts(closed, date(2004, 2, 29)) == datetime(2025, 3, 1, tzinfo=UTC)


def test_objects_the_store_could_not_remove_are_removed_by_the_next_run(
        app: Flask, world: World, riverside: Practice, reader: Reader, monkeypatch: pytest.MonkeyPatch):
    assert set_retention(riverside.org_admin, riverside.id, 365).status_code == 200
    referral_id = signed_case(world, riverside, reader)
    closed_days_ago(app, referral_id, 400)
    store = app.extensions["referral.storage"]

    def unavailable(_key: str) -> None:
        raise StorageUnavailable("store down")

    with monkeypatch.context() as patched:
        patched.setattr(store, "delete", unavailable)
        failed = run_retention(app)
    pending = [(image.deleted_at is not None, image.objects_removed_at) for image in images_of(app, referral_id)]
    left = stored_keys(app, riverside.id, referral_id)
    content = riverside.staff.get(f"/api/v1/images/{images_of(app, referral_id)[0].id}/content")
    retried = run_retention(app)

    assert failed[0] == 1
    assert failed[1]["images_deleted"] == 1
    assert failed[1]["removals_failed"] == 1
    assert pending == [(True, None)]
    assert len(left) == 3
    assert content.status_code == 410
    assert retried[0] == 0
    assert (retried[1]["images_deleted"], retried[1]["objects_removed"]) == (0, 3)
    assert stored_keys(app, riverside.id, referral_id) == []
    assert images_of(app, referral_id)[0].objects_removed_at is not None


def test_a_stored_image_changes_only_by_becoming_a_tombstone(app: Flask, riverside: Practice):
    referral_id = ready_referral(riverside)
    upload(riverside.staff, riverside, referral_id, samples.jpeg_bytes(), kind="photo_intraoral", teeth="19")
    factory = app.extensions["referral.sessionmaker"]
    with app.app_context(), factory() as session:
        image = session.scalars(sa.select(Image).where(Image.referral_id == uuid.UUID(referral_id))).first()
        assert image is not None
        # Once its case has been sent (before that, its labels may still be fixed).
        image.sent_at = datetime.now(UTC)
        session.commit()
        image.reason = "changed"
        with pytest.raises(ImmutableImageError):
            session.flush()
        session.rollback()

        image.objects_removed_at = datetime.now(UTC)
        with pytest.raises(ImmutableImageError):
            session.flush()
        session.rollback()

        image.erase(ImageDeletionReason.RETENTION, datetime.now(UTC))
        session.commit()
        image.deleted_at = datetime.now(UTC)
        with pytest.raises(ImmutableImageError):
            session.flush()
        session.rollback()

        image.objects_removed_at = datetime.now(UTC)
        session.commit()
        assert image.deleted_reason == "retention"


def test_the_retention_floor_and_ceiling_are_what_the_schema_documents(app: Flask):
    from referral.models.organizations import MAX_IMAGE_RETENTION_DAYS, MIN_IMAGE_RETENTION_DAYS

    spec = app.test_client().get("/api/openapi.json").get_json()
    field = spec["components"]["schemas"]["OrganizationUpdate"]["properties"]["image_retention_days"]

    assert (field["minimum"], field["maximum"]) == (MIN_IMAGE_RETENTION_DAYS, MAX_IMAGE_RETENTION_DAYS)
    assert Organization.__table__.c.image_retention_days.nullable
