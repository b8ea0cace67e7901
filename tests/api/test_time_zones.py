"""Each practice has an IANA time zone; people read times in it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask import Flask

from referral import timezones
from referral.models import AuditEvent
from tests.support.world import Practice, World, organization_body


def test_a_new_practice_takes_the_zone_of_its_state_unless_it_names_one(world: World):
    address = {"line1": "1 Main St", "city": "Austin", "state": "TX", "zip": "78701"}
    texas = world.admin.post("/api/v1/organizations", organization_body("Austin Dental", address=address))
    assert texas.status_code == 201
    assert texas.get_json()["time_zone"] == "America/Chicago"

    panhandle = world.admin.post("/api/v1/organizations", organization_body(
        "El Paso Dental", address={**address, "city": "El Paso"}, time_zone="America/Denver"))
    assert panhandle.status_code == 201
    assert panhandle.get_json()["time_zone"] == "America/Denver"


@pytest.mark.parametrize("bad", ["PST", "UTC+2", "../../etc/passwd", "America/Nowhere", "", 5, "x" * 70])
def test_a_time_zone_that_is_not_an_iana_name_is_refused_and_nothing_is_stored(world: World, bad: object):
    before = world.admin.get("/api/v1/organizations").get_json()["items"]
    response = world.admin.post("/api/v1/organizations", organization_body(time_zone=bad))
    assert response.status_code == 422
    assert "time_zone" in response.get_json()["errors"]["json"]
    assert world.admin.get("/api/v1/organizations").get_json()["items"] == before


def test_the_practice_admin_changes_the_zone_and_the_change_is_audited(app: Flask, riverside: Practice,
                                                                       hillside: Practice):
    admin = riverside.org_admin
    url = f"/api/v1/organizations/{riverside.id}"
    assert admin.get(url).get_json()["time_zone"] == "America/Los_Angeles"

    changed = admin.patch(url, {"time_zone": "America/New_York"})
    assert changed.status_code == 200
    assert changed.get_json()["time_zone"] == "America/New_York"
    assert riverside.staff.patch(url, {"time_zone": "America/Chicago"}).status_code == 403
    assert hillside.org_admin.patch(url, {"time_zone": "America/Chicago"}).status_code == 404
    assert admin.patch(url, {"time_zone": "Mars/Olympus"}).status_code == 422
    assert admin.get(url).get_json()["time_zone"] == "America/New_York"
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        audit = session.query(AuditEvent).filter_by(action="organization.update").one()
        assert audit.details == {"changes": {"time_zone": {"from": "America/Los_Angeles",
                                                           "to": "America/New_York"}}}


def test_times_read_in_the_practice_zone_with_the_zone_named():
    moment = datetime(2026, 12, 2, 17, 30, tzinfo=UTC)
    assert timezones.describe(moment, "America/Los_Angeles") == "Dec 2, 2026, 9:30 AM PST"
    assert timezones.describe(moment, "America/New_York") == "Dec 2, 2026, 12:30 PM EST"
    assert timezones.describe(datetime(2026, 7, 1, 3, 5, tzinfo=UTC), "America/Los_Angeles") == \
        "Jun 30, 2026, 8:05 PM PDT"
    assert timezones.describe(moment, None) == "Dec 2, 2026, 5:30 PM UTC"
    assert timezones.describe(moment, "America/Los_Angeles", with_time=False) == "Dec 2, 2026"


def test_a_wall_time_typed_in_a_practice_zone_becomes_the_right_moment():
    typed = datetime(2026, 12, 1, 9, 30)  # noqa: DTZ001 - a wall time as a form gives it, without a zone
    assert timezones.from_local(typed, "America/Los_Angeles") == datetime(2026, 12, 1, 17, 30, tzinfo=UTC)
    offset = datetime(2026, 12, 1, 9, 30, tzinfo=timezones.zone("America/New_York"))
    assert timezones.from_local(offset, "America/Los_Angeles") == datetime(2026, 12, 1, 14, 30, tzinfo=UTC)


def test_every_state_and_territory_has_a_zone_the_server_knows():
    from referral.validation import US_STATES

    assert set(timezones.STATE_ZONES) == set(US_STATES)
    assert all(timezones.is_zone(name) for name in timezones.STATE_ZONES.values())
