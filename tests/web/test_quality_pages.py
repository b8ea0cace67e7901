"""Capture quality warnings on the case page: beside each uploaded image for the office, and in the reader's
viewer once the case is sent."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from flask import Flask

from referral.models import User
from referral.services.web_auth import hash_password
from tests.support import samples
from tests.support.api import new_referral, submit, upload
from tests.support.web import PASSWORD, sign_in, user_with_password
from tests.support.world import Practice, World


def _reader_email(app: Flask, provider_id: str) -> str:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        user = session.scalar(sa.select(User).where(User.provider_id == uuid.UUID(provider_id)))
        assert user is not None
        user.password_hash = hash_password(PASSWORD)
        session.commit()
        return user.email


def test_the_office_and_the_reader_see_the_warnings_in_plain_words(app: Flask, world: World,
                                                                    riverside: Practice):
    reader = world.reader(world.reader_practice("Endo Readers"))
    consent = {"given_by": "patient", "method": "verbal", "given_at": "2026-01-05T09:00:00Z"}
    referral_id = new_referral(riverside, teeth=["19", "20"], consent=consent)
    dark = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes(teeth=(), pixel_fill=40), teeth="19")
    fine = upload(riverside.staff, riverside, referral_id, samples.dicom_bytes(teeth=()), teeth="20")
    assert (dark.status_code, fine.status_code) == (201, 201)

    office = app.test_client()
    sign_in(office, user_with_password(world, riverside))
    draft = office.get(f"/referrals/{referral_id}").get_data(as_text=True)
    assert draft.count('data-quality-warning="underexposed"') == 1
    assert draft.count('data-quality-warning="low_contrast"') == 1
    assert "Likely unusable: The image is almost entirely dark" in draft
    item = draft[draft.index(f'data-image-id="{dark.get_json()["id"]}"'):]
    assert item.index("data-quality-warning") < item.index("</li>"), "the warning sits beside its image"

    assert submit(riverside, referral_id).get_json()["assigned_provider_id"] == reader.provider_id
    reading = app.test_client()
    sign_in(reading, _reader_email(app, reader.provider_id))
    case = reading.get(f"/referrals/{referral_id}").get_data(as_text=True)
    assert "data-viewer" in case
    assert "data-quality-warnings" in case
    assert "likely unusable:" in case
    assert case.count('data-quality-warning="underexposed"') == 1
    assert f'<li data-image-id="{fine.get_json()["id"]}">' not in case.split("data-quality-warnings")[1]
