"""Turnaround for organization admins: per practice and per reader, hours from sending to acceptance and to the
signed report, and overdue counts; as JSON and as a page with an inline SVG chart."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import Flask

from referral.db import utcnow
from referral.models import Referral, Report
from tests.support.api import ready_referral, signed_case, submit
from tests.support.web import sign_in, user_with_password
from tests.support.world import Client, Practice, Reader, World

PATH = "/api/v1/reports/turnaround"


@pytest.fixture
def reader(world: World) -> Reader:
    return world.reader(world.reader_practice("Coastal Endodontics"), last_name="Okafor")


def _set_times(app: Flask, referral_id: str, sent: datetime, accepted: datetime | None, signed: datetime | None,
               due: datetime) -> None:
    with app.extensions["referral.sessionmaker"]() as session:
        referral = session.get(Referral, uuid.UUID(referral_id))
        assert referral is not None
        referral.submitted_at, referral.accepted_at, referral.due_at = sent, accepted, due
        if signed is not None:
            session.execute(sa.update(Report).where(Report.referral_id == referral.id).values(signed_at=signed))
        session.commit()


def _org_admin(world: World, organization_id: str) -> Client:
    created = world.admin.post(f"/api/v1/organizations/{organization_id}/users",
                               {"email": f"admin-{uuid.uuid4().hex[:6]}@example.com", "role": "org_admin"})
    assert created.status_code == 201, created.get_json()
    return world.as_token(created.get_json()["token"])


@pytest.fixture
def cases(app: Flask, world: World, riverside: Practice, reader: Reader) -> datetime:
    """Three cases sent three days ago: signed in 10 h (on time), signed in 30 h (late), and one still waiting past
    its deadline."""
    sent = utcnow() - timedelta(days=3)
    on_time = signed_case(world, riverside, reader, target_provider_id=reader.provider_id)
    _set_times(app, on_time, sent, sent + timedelta(hours=2), sent + timedelta(hours=10), sent + timedelta(hours=24))
    late = signed_case(world, riverside, reader, target_provider_id=reader.provider_id)
    _set_times(app, late, sent, sent + timedelta(hours=4), sent + timedelta(hours=30), sent + timedelta(hours=24))
    waiting = ready_referral(riverside, target_provider_id=reader.provider_id)
    submit(riverside, waiting)
    _set_times(app, waiting, sent, None, None, sent + timedelta(hours=4))
    ready_referral(riverside)  # a draft never sent is not counted
    return sent


def test_the_referring_practice_sees_its_cases_per_reader_and_overdue_counts(
        app: Flask, world: World, riverside: Practice, reader: Reader, cases: datetime):
    first = (cases - timedelta(days=1)).date().isoformat()
    last = utcnow().date().isoformat()

    response = riverside.org_admin.get(f"{PATH}?from={first}&to={last}")

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["from"] == first
    assert body["to"] == last
    assert body["totals"] == {"sent": 3, "accepted": 2, "reported": 2, "median_hours_to_accept": 3.0,
                              "mean_hours_to_accept": 3.0, "median_hours_to_report": 20.0,
                              "mean_hours_to_report": 20.0, "overdue": 2, "overdue_open": 1}
    [practice] = body["by_practice"]
    assert practice["name"] == "Riverside Family Dental"
    assert practice["sent"] == 3
    [row] = body["by_reader"]
    assert row["provider_id"] == reader.provider_id
    assert row["name"] == "Alex Okafor, DDS"
    assert row["overdue"] == 2


def test_the_reading_practice_sees_the_cases_given_to_its_readers_and_others_see_nothing(
        app: Flask, world: World, riverside: Practice, hillside: Practice, reader: Reader, cases: datetime):
    reading_admin = _org_admin(world, reader.organization_id)

    theirs = reading_admin.get(PATH).get_json()
    assert theirs["totals"]["sent"] == 3
    assert [p["name"] for p in theirs["by_practice"]] == ["Riverside Family Dental"]
    assert hillside.org_admin.get(PATH).get_json()["totals"]["sent"] == 0
    # a period before the cases were sent has none of them
    before = (cases - timedelta(days=10)).date().isoformat()
    earlier = riverside.org_admin.get(f"{PATH}?from={before}&to={before}").get_json()
    assert earlier["totals"]["sent"] == 0
    assert earlier["by_reader"] == []


def test_only_organization_admins_see_turnaround(app: Flask, world: World, riverside: Practice, reader: Reader):
    for client in (riverside.staff, riverside.dentist, riverside.billing, reader.client, world.admin):
        assert client.get(PATH).status_code == 403
    assert world.anonymous.get(PATH).status_code == 401


@pytest.mark.parametrize("query", ["from=2026-13-01", "to=yesterday", "from=2026-05-02&to=2026-05-01",
                                   "from=2024-01-01&to=2025-12-31"])
def test_bad_dates_are_refused_with_422(app: Flask, riverside: Practice, query: str):
    response = riverside.org_admin.get(f"{PATH}?{query}")

    assert response.status_code == 422, response.get_json()
    assert response.get_json()["message"]


def test_the_turnaround_page_draws_an_inline_chart(app: Flask, world: World, riverside: Practice, reader: Reader,
                                                   cases: datetime):
    browser = app.test_client()
    sign_in(browser, user_with_password(world, riverside, "org_admin"))

    page = browser.get("/reports/turnaround")

    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-testid="turnaround-chart"' in html
    assert "<svg" in html
    assert "Alex Okafor, DDS" in html
    assert not re.search(r'(src|href)="https?://', html)
    assert browser.get("/reports/turnaround?from=someday").status_code == 422
    staff = app.test_client()
    sign_in(staff, user_with_password(world, riverside, "staff"))
    assert staff.get("/reports/turnaround").status_code == 403
