"""The remote-hygienist model: a hygienist of the practice captures, the supervising dentist of record reads,
even when that dentist referred the case; a specialty referral to oneself is still refused."""

from __future__ import annotations

import pytest

from tests.support import samples
from tests.support.api import draft_body, new_referral, ready_referral, submit, upload
from tests.support.world import Practice, World, provider_body


@pytest.fixture
def elsewhere(world: World, hillside: Practice) -> Practice:
    """Another practice whose general dentist could read cases from anywhere in California."""
    return hillside


def _sign(practice: Practice, reader_client, referral_id: str) -> None:
    assert reader_client.post(f"/api/v1/referrals/{referral_id}/accept").status_code == 200
    images = [i["id"] for i in practice.staff.get(f"/api/v1/referrals/{referral_id}").get_json()["images"]]
    assert reader_client.put(f"/api/v1/referrals/{referral_id}/report", draft_body(images)).status_code == 200
    assert reader_client.post(f"/api/v1/referrals/{referral_id}/report/sign").status_code == 200


def test_a_hygienists_case_goes_to_the_practices_only_dentist_who_referred_it(riverside: Practice,
                                                                               elsewhere: Practice):
    referral_id = ready_referral(riverside, specialty="general")
    photo = upload(riverside.staff, riverside, referral_id, samples.jpeg_bytes(), filename="photo.jpg",
                   kind="photo_intraoral", teeth="19")
    assert photo.status_code == 201, photo.get_json()

    body = submit(riverside, referral_id).get_json()

    assert body["status"] == "routed"
    assert body["assigned_provider_id"] == riverside.dentist_provider_id, "not the other practice's dentist"
    _sign(riverside, riverside.dentist, referral_id)
    claims = riverside.billing.get(f"/api/v1/referrals/{referral_id}/claims").get_json()["claims"]
    assert len(claims) == 1
    claim = claims[0]
    assert claim["role"] == "single"
    assert claim["rendering_provider_id"] == riverside.dentist_provider_id
    assert claim["referring_provider_id"] is None, "the dentist does not refer to themselves on the claim"
    assert sorted(line["code"] for line in claim["lines"]) == ["D0220", "D0350", "D9996"]
    assert elsewhere.billing.get(f"/api/v1/referrals/{referral_id}/claims").status_code == 404


def test_the_dentist_of_record_named_as_reader_gets_the_case_over_another_reader_of_the_practice(
        world: World, riverside: Practice):
    world.reader(riverside.id, specialty="general", role="dentist", last_name="Remote")
    referral_id = ready_referral(riverside, specialty="general", target_provider_id=riverside.dentist_provider_id)

    body = submit(riverside, referral_id).get_json()

    assert body["assigned_provider_id"] == riverside.dentist_provider_id


def test_another_reader_of_the_practice_is_preferred_when_the_dentist_is_not_named(world: World,
                                                                                  riverside: Practice):
    remote = world.reader(riverside.id, specialty="general", role="dentist", last_name="Remote")
    referral_id = ready_referral(riverside, specialty="general")

    assert submit(riverside, referral_id).get_json()["assigned_provider_id"] == remote.provider_id


def test_a_dentist_who_captured_the_images_does_not_read_their_own_referral(riverside: Practice,
                                                                            elsewhere: Practice):
    consent = {"given_by": "patient", "method": "verbal", "given_at": "2026-01-05T09:00:00Z"}
    named = new_referral(riverside, specialty="general", consent=consent,
                         target_provider_id=riverside.dentist_provider_id)
    unnamed = new_referral(riverside, specialty="general", consent=consent)
    for referral_id in (named, unnamed):
        response = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes(teeth=()),
                          captured_by_provider_id=riverside.dentist_provider_id)
        assert response.status_code == 201, response.get_json()

    refused = submit(riverside, named)
    routed = submit(riverside, unnamed).get_json()

    assert refused.status_code == 422
    assert "referring provider" in refused.get_json()["message"]
    assert riverside.staff.get(f"/api/v1/referrals/{named}").get_json()["status"] == "draft"
    assert routed["assigned_provider_id"] not in (None, riverside.dentist_provider_id)


def test_a_specialty_referral_to_oneself_is_refused_even_for_a_hygienists_case(world: World, riverside: Practice):
    endodontist = world.admin.post(f"/api/v1/organizations/{riverside.id}/providers",
                                   provider_body("endodontics", last_name="Root", taxonomy="1223E0200X")).get_json()
    created = world.admin.post(f"/api/v1/organizations/{riverside.id}/users",
                               {"email": "root@riverside.example.com", "role": "specialist",
                                "provider_id": endodontist["id"]})
    assert created.status_code == 201, created.get_json()
    referral_id = ready_referral(riverside, referring_provider_id=endodontist["id"],
                                 target_provider_id=endodontist["id"])

    refused = submit(riverside, referral_id)

    assert refused.status_code == 422
    assert "referring provider" in refused.get_json()["message"]
    assert riverside.staff.get(f"/api/v1/referrals/{referral_id}").get_json()["status"] == "draft"
