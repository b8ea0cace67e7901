"""A reader's own phrases: kept per person on the server, listed, added and deleted; what is refused."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from flask import Flask

from referral.models import AuditEvent, ReaderPhrase, User
from referral.services.phrases import MAX_PHRASES, MAX_TEXT
from tests.support.world import Practice, World

PATH = "/api/v1/me/phrases"


def _count(app: Flask, *where: object) -> int:
    with app.extensions["referral.sessionmaker"]() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(ReaderPhrase).where(*where)) or 0  # type: ignore[arg-type]


def test_a_reader_keeps_lists_and_deletes_phrases_of_their_own(app: Flask, world: World):
    reader = world.reader(world.reader_practice("Coastal Endodontics"))
    assert reader.client.get(PATH).get_json() == {"items": []}

    first = reader.client.post(PATH, {"text": "  No periapical radiolucency.  "})
    second = reader.client.post(PATH, {"text": "Recommend a CBCT of the area."})

    assert first.status_code == 201, first.get_json()
    assert set(first.get_json()) == {"id", "text", "created_at"}
    assert first.get_json()["text"] == "No periapical radiolucency."
    listed = reader.client.get(PATH).get_json()["items"]
    assert [p["text"] for p in listed] == ["No periapical radiolucency.", "Recommend a CBCT of the area."]

    deleted = reader.client.delete(f"{PATH}/{first.get_json()['id']}")
    assert deleted.status_code == 204
    assert [p["id"] for p in reader.client.get(PATH).get_json()["items"]] == [second.get_json()["id"]]
    with app.extensions["referral.sessionmaker"]() as session:
        actions = list(session.scalars(sa.select(AuditEvent.action).where(AuditEvent.action.like("phrase.%"))
                                       .order_by(AuditEvent.at)))
        details = list(session.scalars(sa.select(AuditEvent.details).where(AuditEvent.action.like("phrase.%"))))
    assert actions == ["phrase.create", "phrase.create", "phrase.delete"]
    # the audit trail names the phrase by id, never by its words
    assert all("CBCT" not in str(d) and "radiolucency" not in str(d) for d in details)


def test_another_readers_phrase_is_not_found_and_stays(app: Flask, world: World):
    org = world.reader_practice("Coastal Endodontics")
    mine = world.reader(org, last_name="Okafor")
    theirs = world.reader(world.reader_practice("Valley Oral Surgery"), specialty="oral_surgery", last_name="Kim")
    colleague = world.reader(org, last_name="Ruiz")
    phrase = theirs.client.post(PATH, {"text": "Bone levels within normal limits."}).get_json()

    for someone in (mine, colleague):
        refused = someone.client.delete(f"{PATH}/{phrase['id']}")
        assert refused.status_code == 404, refused.get_json()
        assert someone.client.get(PATH).get_json() == {"items": []}
    # an id that does not exist answers the same
    assert mine.client.delete(f"{PATH}/{uuid.uuid4()}").status_code == 404
    assert _count(app) == 1
    assert [p["id"] for p in theirs.client.get(PATH).get_json()["items"]] == [phrase["id"]]


def test_bad_phrases_are_refused_and_nothing_is_stored(app: Flask, world: World):
    reader = world.reader(world.reader_practice("Coastal Endodontics"))
    for body in ({}, {"text": ""}, {"text": "   "}, {"text": None}, {"text": 42}, {"text": "x" * (MAX_TEXT + 1)},
                 {"text": "bad\x00byte"}, {"text": "ok", "user_id": str(uuid.uuid4())}):
        refused = reader.client.post(PATH, body)
        assert refused.status_code == 422, (body, refused.get_json())
        assert refused.get_json()["message"], body
    assert _count(app) == 0

    assert reader.client.post(PATH, {"text": "Within normal limits."}).status_code == 201
    twice = reader.client.post(PATH, {"text": "Within normal limits."})
    assert twice.status_code == 409, twice.get_json()
    assert _count(app) == 1
    assert reader.client.delete(f"{PATH}/not-a-uuid").status_code == 404


def test_a_reader_keeps_at_most_the_allowed_number_of_phrases(app: Flask, world: World):
    reader = world.reader(world.reader_practice("Coastal Endodontics"))
    with app.extensions["referral.sessionmaker"]() as session:
        owner = session.scalar(sa.select(User.id).where(User.provider_id == uuid.UUID(reader.provider_id)))
        session.add_all([ReaderPhrase(user_id=owner, text=f"Phrase {n}") for n in range(MAX_PHRASES)])
        session.commit()
    refused = reader.client.post(PATH, {"text": "One too many"})
    assert refused.status_code == 409, refused.get_json()
    assert _count(app) == MAX_PHRASES


def test_people_who_do_not_read_cases_keep_no_phrases(app: Flask, world: World, riverside: Practice):
    for client in (riverside.staff, riverside.billing, riverside.org_admin, world.admin):
        assert client.get(PATH).status_code == 403
        assert client.post(PATH, {"text": "Within normal limits."}).status_code == 403
        # no phrase of theirs has any id: 404, as for anyone's id that does not exist
        assert client.delete(f"{PATH}/{uuid.uuid4()}").status_code == 404
    # a general dentist of a practice may read cases, so keeps phrases
    kept = riverside.dentist.post(PATH, {"text": "Within normal limits."})
    assert kept.status_code == 201
    for client in (riverside.staff, riverside.org_admin, world.admin):
        assert client.delete(f"{PATH}/{kept.get_json()['id']}").status_code == 404
    assert _count(app) == 1
    assert world.client.get(PATH).status_code == 401
