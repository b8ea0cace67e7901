"""Fixing a case's images before it is sent: PATCH relabels one, DELETE removes it with its bytes; once the
case is sent with an image both answer 409. Outsiders get 404; every refusal leaves the image as it was."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from referral.models import AuditEvent
from tests.support import samples
from tests.support.api import images_of, new_referral, ready_referral, stored_state, submit, upload
from tests.support.world import Practice, World

pytestmark = pytest.mark.both_backends  # stored bytes or database behaviour: both set-ups


def _audit(app: Flask, action: str) -> list[AuditEvent]:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        return list(session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)))


def _image(practice: Practice, referral_id: str, **fields: Any) -> dict[str, Any]:
    response = upload(practice.staff, practice, referral_id, samples.dicom_bytes(teeth=()), **fields)
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def _missing(practice: Practice, referral_id: str) -> Any:
    return practice.staff.post(f"/api/v1/referrals/{referral_id}/submit").get_json()["errors"].get("missing_teeth")


def test_a_mislabelled_image_is_relabelled_before_sending_and_the_change_is_audited(app: Flask,
                                                                                   riverside: Practice):
    referral_id = new_referral(riverside, teeth=["19"],
                               consent={"given_by": "patient", "method": "verbal", "given_at": "2026-01-05T09:00Z"})
    image = _image(riverside, referral_id, teeth="18")
    assert _missing(riverside, referral_id) == ["19"]

    fixed = riverside.staff.patch(f"/api/v1/images/{image['id']}", {
        "teeth": ["19"], "reason": "Cold test positive", "captured_at": "2026-01-05T08:15:00",
        "captured_by_provider_id": riverside.dentist_provider_id})

    assert fixed.status_code == 200, fixed.get_json()
    body = fixed.get_json()
    assert body["teeth"] == ["19"]
    assert body["reason"] == "Cold test positive"
    # A wall time without an offset is read in the practice's zone (Sacramento: PST in January).
    assert body["captured_at"] == "2026-01-05T16:15:00+00:00"
    assert body["captured_by_provider_id"] == riverside.dentist_provider_id
    assert body["sent_at"] is None
    assert riverside.staff.get(f"/api/v1/images/{image['id']}").get_json()["teeth"] == ["19"]
    [event] = _audit(app, "image.update")
    assert event.details["changes"]["teeth"] == {"from": ["18"], "to": ["19"]}
    assert event.details["changes"]["reason"] == {}  # free text: that it changed, not what it says
    assert submit(riverside, referral_id).status_code == 200


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"teeth": ["33"]}, "teeth"),
        ({"kind": "selfie"}, "kind"),
        ({"kind": "photo_intraoral"}, "kind"),
        ({"teeth": [], "area": None}, "teeth"),
        ({"area": "50"}, "area"),
        ({"captured_at": "2099-01-01T00:00:00+00:00"}, "captured_at"),
        ({"captured_at": "2099-01-01T00:00:00"}, "captured_at"),
        ({"captured_by_provider_id": str(uuid.uuid4())}, "captured_by_provider_id"),
        ({"reason": ""}, "reason"),
        ({"file": "x"}, "file"),
        ({}, "_schema"),
    ],
)
def test_a_bad_fix_is_refused_with_422_and_changes_nothing(app: Flask, riverside: Practice, changes, field):
    referral_id = new_referral(riverside)
    image = _image(riverside, referral_id)

    response = riverside.staff.patch(f"/api/v1/images/{image['id']}", changes)

    assert response.status_code == 422, response.get_json()
    errors = response.get_json()["errors"]
    assert field in errors.get("json", errors), errors
    assert riverside.staff.get(f"/api/v1/images/{image['id']}").get_json() == \
        {**image, "preview_status": image["preview_status"]}
    assert _audit(app, "image.update") == []


def test_another_practices_provider_cannot_be_named(riverside: Practice, hillside: Practice):
    referral_id = new_referral(riverside)
    image = _image(riverside, referral_id)
    response = riverside.staff.patch(f"/api/v1/images/{image['id']}",
                                     {"captured_by_provider_id": hillside.hygienist_provider_id})
    assert response.status_code == 422
    assert "captured_by_provider_id" in response.get_json()["errors"]


def test_a_removed_image_leaves_no_row_and_no_bytes(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    kept = _image(riverside, referral_id)
    removed = _image(riverside, referral_id, teeth="18")
    rows, keys = stored_state(app)
    assert rows == 2
    assert len(keys) == 6

    response = riverside.staff.delete(f"/api/v1/images/{removed['id']}")

    assert response.status_code == 204
    assert response.get_data() == b""
    rows, keys = stored_state(app)
    assert rows == 1
    assert sorted(keys) == sorted(k for k in keys if kept["id"] in k)
    assert len(keys) == 3
    assert riverside.staff.get(f"/api/v1/images/{removed['id']}").status_code == 404
    assert riverside.staff.delete(f"/api/v1/images/{removed['id']}").status_code == 404
    assert [i["id"] for i in riverside.staff.get(f"/api/v1/referrals/{referral_id}/images").get_json()["items"]] \
        == [kept["id"]]
    [event] = _audit(app, "image.delete")
    assert event.object_id == uuid.UUID(removed["id"])
    assert event.details == {"kind": "periapical", "teeth": ["18"], "size": removed["size"],
                             "sha256": removed["sha256"]}


def test_once_the_case_is_sent_its_images_answer_409_and_stay(app: Flask, riverside: Practice):
    referral_id = ready_referral(riverside)
    [image] = riverside.staff.get(f"/api/v1/referrals/{referral_id}/images").get_json()["items"]
    assert submit(riverside, referral_id).status_code == 200
    before = stored_state(app)

    patched = riverside.staff.patch(f"/api/v1/images/{image['id']}", {"teeth": ["18"]})
    deleted = riverside.staff.delete(f"/api/v1/images/{image['id']}")

    assert (patched.status_code, deleted.status_code) == (409, 409)
    assert "sent" in patched.get_json()["message"]
    after = riverside.staff.get(f"/api/v1/images/{image['id']}").get_json()
    assert after["teeth"] == ["19"]
    assert after["sent_at"] is not None
    assert stored_state(app) == before
    assert _audit(app, "image.update") == []
    assert _audit(app, "image.delete") == []


def test_outsiders_get_404_and_the_reading_side_403(app: Flask, world: World, riverside: Practice,
                                                    hillside: Practice):
    referral_id = new_referral(riverside)
    image = _image(riverside, referral_id)
    url = f"/api/v1/images/{image['id']}"

    for client in (hillside.staff, hillside.dentist, hillside.org_admin):
        assert client.patch(url, {"teeth": ["18"]}).status_code == 404
        assert client.delete(url).status_code == 404
    assert riverside.billing.patch(url, {"teeth": ["18"]}).status_code == 403
    assert riverside.billing.delete(url).status_code == 403
    assert world.anonymous.delete(url).status_code == 401
    assert riverside.staff.patch(f"/api/v1/images/{uuid.uuid4()}", {"teeth": ["18"]}).status_code == 404
    assert riverside.staff.get(url).get_json()["teeth"] == ["19"]
    assert stored_state(app)[0] == 1


def test_during_a_retake_only_the_new_exposures_can_be_fixed(app: Flask, world: World, riverside: Practice):
    reader = world.reader(world.reader_practice("Coastal Endodontics"))
    referral_id = ready_referral(riverside)
    [original] = riverside.staff.get(f"/api/v1/referrals/{referral_id}/images").get_json()["items"]
    assert submit(riverside, referral_id).get_json()["assigned_provider_id"] == reader.provider_id
    assert reader.client.post(f"/api/v1/referrals/{referral_id}/accept").status_code == 200
    assert reader.client.post(f"/api/v1/referrals/{referral_id}/retake-requests",
                              {"image_ids": [original["id"]], "reason": "Apex cut off"}).status_code in (200, 201)
    # The reader sees the case but does not change the sender's images.
    assert reader.client.patch(f"/api/v1/images/{original['id']}", {"teeth": ["18"]}).status_code == 403

    retake = _image(riverside, referral_id, retake_of=original["id"], retake_reason="apex cut off")
    wrong = _image(riverside, referral_id, retake_of=original["id"], retake_reason="apex cut off")
    assert riverside.staff.patch(f"/api/v1/images/{original['id']}", {"teeth": ["18"]}).status_code == 409
    assert riverside.staff.delete(f"/api/v1/images/{original['id']}").status_code == 409
    assert riverside.staff.patch(f"/api/v1/images/{retake['id']}", {"area": "20"}).status_code == 200
    assert riverside.staff.delete(f"/api/v1/images/{wrong['id']}").status_code == 204

    assert submit(riverside, referral_id).status_code == 200
    assert riverside.staff.patch(f"/api/v1/images/{retake['id']}", {"area": "30"}).status_code == 409
    assert [i.id for i in images_of(app, referral_id)] == sorted([uuid.UUID(original["id"]),
                                                                 uuid.UUID(retake["id"])])


def test_an_image_that_has_a_retake_is_removed_only_after_its_retake(app: Flask, riverside: Practice):
    referral_id = new_referral(riverside)
    first = _image(riverside, referral_id)
    again = _image(riverside, referral_id, retake_of=first["id"], retake_reason="cone cut")

    refused = riverside.staff.delete(f"/api/v1/images/{first['id']}")

    assert refused.status_code == 409
    assert "retake" in refused.get_json()["message"]
    assert stored_state(app)[0] == 2
    assert riverside.staff.delete(f"/api/v1/images/{again['id']}").status_code == 204
    assert riverside.staff.delete(f"/api/v1/images/{first['id']}").status_code == 204
    assert stored_state(app) == (0, [])
