"""Draft, sign, never change; corrections by signed addenda."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

import pytest

from tests.support import samples
from tests.support.api import draft_body, ready_referral, submit, upload
from tests.support.world import Practice, Reader, World


@pytest.fixture
def case(world: World, riverside: Practice) -> tuple[str, Reader, list[str]]:
    """An accepted case with two images, assigned to an endodontist."""
    reader = world.reader(world.reader_practice("Coastal Endodontics"))
    referral_id = ready_referral(riverside)
    upload(riverside.staff, riverside, referral_id, samples.jpeg_bytes(), kind="photo_intraoral", teeth="19")
    submit(riverside, referral_id)
    assert reader.client.post(f"/api/v1/referrals/{referral_id}/accept").status_code == 200
    images = [i["id"] for i in riverside.staff.get(f"/api/v1/referrals/{referral_id}").get_json()["images"]]
    return referral_id, reader, images


def test_the_reader_drafts_signs_and_the_report_never_changes(case, riverside: Practice):
    referral_id, reader, images = case
    path = f"/api/v1/referrals/{referral_id}/report"

    drafted = reader.client.put(path, draft_body(images))
    hidden_from_office = riverside.dentist.get(path)
    signed = reader.client.post(f"{path}/sign")
    changed = reader.client.put(path, draft_body(images, impression="something else"))
    signed_again = reader.client.post(f"{path}/sign")
    seen_by_office = riverside.dentist.get(path)
    referral = riverside.dentist.get(f"/api/v1/referrals/{referral_id}").get_json()

    assert drafted.status_code == 200
    assert drafted.get_json()["status"] == "draft"
    assert hidden_from_office.status_code == 404
    assert signed.status_code == 200
    body = signed.get_json()
    assert body["status"] == "signed"
    assert changed.status_code == 409
    assert signed_again.status_code == 409
    assert seen_by_office.get_json() == body
    assert referral["status"] == "reported"
    assert referral["report"]["status"] == "signed"
    assert [e["action"] for e in referral["events"]][-1] == "sign_report"
    canonical = {
        "referral_id": referral_id, "reader_provider_id": reader.provider_id, "findings": body["findings"],
        "impression": body["impression"], "recommendation": body["recommendation"],
        "evaluation_performed": False, "signed_at": datetime.fromisoformat(body["signed_at"]).isoformat(),
    }
    expected = hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":"),
                                         ensure_ascii=False).encode()).hexdigest()
    assert body["content_sha256"] == expected


def test_corrections_go_in_signed_addenda(case, riverside: Practice):
    referral_id, reader, images = case
    path = f"/api/v1/referrals/{referral_id}/report"
    too_early = reader.client.post(f"{path}/addenda", {"text": "early"})
    reader.client.put(path, draft_body(images))
    reader.client.post(f"{path}/sign")

    first = reader.client.post(f"{path}/addenda", {"text": "Tooth 18 also shows a widened PDL space."})
    by_office = riverside.dentist.post(f"{path}/addenda", {"text": "not mine to add"})
    empty = reader.client.post(f"{path}/addenda", {"text": ""})
    report = riverside.dentist.get(path).get_json()

    assert too_early.status_code == 409
    assert first.status_code == 201
    assert len(first.get_json()["content_sha256"]) == 64
    assert by_office.status_code == 403
    assert empty.status_code == 422
    assert [a["text"] for a in report["addenda"]] == ["Tooth 18 also shows a widened PDL space."]


def test_signing_needs_findings_for_every_image_and_an_impression(case):
    referral_id, reader, images = case
    path = f"/api/v1/referrals/{referral_id}/report"

    nothing = reader.client.post(f"{path}/sign")
    reader.client.put(path, draft_body(images[:1]))
    partial = reader.client.post(f"{path}/sign")
    reader.client.put(path, draft_body(images, impression=None))
    no_impression = reader.client.post(f"{path}/sign")

    assert nothing.status_code == 409
    assert partial.status_code == 422
    assert images[1] in partial.get_json()["errors"]["findings"][0]
    assert no_impression.status_code == 422


def test_bad_drafts_are_refused(case, riverside: Practice):
    referral_id, reader, images = case
    path = f"/api/v1/referrals/{referral_id}/report"
    other_referral = ready_referral(riverside)
    foreign_image = riverside.staff.get(f"/api/v1/referrals/{other_referral}").get_json()["images"][0]["id"]

    for body in (draft_body([foreign_image]), draft_body([images[0], images[0]]),
                 draft_body(images, colour="blue"),
                 {"findings": [{"image_id": images[0], "diagnostic_quality": "blurry"}]},
                 {"findings": [{"image_id": images[0], "crown": "x" * 2001}]}):
        assert reader.client.put(path, body).status_code == 422, body
    assert riverside.dentist.put(path, draft_body(images)).status_code == 403


def test_only_the_assigned_reader_writes_and_only_while_the_case_is_theirs(world: World, riverside: Practice):
    reader = world.reader(world.reader_practice("Coastal Endodontics"))
    referral_id = ready_referral(riverside)
    submit(riverside, referral_id)
    images = [i["id"] for i in riverside.staff.get(f"/api/v1/referrals/{referral_id}").get_json()["images"]]

    before_accept = reader.client.put(f"/api/v1/referrals/{referral_id}/report", draft_body(images))

    assert before_accept.status_code == 409


def test_a_nondiagnostic_image_is_flagged_for_billing_and_a_retake(case):
    referral_id, reader, images = case
    body = draft_body(images)
    body["findings"][0]["diagnostic_quality"] = "nondiagnostic"

    drafted = reader.client.put(f"/api/v1/referrals/{referral_id}/report", body).get_json()
    retake = reader.client.post(f"/api/v1/referrals/{referral_id}/retake-requests",
                                {"image_ids": drafted["nondiagnostic_image_ids"], "reason": "cone cut"})

    assert drafted["nondiagnostic_image_ids"] == [images[0]]
    assert retake.status_code == 201


def test_other_practices_never_see_the_report(case, hillside: Practice, world: World):
    referral_id, reader, images = case
    reader.client.put(f"/api/v1/referrals/{referral_id}/report", draft_body(images))
    reader.client.post(f"/api/v1/referrals/{referral_id}/report/sign")
    colleague = world.reader(reader.organization_id, last_name="Colleague")

    for outsider in (hillside.staff, hillside.billing, colleague.client):
        assert outsider.get(f"/api/v1/referrals/{referral_id}/report").status_code == 404
