"""The reader's desk through the test client: the inbox (age, tooth, urgency, time left, search) and the case
page (findings beside the viewer, photo fields, the first named tooth's image first, phrases, shortcuts)."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from referral.db import utcnow
from referral.models import Referral, User
from referral.services.web_auth import hash_password
from tests.support import samples
from tests.support.api import new_referral, submit, upload
from tests.support.web import PASSWORD, sign_in, user_with_password
from tests.support.world import PATIENT, Practice, Reader, World

CONSENT = {"given_by": "patient", "method": "verbal", "given_at": "2026-01-05T09:00:00Z"}


def _reader_client(app: Flask, reader: Reader) -> FlaskClient:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        user = session.scalar(sa.select(User).where(User.provider_id == uuid.UUID(reader.provider_id)))
        assert user is not None
        user.password_hash = hash_password(PASSWORD)
        session.commit()
        email = user.email
    client = app.test_client()
    sign_in(client, email)
    return client


def _case(practice: Practice, reader: Reader, first: str, last: str, born: str, teeth: list[str],
          urgency: str = "urgent") -> str:
    patient = practice.staff.post("/api/v1/patients", dict(PATIENT, first_name=first, last_name=last,
                                                            birth_date=born))
    assert patient.status_code == 201, patient.get_json()
    consent = dict(CONSENT, given_by="guardian" if born > "2009" else "patient")
    referral_id = new_referral(practice, teeth=teeth, consent=consent, patient_id=patient.get_json()["id"],
                               target_provider_id=reader.provider_id, urgency=urgency)
    dicom_name = f"{last}^{first}"
    for tooth in teeth:
        sent = upload(practice.staff, practice, referral_id,
                      samples.dicom_bytes(teeth=(), patient_name=dicom_name, birth_date=born.replace("-", "")),
                      teeth=tooth)
        assert sent.status_code == 201, sent.get_json()
    assert submit(practice, referral_id).get_json()["assigned_provider_id"] == reader.provider_id
    return referral_id


def _row(page: str, referral_id: str) -> str:
    start = page.index(f'data-referral-id="{referral_id}"')
    return page[start:page.index("</tr>", start)]


def test_the_inbox_shows_age_tooth_urgency_and_time_left_and_searches_on_the_server(
        app: Flask, world: World, riverside: Practice):
    reader = world.reader(world.reader_practice("Coastal Endodontics"))
    adult = _case(riverside, reader, "Maria", "Garcia", "1980-01-01", ["30", "19"], urgency="emergency")
    child = _case(riverside, reader, "Leo", "Park", (utcnow() - timedelta(days=400)).date().isoformat(), ["E"],
                  urgency="routine")
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        session.execute(sa.update(Referral).where(Referral.id == uuid.UUID(adult))
                        .values(due_at=utcnow() + timedelta(hours=2, minutes=30)))
        session.execute(sa.update(Referral).where(Referral.id == uuid.UUID(child))
                        .values(due_at=utcnow() - timedelta(hours=3, minutes=5)))
        session.commit()
    client = _reader_client(app, reader)

    inbox = client.get("/").get_data(as_text=True)
    adult_row, child_row = _row(inbox, adult), _row(inbox, child)
    assert 'data-testid="age">46 y<' in adult_row
    assert 'data-testid="age">13 mo<' in child_row, "under two, in months"
    assert 'data-testid="teeth">30, 19<' in adult_row
    assert "emergency" in adult_row
    assert "routine" in child_row
    assert re.search(r"2 h (29|30) min left", adult_row)
    assert re.search(r"3 h (4|5) min overdue", child_row)
    assert 'role="search"' in inbox
    assert 'name="q"' in inbox

    found = client.get("/?q=garcia").get_data(as_text=True)
    assert adult in found
    assert child not in found
    assert 'value="garcia"' in found, "the box keeps what was searched"
    by_tooth = client.get("/?q=tooth%20E").get_data(as_text=True)
    assert child in by_tooth
    assert adult not in by_tooth
    nothing = client.get("/?q=nobody&show=all")
    assert nothing.status_code == 200
    assert "No case of yours matches" in nothing.get_data(as_text=True)


def test_a_search_that_cannot_be_run_is_answered_on_the_inbox_with_the_reason(app: Flask, world: World,
                                                                              riverside: Practice):
    reader = world.reader(world.reader_practice("Coastal Endodontics"))
    referral_id = _case(riverside, reader, "Maria", "Garcia", "1980-01-01", ["19"])
    client = _reader_client(app, reader)

    too_long = client.get("/?q=" + "x" * 150)
    control = client.get("/?q=bad%01byte")

    for response in (too_long, control):
        page = response.get_data(as_text=True)
        assert response.status_code == 422
        assert "The search could not be run" in page
        assert 'aria-invalid="true"' in page
        assert referral_id not in page
    assert "At most 100 characters" in too_long.get_data(as_text=True)


def test_the_case_page_puts_the_findings_beside_the_viewer_for_the_reader(app: Flask, world: World,
                                                                          riverside: Practice):
    reader = world.reader(world.reader_practice("Coastal Endodontics"))
    referral_id = new_referral(riverside, teeth=["19", "30"], consent=CONSENT, target_provider_id=reader.provider_id)
    other = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes(teeth=()), teeth="30")
    photo = upload(riverside.staff, riverside, referral_id, samples.jpeg_bytes(), filename="cheek.jpg",
                   kind="photo_intraoral", teeth="19")
    first_tooth = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes(teeth=()), teeth="19")
    assert {other.status_code, photo.status_code, first_tooth.status_code} == {201}
    assert submit(riverside, referral_id).get_json()["assigned_provider_id"] == reader.provider_id
    assert reader.client.post(f"/api/v1/referrals/{referral_id}/accept").status_code == 200
    assert reader.client.post("/api/v1/me/phrases", {"text": "No periapical radiolucency."}).status_code == 201
    client = _reader_client(app, reader)

    page = client.get(f"/referrals/{referral_id}").get_data(as_text=True)

    desk = page[page.index('data-testid="reader-desk"'):]
    assert desk.index("data-viewer") < desk.index("data-report-form"), "the viewer and the findings share the desk"
    # the viewer opens on the periapical of tooth 19, the first tooth named (a radiograph before its photo)
    start = first_tooth.get_json()["id"]
    assert re.search(rf'data-pane="1" data-image-id="{start}"', page)
    assert re.search(rf'data-image-id="{start}"[^>]*aria-pressed="true"', page)
    # a photo asks only for what a photo shows
    photo_id = photo.get_json()["id"]
    photo_set = page[page.index(f'data-finding data-image-id="{photo_id}"'):]
    photo_set = photo_set[:photo_set.index("</fieldset>")]
    assert f'id="f-{photo_id}-crown"' in photo_set
    assert f'id="f-{photo_id}-other"' in photo_set
    for radiographic in ("roots", "pdl_space", "lamina_dura", "periapical_area", "bone_levels"):
        assert f'id="f-{photo_id}-{radiographic}"' not in photo_set
        assert f'id="f-{start}-{radiographic}"' in page
    assert page.count("data-wnl-fill") == 3, "a within-normal-limits fill for each image"
    assert 'data-text="No periapical radiolucency."' in page, "the reader's own phrases"
    assert 'data-testid="viewer-shortcuts"' in page
    assert "Next image" in page
    assert "More / less contrast" in page
    assert "desk.js" in page

    # the office sees neither the desk nor the reader's phrases
    office = app.test_client()
    sign_in(office, user_with_password(world, riverside))
    office_page = office.get(f"/referrals/{referral_id}").get_data(as_text=True)
    assert "reader-desk" not in office_page
    assert "No periapical radiolucency." not in office_page
