"""The referring dentist's structured question: asked on the referral, read by the reader, answered in the report."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask

from referral.models import Referral
from tests.support.api import draft_body, ready_referral, submit
from tests.support.web import sign_in, user_with_password
from tests.support.world import Practice, Reader, World, referral_body


@pytest.fixture
def reader(world: World) -> Reader:
    return world.reader(world.reader_practice("Coastal Endodontics"))


def test_the_question_is_kept_on_the_referral_and_shown_to_both_sides(app: Flask, world: World,
                                                                    riverside: Practice, reader: Reader):
    created = riverside.staff.post("/api/v1/referrals", referral_body(
        riverside, questions=["restorability", "diagnosis"], restorability_decided_by="referring_dentist",
        scope="evaluate_and_treat", target_provider_id=reader.provider_id))

    assert created.status_code == 201, created.get_json()
    assert created.get_json()["question"] == {"asks": ["restorability", "diagnosis"],
                                              "restorability_decided_by": "referring_dentist",
                                              "scope": "evaluate_and_treat"}
    plain = riverside.staff.post("/api/v1/referrals", referral_body(riverside))
    assert plain.get_json()["question"] == {"asks": [], "restorability_decided_by": None, "scope": "evaluate_only"}


def test_the_reader_answers_the_question_in_the_report(app: Flask, world: World, riverside: Practice,
                                                       reader: Reader):
    referral_id = ready_referral(riverside, target_provider_id=reader.provider_id, questions=["treatment_plan"])
    submit(riverside, referral_id)
    reader.client.post(f"/api/v1/referrals/{referral_id}/accept")
    case = reader.client.get(f"/api/v1/referrals/{referral_id}").get_json()
    assert case["question"]["asks"] == ["treatment_plan"]
    images = [i["id"] for i in case["images"]]

    drafted = reader.client.put(f"/api/v1/referrals/{referral_id}/report",
                                draft_body(images, answer="Root canal treatment, then a crown"))
    assert drafted.status_code == 200, drafted.get_json()
    assert drafted.get_json()["answer"] == "Root canal treatment, then a crown"
    assert reader.client.post(f"/api/v1/referrals/{referral_id}/report/sign").status_code == 200

    report = riverside.staff.get(f"/api/v1/referrals/{referral_id}/report").get_json()
    assert report["answer"] == "Root canal treatment, then a crown"

    browser = app.test_client()
    sign_in(browser, user_with_password(world, riverside))
    page = browser.get(f"/referrals/{referral_id}").get_data(as_text=True)
    assert "The referring dentist asks for: <strong>Treatment plan</strong>" in page
    assert 'data-testid="answer">Root canal treatment, then a crown<' in page


@pytest.mark.parametrize("extra", [
    {"questions": ["prognosis"]},
    {"questions": ["diagnosis", "diagnosis"]},
    {"questions": "diagnosis"},
    {"restorability_decided_by": "reader"},
    {"questions": ["restorability"], "restorability_decided_by": "the patient"},
])
def test_a_question_that_does_not_make_sense_is_refused_and_nothing_is_stored(
        app: Flask, world: World, riverside: Practice, extra: dict[str, object]):
    response = riverside.staff.post("/api/v1/referrals", referral_body(riverside, **extra))

    assert response.status_code == 422, response.get_json()
    assert set(response.get_json()["errors"]["json"]) <= {"questions", "restorability_decided_by"}
    with app.extensions["referral.sessionmaker"]() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Referral)) == 0


def test_the_new_referral_form_offers_the_questions(app: Flask, world: World, riverside: Practice):
    browser = app.test_client()
    sign_in(browser, user_with_password(world, riverside))

    page = browser.get("/referrals/new").get_data(as_text=True)

    for value in ("diagnosis", "treatment_plan", "restorability"):
        assert f'name="questions" value="{value}"' in page
    assert 'name="restorability_decided_by"' in page
