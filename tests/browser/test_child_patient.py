"""Through the pages only, at tablet width with touch and the browser in New York: a child registered on a
parent's dental plan, a refusal shown in words, then the record found again and corrected."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect

from referral.models import Patient
from tests.browser.conftest import evaluate_settled
from tests.support.world import Practice, World

pytestmark = pytest.mark.slow
PASSWORD = "long enough browser password"


@pytest.fixture
def tablet(chromium: Any, server_url: str) -> Iterator[Any]:
    context = chromium.new_context(base_url=server_url, viewport={"width": 768, "height": 1024}, has_touch=True,
                                   is_mobile=False, timezone_id="America/New_York", locale="en-US")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    yield page
    context.close()


def _stored(app: Flask, patient_id: str) -> Patient:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        patient = session.get(Patient, uuid.UUID(patient_id))
        assert patient is not None
        session.expunge(patient)
        return patient


def test_a_child_is_registered_on_a_parents_insurance_through_the_pages(app: Flask, world: World,
                                                                       riverside: Practice, tablet: Any):
    created = world.admin.post(f"/api/v1/organizations/{riverside.id}/users", {
        "email": "front.desk@riverside.example.com", "role": "staff", "password": PASSWORD,
        "provider_id": riverside.hygienist_provider_id})
    assert created.status_code == 201, created.get_json()
    page = tablet
    assert page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == "America/New_York"

    page.goto("/login")
    page.get_by_label("Email").fill("front.desk@riverside.example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/$"))

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Patients").click()
    page.get_by_role("link", name="New patient").click()
    page.get_by_label("First name", exact=True).fill("Ava")
    page.get_by_label("Last name", exact=True).fill("Rivera")
    page.get_by_label("Birth date", exact=True).fill("2016-05-14")
    page.get_by_label("Sex", exact=True).select_option("F")
    page.get_by_label("State of residence").select_option("CA")
    page.get_by_label("Street address", exact=True).fill("12 Oak Street")
    page.get_by_label("City", exact=True).fill("Sacramento")
    page.get_by_label("ZIP code", exact=True).fill("95816-4321")
    subscriber_name = page.get_by_label("Subscriber's first name")
    expect(page.get_by_label("Insurance company (payer)")).to_be_hidden()
    page.get_by_label("The patient has dental insurance").check()
    page.get_by_label("Insurance company (payer)").fill("Example Dental Plan")
    page.get_by_label("Payer id").fill("60054")
    page.get_by_label("Member id (the subscriber's)").fill("W123456789")
    page.get_by_label("Group number (optional)").fill("55001")
    expect(subscriber_name).to_be_hidden()
    page.get_by_label("Patient's relationship to the subscriber").select_option("child")
    expect(subscriber_name).to_be_visible()

    # Saved without naming the subscriber: refused, in words, and nothing is stored.
    page.get_by_role("button", name="Add patient").click()
    errors = page.locator("#patient-errors")
    expect(errors).to_contain_text("covered as the subscriber's child")
    expect(errors).to_contain_text("Subscriber:")
    assert "coverage" not in errors.inner_text()
    assert "_" not in errors.inner_text()
    assert riverside.staff.get("/api/v1/patients?q=Rivera").get_json()["items"] == []

    subscriber_name.fill("Maria")
    page.get_by_label("Subscriber's last name").fill("Rivera")
    page.get_by_label("Subscriber's birth date").fill("1984-03-09")
    page.get_by_label("Subscriber's sex").select_option("F")
    expect(page.get_by_label("The subscriber lives at the patient's address")).to_be_checked()
    page.get_by_role("button", name="Add patient").click()
    page.wait_for_url(re.compile(r"/patients/[0-9a-f-]{36}\?saved=1$"))
    expect(page.locator("[data-saved]")).to_contain_text("Saved")
    patient_id = page.url.split("/patients/")[1].split("?")[0]

    stored = _stored(app, patient_id)
    assert stored.birth_date.isoformat() == "2016-05-14", "a date is a date in any time zone"
    assert stored.coverage is not None
    assert stored.coverage["relationship"] == "child"
    assert stored.subscriber == {
        "first_name": "Maria", "last_name": "Rivera", "birth_date": stored.coverage_subscriber_birth_date,
        "sex": "F", "address": {"line1": "12 Oak Street", "line2": None, "city": "Sacramento", "state": "CA",
                                "zip": "958164321"}}
    assert stored.coverage_subscriber_birth_date.isoformat() == "1984-03-09"

    # Found again by birth date, and corrected: the subscriber moved.
    page.get_by_role("link", name="All patients").click()
    page.get_by_label("Find a patient").fill("2016-05-14")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Rivera, Ava").click()
    expect(page.get_by_label("Subscriber's first name")).to_have_value("Maria")
    page.get_by_label("The subscriber lives at the patient's address").uncheck()
    page.get_by_label("Subscriber's street address").fill("40 Pine Avenue")
    page.get_by_label("Subscriber's city").fill("Davis")
    page.get_by_label("Subscriber's state").select_option("CA")
    page.get_by_label("Subscriber's ZIP code").fill("95616")
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url(re.compile(r"\?saved=1$"))
    expect(page.locator("[data-saved]")).to_contain_text("claims were checked again")
    assert _stored(app, patient_id).coverage_subscriber_city == "Davis"
    assert evaluate_settled(page, "document.documentElement.scrollWidth") <= 768, "nothing runs off a tablet's width"
    assert page.errors == [] or all("422" in text for text in page.errors), page.errors
