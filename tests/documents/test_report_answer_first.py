"""The report leads with the answer: impression, recommendation and the answer to the referring dentist's
question come before the findings by image, and what the reader left empty is not printed."""

from __future__ import annotations

from tests.support.api import FINDING, draft_body, ready_referral, submit
from tests.support.world import Practice, World


def _signed(world: World, riverside: Practice, **overrides: object) -> str:
    reader = world.reader(world.reader_practice("Coastal Endodontics"))
    referral_id = ready_referral(riverside, **overrides)
    assert submit(riverside, referral_id).status_code == 200
    assert reader.client.post(f"/api/v1/referrals/{referral_id}/accept").status_code == 200
    images = [i["id"] for i in riverside.staff.get(f"/api/v1/referrals/{referral_id}").get_json()["images"]]
    draft = draft_body(images, answer="Restorable with a crown after root canal treatment.")
    draft["findings"][0] = {**FINDING, "image_id": images[0], "bone_levels": None, "other": None}
    saved = reader.client.put(f"/api/v1/referrals/{referral_id}/report", draft)
    assert saved.status_code == 200, saved.get_json()
    assert reader.client.post(f"/api/v1/referrals/{referral_id}/report/sign").status_code == 200
    return referral_id


def _report(riverside: Practice, referral_id: str) -> str:
    response = riverside.dentist.get(f"/api/v1/referrals/{referral_id}/documents/report.html")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_the_answer_comes_before_the_findings_by_image(world: World, riverside: Practice):
    referral_id = _signed(world, riverside, questions=["diagnosis", "restorability"],
                          restorability_decided_by="reader")
    text = _report(riverside, referral_id)

    order = [text.index(part) for part in (
        "Symptomatic apical periodontitis, tooth 19",     # impression
        "Root canal treatment of tooth 19",              # recommendation
        "Asked for a diagnosis and restorability; the reader decides restorability.",
        "Restorable with a crown after root canal treatment.",
        "Findings by image",
        FINDING["crown"],
    )]
    assert order == sorted(order)


def test_fields_the_reader_left_empty_are_left_out(world: World, riverside: Practice):
    text = _report(riverside, _signed(world, riverside))

    assert "not recorded" not in text.lower()
    assert "Bone levels" not in text
    assert "Other findings" not in text
    assert FINDING["periapical_area"] in text
    # Nothing was asked in particular, so no question is printed (the reader's answer is).
    assert "Asked for" not in text
