"""The conversation on a case: who may read and write it, what is refused, what is audited and announced."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from flask import Flask

from referral.models import AuditEvent, CaseMessage, OutboxEvent
from tests.support import samples
from tests.support.api import ready_referral, submit, upload
from tests.support.world import Practice, Reader, World


def _routed_case(world: World, practice: Practice) -> tuple[str, Reader]:
    reader = world.reader(world.reader_practice("Coastal Endodontics"))
    referral_id = ready_referral(practice, target_provider_id=reader.provider_id)
    assert submit(practice, referral_id).get_json()["assigned_provider_id"] == reader.provider_id
    return referral_id, reader


def _count(app: Flask, model: type, *where: object) -> int:
    with app.extensions["referral.sessionmaker"]() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model).where(*where)) or 0  # type: ignore[arg-type]


def _image(practice: Practice, referral_id: str) -> str:
    return str(practice.staff.get(f"/api/v1/referrals/{referral_id}").get_json()["images"][0]["id"])


def test_the_office_and_the_reader_write_to_each_other_with_unread_counts(app: Flask, world: World,
                                                                         riverside: Practice):
    referral_id, reader = _routed_case(world, riverside)
    image_id = _image(riverside, referral_id)
    path = f"/api/v1/referrals/{referral_id}/messages"

    sent = riverside.staff.post(path, {"body": "  Is the apex visible on this one?  ", "image_id": image_id})

    assert sent.status_code == 201, sent.get_json()
    message = sent.get_json()
    assert set(message) == {"id", "author", "created_at", "body", "image_id"}
    assert message["body"] == "Is the apex visible on this one?"
    assert message["image_id"] == image_id
    assert message["author"]["user_id"] == riverside.users["staff"]
    assert message["author"]["name"] == "Sam Lee, RDH"
    assert message["author"]["practice"] == "Riverside Family Dental"
    conversation = reader.client.get(path).get_json()
    assert [m["id"] for m in conversation["items"]] == [message["id"]]
    assert conversation["unread"] == 1
    # the author's own message is never unread to them
    assert riverside.staff.get(path).get_json()["unread"] == 0
    # another person of the same office has their own unread count
    assert riverside.dentist.get(path).get_json()["unread"] == 1

    marked = reader.client.post(f"{path}/read")
    assert marked.status_code == 200, marked.get_json()
    assert marked.get_json()["unread"] == 0
    assert reader.client.get(path).get_json()["unread"] == 0

    reply = reader.client.post(path, {"body": "Yes, the mesial apex is clear."})
    assert reply.status_code == 201, reply.get_json()
    assert reply.get_json()["image_id"] is None
    assert riverside.staff.get(path).get_json()["unread"] == 1
    assert [m["body"] for m in riverside.org_admin.get(path).get_json()["items"]] == [
        "Is the apex visible on this one?", "Yes, the mesial apex is clear."]


def test_reads_and_writes_are_audited_and_announced_with_ids_only(app: Flask, world: World, riverside: Practice):
    referral_id, reader = _routed_case(world, riverside)
    path = f"/api/v1/referrals/{referral_id}/messages"

    message_id = riverside.dentist.post(path, {"body": "Patient reports pain at night (Jane Doe)"}).get_json()["id"]
    reader.client.get(path)
    reader.client.post(f"{path}/read")

    assert _count(app, AuditEvent, AuditEvent.action == "message.create",
                  AuditEvent.object_id == uuid.UUID(message_id)) == 1
    assert _count(app, AuditEvent, AuditEvent.action == "message.read",
                  AuditEvent.referral_id == uuid.UUID(referral_id)) == 1
    assert _count(app, AuditEvent, AuditEvent.action == "message.mark_read") == 1
    with app.extensions["referral.sessionmaker"]() as session:
        events = list(session.scalars(sa.select(OutboxEvent).where(OutboxEvent.type == "message.created")))
    assert {str(e.organization_id) for e in events} == {riverside.id, reader.organization_id}
    for event in events:
        assert event.data["message_id"] == message_id
        assert event.data["referral_id"] == referral_id
        assert "Jane" not in str(event.data)
        assert "pain" not in str(event.data)


def test_empty_too_long_and_foreign_image_messages_are_refused_and_nothing_is_stored(
        app: Flask, world: World, riverside: Practice, hillside: Practice):
    referral_id, _reader = _routed_case(world, riverside)
    other_case = ready_referral(riverside)
    foreign_image = _image(riverside, other_case)
    path = f"/api/v1/referrals/{referral_id}/messages"

    for body in ({"body": ""}, {"body": "   \n "}, {"body": "x" * 4001}, {},
                 {"body": "See this", "image_id": foreign_image},
                 {"body": "See this", "image_id": str(uuid.uuid4())},
                 {"body": "bell\x07"}):
        response = riverside.staff.post(path, body)
        assert response.status_code == 422, (body, response.get_json())
        assert response.get_json()["message"]
    assert _count(app, CaseMessage) == 0
    assert _count(app, OutboxEvent, OutboxEvent.type == "message.created") == 0


def test_billing_never_reads_or_writes_the_conversation(app: Flask, world: World, riverside: Practice):
    referral_id, _reader = _routed_case(world, riverside)
    path = f"/api/v1/referrals/{referral_id}/messages"
    riverside.staff.post(path, {"body": "Hello"})

    assert riverside.billing.get(path).status_code == 403
    assert riverside.billing.post(path, {"body": "Billing here"}).status_code == 403
    assert riverside.billing.post(f"{path}/read").status_code == 403
    assert _count(app, CaseMessage) == 1


def test_outsiders_and_a_reader_who_declined_get_404(app: Flask, world: World, riverside: Practice,
                                                    hillside: Practice):
    endo = world.reader_practice("Coastal Endodontics")
    first = world.reader(endo, last_name="First")
    second = world.reader(endo, last_name="Second")
    referral_id = ready_referral(riverside, target_provider_id=first.provider_id)
    submit(riverside, referral_id)
    path = f"/api/v1/referrals/{referral_id}/messages"
    assert first.client.post(path, {"body": "Looking at it today"}).status_code == 201

    assert first.client.post(f"/api/v1/referrals/{referral_id}/decline", {"reason": "On leave"}).status_code == 200

    for client in (first.client, hillside.staff, hillside.org_admin, hillside.billing):
        assert client.get(path).status_code == 404
        assert client.post(path, {"body": "Still here?"}).status_code == 404
        assert client.post(f"{path}/read").status_code == 404
    assert riverside.staff.get(f"/api/v1/referrals/{uuid.uuid4()}/messages").status_code == 404
    assert second.client.get(path).status_code == 200
    assert _count(app, CaseMessage) == 1


def test_messages_cannot_be_changed_or_deleted(app: Flask, world: World, riverside: Practice):
    referral_id, _reader = _routed_case(world, riverside)
    path = f"/api/v1/referrals/{referral_id}/messages"
    riverside.staff.post(path, {"body": "Original"})

    assert riverside.staff.put(path, {"body": "Changed"}).status_code == 405
    assert riverside.staff.delete(path).status_code == 405
    assert [m["body"] for m in riverside.staff.get(path).get_json()["items"]] == ["Original"]


def test_an_image_of_another_case_of_the_same_practice_is_refused(app: Flask, world: World, riverside: Practice):
    referral_id, _reader = _routed_case(world, riverside)
    draft = ready_referral(riverside)
    extra = upload(riverside.staff, riverside, draft, samples.dicom_bytes(teeth=()))
    assert extra.status_code == 201
    path = f"/api/v1/referrals/{referral_id}/messages"

    refused = riverside.staff.post(path, {"body": "This one", "image_id": extra.get_json()["id"]})

    assert refused.status_code == 422
    assert "image" in refused.get_json()["message"].lower()
