"""A refused attempt is audited without telling the actor's admins anything about what was asked for."""

from __future__ import annotations

import uuid

from tests.support import samples
from tests.support.api import new_referral, upload
from tests.support.world import Practice


def _denied(admin: Practice) -> list[dict[str, object]]:
    events = admin.org_admin.get("/api/v1/audit-events").get_json()["items"]
    return [e for e in events if e["outcome"] == "denied"]


def test_a_refused_image_read_names_only_the_image_and_the_actors_own_practice(riverside: Practice,
                                                                               hillside: Practice):
    referral_id = new_referral(riverside)
    image = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes()).get_json()

    assert hillside.staff.get(f"/api/v1/images/{image['id']}").status_code == 404

    [event] = _denied(hillside)
    assert (event["action"], event["object_type"], event["object_id"]) == ("image.access", "image", image["id"])
    # Neither the case the image belongs to nor the practice that holds it.
    assert event["referral_id"] is None
    assert event["organization_id"] == event["actor_organization_id"] == hillside.id
    assert str(referral_id) not in str(event)
    assert riverside.id not in str(event)


def test_an_id_that_exists_elsewhere_and_one_that_exists_nowhere_leave_the_same_trail(riverside: Practice,
                                                                                      hillside: Practice):
    referral_id = new_referral(riverside)
    image = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes()).get_json()
    made_up = str(uuid.uuid4())

    shapes = []
    for path in (f"/api/v1/images/{image['id']}", f"/api/v1/images/{made_up}",
                 f"/api/v1/referrals/{referral_id}", f"/api/v1/referrals/{made_up}"):
        response = hillside.staff.get(path)
        assert response.status_code == 404
        newest = _denied(hillside)[0]
        assert newest["object_id"] == path.rsplit("/", 1)[1]
        shapes.append((response.get_json()["message"], newest["action"], newest["organization_id"],
                       newest["referral_id"] == (newest["object_id"] if "referrals" in path else None)))
    assert shapes[0] == shapes[1]
    assert shapes[2] == shapes[3]
    assert all(shape[3] for shape in shapes)
    assert len(_denied(hillside)) == 4
