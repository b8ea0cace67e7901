"""What is new to a person: email choices, the highlighted cases and the count in the page header, and the emails
themselves, sent to a local SMTP server and checked for patient details."""

from __future__ import annotations

import email
import email.policy
import json
import re
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from referral.config import ConfigError, load_settings
from referral.models import AuditEvent, NotificationPreference
from storage import Storage
from tests.support.api import ready_referral, signed_case, submit
from tests.support.web import sign_in, user_with_password
from tests.support.webhooks import SmtpSink, notifications_app
from tests.support.world import Practice, Reader, World

BASE = "https://referrals.example.com"
PATIENT_DETAILS = ("Jane", "Doe", "1980", "W123456789", "Oak Street", "Lingering pain")
ALL_OFF = {"routed": False, "report_signed": False, "retake_requested": False, "declined": False,
           "message": False, "access_alerts": False}


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


@pytest.fixture
def app(tmp_path: Path, database_url: str, store: Storage, sink: SmtpSink) -> Iterator[Flask]:
    with notifications_app(tmp_path, database_url, store, smtp_url=sink.url, mail_from="cases@clinic.example.com",
                           public_base_url=BASE) as application:
        yield application


@pytest.fixture
def reader(world: World) -> Reader:
    return world.reader(world.reader_practice("Coastal Endodontics"))


def _work(app: Flask) -> dict[str, int]:
    result = app.test_cli_runner().invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def _mails(sink: SmtpSink) -> list[tuple[list[str], EmailMessage]]:
    out = []
    for _sender, recipients, raw in sink.messages:
        message = email.message_from_string(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        out.append((recipients, message))
    return out


def _no_patient_details(message: EmailMessage, *extra: str) -> None:
    text = message.get_content() + str(message["Subject"])
    for detail in (*PATIENT_DETAILS, *extra):
        assert detail not in text, detail
    assert "/api/" not in text


# -- choices ----------------------------------------------------------------------------------------------


def test_each_person_reads_and_changes_their_own_email_choices(app: Flask, world: World, riverside: Practice):
    initial = riverside.staff.get("/api/v1/me/notifications")
    assert initial.status_code == 200
    assert initial.get_json() == {"email": dict(ALL_OFF, routed=True, access_alerts=True), "email_enabled": True}

    changed = riverside.staff.put("/api/v1/me/notifications", {"report_signed": True, "message": True})

    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["email"] == dict(ALL_OFF, routed=True, report_signed=True, message=True,
                                               access_alerts=True)
    assert riverside.staff.get("/api/v1/me/notifications").get_json()["email"]["message"] is True
    # another person of the same practice keeps the defaults
    assert riverside.dentist.get("/api/v1/me/notifications").get_json()["email"]["message"] is False
    with app.extensions["referral.sessionmaker"]() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                              .where(AuditEvent.action == "notifications.update")) == 1


def test_bad_choices_are_refused_and_nothing_is_stored(app: Flask, world: World, riverside: Practice):
    for body in ({}, {"message": "sometimes"}, {"sms": True}, {"message": True, "user_id": riverside.users["dentist"]}):
        response = riverside.staff.put("/api/v1/me/notifications", body)
        assert response.status_code == 422, (body, response.get_json())
    assert world.admin.get("/api/v1/me/notifications").status_code == 403
    assert world.admin.put("/api/v1/me/notifications", {"message": True}).status_code == 403
    assert world.anonymous.get("/api/v1/me/notifications").status_code == 401
    assert world.anonymous.put("/api/v1/me/notifications", {"message": True}).status_code == 401
    with app.extensions["referral.sessionmaker"]() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(NotificationPreference)) == 0


def test_public_base_url_must_be_an_address_of_the_pages():
    base = {"APP_ENV": "test"}
    assert load_settings(dict(base, PUBLIC_BASE_URL="https://referrals.example.com/")).public_base_url == BASE
    # Outside production it defaults to the address `make run` serves on.
    assert load_settings(base).public_base_url == "http://127.0.0.1:5000"
    for bad in ("referrals.example.com", "ftp://referrals.example.com", "https://referrals.example.com/?a=1",
                "https://user:pw@referrals.example.com"):
        with pytest.raises(ConfigError, match="PUBLIC_BASE_URL"):
            load_settings(dict(base, PUBLIC_BASE_URL=bad))


# -- the pages ------------------------------------------------------------------------------------------------


def test_the_office_list_highlights_a_new_report_and_a_new_message_until_the_case_is_opened(
        app: Flask, world: World, riverside: Practice, reader: Reader):
    browser = app.test_client()
    csrf = sign_in(browser, user_with_password(world, riverside))
    quiet = ready_referral(riverside)
    referral_id = signed_case(world, riverside, reader, target_provider_id=reader.provider_id)

    home = browser.get("/").get_data(as_text=True)
    assert 'data-testid="news-count"' in home
    assert re.search(r'data-testid="news-count"[^>]*>1 new<', home)
    assert 'data-news="New report"' in home
    assert home.count("highlight") == 1, quiet

    read = browser.post(f"/api/v1/referrals/{referral_id}/messages/read", headers={"X-CSRF-Token": csrf})
    assert read.status_code == 200
    home = browser.get("/").get_data(as_text=True)
    assert 'data-testid="news-count"' not in home
    assert "data-news=" not in home

    assert reader.client.post(f"/api/v1/referrals/{referral_id}/messages", {"body": "Call me"}).status_code == 201
    home = browser.get("/").get_data(as_text=True)
    assert 'data-news="New message"' in home


def test_a_retake_request_and_a_case_without_a_reader_are_highlighted(app: Flask, world: World,
                                                                      riverside: Practice, reader: Reader):
    browser = app.test_client()
    sign_in(browser, user_with_password(world, riverside, "dentist"))
    retake = ready_referral(riverside, target_provider_id=reader.provider_id)
    submit(riverside, retake)
    image = riverside.staff.get(f"/api/v1/referrals/{retake}").get_json()["images"][0]["id"]
    assert reader.client.post(f"/api/v1/referrals/{retake}/retake-requests",
                              {"image_ids": [image], "reason": "Apex cut off"}).status_code == 201
    stranded = ready_referral(riverside, specialty="orthodontics")
    assert submit(riverside, stranded).get_json()["status"] == "unassigned"

    home = browser.get("/").get_data(as_text=True)

    assert 'data-news="Retake requested"' in home
    assert 'data-news="Needs a reader"' in home
    assert re.search(r'data-testid="news-count"[^>]*>2 new<', home)


def test_the_notifications_page_shows_the_choices(app: Flask, world: World, riverside: Practice):
    browser = app.test_client()
    sign_in(browser, user_with_password(world, riverside))

    page = browser.get("/settings/notifications")

    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-url="/api/v1/me/notifications"' in html
    assert 'name="routed" checked' in html
    assert 'name="message">' in html
    assert 'data-testid="email-off"' not in html


# -- the emails -----------------------------------------------------------------------------------------------


def test_the_office_is_emailed_a_link_to_the_case_page_when_it_opted_in_and_never_a_patient_detail(
        app: Flask, sink: SmtpSink, world: World, riverside: Practice, reader: Reader):
    riverside.staff.put("/api/v1/me/notifications", {"report_signed": True})
    reader.client.put("/api/v1/me/notifications", {"routed": False})
    referral_id = signed_case(world, riverside, reader, target_provider_id=reader.provider_id)

    counts = _work(app)

    assert counts["emailed"] == 1
    [(recipients, message)] = _mails(sink)
    assert recipients == ["staff@riverside-family-dental.example.com"]
    assert message["Subject"] == "A report is ready"
    assert f"{BASE}/referrals/{referral_id}" in message.get_content()
    _no_patient_details(message)
    assert _work(app)["emailed"] == 0


def test_a_message_emails_the_other_side_without_its_text(app: Flask, sink: SmtpSink, world: World,
                                                          riverside: Practice, reader: Reader):
    referral_id = ready_referral(riverside, target_provider_id=reader.provider_id)
    submit(riverside, referral_id)
    reader.client.put("/api/v1/me/notifications", {"routed": False, "message": True})
    for client in (riverside.staff, riverside.dentist):
        client.put("/api/v1/me/notifications", {"message": True})
    _work(app)
    assert sink.messages == []

    riverside.staff.post(f"/api/v1/referrals/{referral_id}/messages", {"body": "Secret words about Jane"})
    reader.client.post(f"/api/v1/referrals/{referral_id}/messages", {"body": "Private reply words"})
    _work(app)

    mails = _mails(sink)
    assert sorted(r for recipients, _ in mails for r in recipients) == sorted([
        "dentist@riverside-family-dental.example.com", f"{reader.provider_id}@readers.example.com",
        "staff@riverside-family-dental.example.com"])
    for _recipients, message in mails:
        assert message["Subject"] == "New message on a referral"
        assert f"{BASE}/referrals/{referral_id}" in message.get_content()
        _no_patient_details(message, "Secret words", "Private reply")


def test_a_decline_and_a_retake_request_email_the_office_once_each(app: Flask, sink: SmtpSink, world: World,
                                                                   riverside: Practice, reader: Reader):
    riverside.dentist.put("/api/v1/me/notifications", {"declined": True, "retake_requested": True})
    declined = ready_referral(riverside, target_provider_id=reader.provider_id)
    submit(riverside, declined)
    retake = ready_referral(riverside, target_provider_id=reader.provider_id)
    submit(riverside, retake)
    image = riverside.staff.get(f"/api/v1/referrals/{retake}").get_json()["images"][0]["id"]
    reader.client.post(f"/api/v1/referrals/{retake}/retake-requests", {"image_ids": [image], "reason": "Blurred"})
    # the only reader declines: the case is left without one, and the office hears it once
    reader.client.post(f"/api/v1/referrals/{declined}/decline", {"reason": "Away"})

    _work(app)

    subjects = sorted(str(m["Subject"]) for _r, m in _mails(sink) if "routed" not in str(m["Subject"]))
    assert subjects == ["A reader declined a referral", "Retakes requested"]
    for recipients, message in _mails(sink):
        if message["Subject"] != "A referral has been routed to you":
            assert recipients == ["dentist@riverside-family-dental.example.com"]
            _no_patient_details(message, "Blurred", "Away")
