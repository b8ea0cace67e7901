"""The audited case read answers exactly what the schema dumps, in a number of statements that does not grow with
the case.

``GET /api/v1/referrals/{id}`` builds its answer by hand (referral/schemas/referral_documents.py) after loading the
case in three SELECTs. These tests build cases with 0, 2 and 100 images, with events, a report, consent and images
of every shape (DICOM with an operator who differs, deleted, integrity problem, no previews, quality warnings...),
and require the answer's bytes to equal what the documented schema, ``ReferralDetailSchema``, dumps of the same case
loaded the old way (``session.get`` and lazy loads), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from referral.errors import Forbidden
from referral.http.context import SETTINGS
from referral.http.json import WRITTEN_APART
from referral.models import AuditEvent, Image, Patient, Provider, Referral, ReferralEvent, User
from referral.models.enums import ConsentGivenBy, ConsentMethod, ImageKind, ReferralStatus, Role
from referral.models.reports import Report, ReportStatus
from referral.schemas.images import ImageSchema
from referral.schemas.referral_documents import image_document, referral_detail
from referral.schemas.referrals import ReferralDetailSchema
from referral.schemas.reports import ReportSchema
from referral.services import audit, case_reads, intake, pagination, referrals, reports
from referral.services.actor import Actor
from tests.support.api import signed_case
from tests.support.world import Practice, Reader, World, referral_body

pytestmark = pytest.mark.both_backends  # stored bytes or database behaviour: both set-ups

T0 = datetime(2026, 3, 2, 15, 4, 5, 123456, tzinfo=UTC)


def _session(app: Flask) -> Any:
    return app.extensions["referral.sessionmaker"]()


def _on_postgres(app: Flask) -> bool:
    return bool(app.extensions["referral.engine"].dialect.name == "postgresql")


def _image(referral: Referral, uploader: uuid.UUID, provider_id: uuid.UUID, n: int) -> Image:
    """Image number ``n``: its shape cycles through what an image can look like."""
    shape = n % 6
    dicom: dict[str, Any] | None = None
    if shape in (1, 4):
        dicom = {"modality": "IO", "rows": 1200, "columns": 1600, "kvp": 70.0, "teeth": ["19"],
                 "operators_name": "Nobody^Else" if shape == 1 else None,
                 "acquisition_datetime": (T0 - timedelta(hours=1)).isoformat(), "acquisition_time_stated": True,
                 "sop_instance_uid": f"1.2.3.{n}", "patient_name": "Doe^Jane"}
    return Image(
        referral_id=referral.id, organization_id=referral.organization_id,
        kind=list(ImageKind)[n % len(ImageKind)], teeth=["19", "20"] if shape else [],
        area="30" if shape == 2 else None,
        reason=f"Periapical <{n}> & more", captured_at=T0 + timedelta(minutes=n), captured_by_provider_id=provider_id,
        captured_by_confirmed=shape != 3, capture_only=shape != 2,
        exposure_kvp=65.0 if shape == 1 else -0.0 if shape == 4 else None,
        exposure_ma=7 if shape == 1 else 1e16 if shape == 4 else None,
        exposure_time_ms=120.5 if shape in (1, 4) else None,
        file_format="dicom" if dicom else "jpeg", content_type="application/dicom" if dicom else "image/jpeg",
        size=1000 + n, sha256=f"{n:064x}", storage_backend="local", storage_key=f"k/{referral.id}/{n}",
        preview_key=None if shape == 5 else f"p/{n}", thumbnail_key=None if shape in (4, 5) else f"t/{n}",
        original_filename=f"scan {n}.dcm" if shape != 3 else None, width=1600 if shape != 5 else None,
        height=1200 if shape != 5 else None, dicom=dicom,
        quality_warnings=[{"code": "blurred", "message": "Looks blurred"}] if shape == 2 else None,
        uploaded_by_user_id=uploader, created_at=T0 + timedelta(seconds=n),
        sent_at=T0 + timedelta(days=1) if shape in (0, 1) else None,
        deleted_at=T0 + timedelta(days=2) if shape == 3 else None, deleted_reason="retention" if shape == 3 else None,
        integrity_problem="missing" if shape == 4 else None,
        integrity_problem_since=T0 + timedelta(days=3) if shape == 4 else None,
    )


def _case(app: Flask, practice: Practice, reader: Reader, images: int, *, deleted_patient: bool = False) -> str:
    """A case assigned to ``reader`` with ``images`` images, three events, consent and a report."""
    created = practice.staff.post("/api/v1/referrals", referral_body(
        practice, questions=["diagnosis", "restorability"], restorability_decided_by="reader", reason_code=None))
    assert created.status_code == 201, created.get_json()
    referral_id = uuid.UUID(created.get_json()["id"])
    with app.app_context(), _session(app) as session:
        referral = session.get(Referral, referral_id)
        staff_id = uuid.UUID(practice.users["staff"])
        provider_id = uuid.UUID(practice.hygienist_provider_id)
        referral.status = ReferralStatus.ACCEPTED
        referral.assigned_provider_id = uuid.UUID(reader.provider_id)
        referral.submitted_at = T0
        referral.accepted_at = T0 + timedelta(hours=1)
        referral.consent_given_by = ConsentGivenBy.PATIENT
        referral.consent_method = ConsentMethod.WRITTEN
        referral.consent_given_at = T0 - timedelta(days=1)
        session.add_all(_image(referral, staff_id, provider_id, n) for n in range(images))
        for n, (action, before, after) in enumerate((("submit", "draft", "routed"), ("decline", "routed", "routed"),
                                                     ("accept", "routed", "accepted"))):
            session.add(ReferralEvent(referral_id=referral.id, at=T0 + timedelta(minutes=n), action=action,
                                      from_status=before, to_status=after,
                                      actor_user_id=staff_id if n != 1 else None,
                                      provider_id=uuid.UUID(reader.provider_id) if n else None,
                                      reason="Not my field <b>" if n == 1 else None))
        if images:
            reader_user = session.scalars(sa.select(User).where(
                User.provider_id == uuid.UUID(reader.provider_id))).one()
            session.add(Report(referral_id=referral.id, reader_provider_id=uuid.UUID(reader.provider_id),
                               status=ReportStatus.SIGNED if images > 2 else ReportStatus.DRAFT,
                               drafted_by_user_id=reader_user.id,
                               signed_at=T0 + timedelta(days=1) if images > 2 else None))
        if deleted_patient:
            patient = session.get(Patient, referral.patient_id)
            patient.deleted_at = T0
        session.commit()
    return str(referral_id)


def _schema_bytes(app: Flask, referral_id: str) -> bytes:
    """The answer as the schema dumps it, of the case loaded the old way (one row, then lazy loads)."""
    with app.app_context(), _session(app) as session:
        referral = session.get(Referral, uuid.UUID(referral_id))
        return bytes(app.json.response(ReferralDetailSchema().dump(referral)).get_data())


# The one-statement reads are PostgreSQL's (SQLite reads through the ORM): these tests run on that set-up only.
POSTGRES_ONLY = pytest.mark.parametrize("backend", ["postgres-s3"])


@pytest.fixture
def reader(world: World) -> Reader:
    return world.reader(world.reader_practice("Endo Readers"))


@pytest.mark.parametrize("images", [0, 2, 100])
def test_case_read_answers_what_the_schema_dumps(app: Flask, riverside: Practice, reader: Reader, images: int):
    referral_id = _case(app, riverside, reader, images)
    expected = _schema_bytes(app, referral_id)
    for client in (riverside.staff, reader.client):
        answer = client.get(f"/api/v1/referrals/{referral_id}")
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_data() == expected
    body = answer.get_json()
    assert len(body["images"]) == images
    assert len(body["events"]) == 3
    if images:
        assert body["report"]["status"] == ("signed" if images > 2 else "draft")
        assert any(image["capture_notes"] for image in body["images"])
    if images > 5:  # the large case does exercise the other shapes
        assert any(image["deleted_at"] for image in body["images"])
        assert any(image["integrity_problem"] for image in body["images"])
        assert any(image["preview_url"] is None for image in body["images"])
    if not images:
        assert body["report"] == {"status": "none"}


def test_deleted_patient_reads_alike(app: Flask, riverside: Practice, reader: Reader):
    referral_id = _case(app, riverside, reader, 2, deleted_patient=True)
    answer = reader.client.get(f"/api/v1/referrals/{referral_id}")
    assert answer.status_code == 200
    assert answer.get_data() == _schema_bytes(app, referral_id)
    assert answer.get_json()["patient"]["first_name"] is None


def test_image_document_matches_image_schema(app: Flask, riverside: Practice, reader: Reader):
    referral_id = _case(app, riverside, reader, 12)
    with app.app_context(), _session(app) as session:
        images = session.scalars(sa.select(Image).where(Image.referral_id == uuid.UUID(referral_id))).all()
        for image in images:
            assert image_document(image) == ImageSchema().dump(image)
        referral = session.get(Referral, uuid.UUID(referral_id))
        assert referral_detail(referral) == ReferralDetailSchema().dump(referral)


@contextmanager
def _statements(app: Flask) -> Iterator[list[str]]:
    engine = app.extensions["referral.engine"]
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


def _read_statements(app: Flask, client: Any, referral_id: str) -> list[str]:
    client.get(f"/api/v1/referrals/{referral_id}")  # warm: the token's last use is recorded at most every 5 min
    with _statements(app) as seen:
        answer = client.get(f"/api/v1/referrals/{referral_id}")
    assert answer.status_code == 200
    return [s for s in seen if not s.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "PRAGMA", "BEGIN"))]


def test_case_read_statements_do_not_grow_with_images(app: Flask, riverside: Practice, reader: Reader):
    small = _read_statements(app, reader.client, _case(app, riverside, reader, 2))
    large = _read_statements(app, reader.client, _case(app, riverside, reader, 100))
    assert len(large) == len(small)
    reads = [s for s in large if "FROM referrals" in s or "FROM images" in s or "FROM referral_events" in s]
    if _on_postgres(app):
        # the access check, the case with all it holds and the audit row in one statement (then the COMMIT); the
        # token check adds two (the suite runs with the token cache off; with it on, none)
        assert len(reads) == 1
        assert "INSERT INTO audit_events" in reads[0]
        assert not any(s.lstrip().upper().startswith("INSERT INTO AUDIT_EVENTS") for s in large)
        assert len(large) == 3, large
        return
    # the case in three SELECTs (referral with patient and report; images with their capturer; events) and the
    # audit row; the token check adds two (the suite runs with the token cache off; with it on, none)
    assert len(reads) == 3
    assert sum(s.lstrip().upper().startswith("INSERT INTO AUDIT_EVENTS") for s in large) == 1
    assert len(large) <= 6, large


def test_denied_and_missing_reads_are_404_and_audited(app: Flask, riverside: Practice, hillside: Practice,
                                                      reader: Reader):
    referral_id = _case(app, riverside, reader, 2)
    for path in (f"/api/v1/referrals/{referral_id}", f"/api/v1/referrals/{uuid.uuid4()}"):
        answer = hillside.staff.get(path)
        assert answer.status_code == 404
        assert answer.get_json()["message"] == "Referral not found"
    with app.app_context(), _session(app) as session:
        denied = session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "referral.access")).all()
        assert len(denied) == 2
        assert {row.outcome for row in denied} == {"denied"}
        assert {row.organization_id for row in denied} == {uuid.UUID(hillside.id)}
        assert referral_id in {str(row.object_id) for row in denied}
        assert not session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "referral.read")).all()


def test_image_read_answers_what_the_schema_dumps_in_one_select(app: Flask, riverside: Practice, reader: Reader):
    referral_id = _case(app, riverside, reader, 12)
    with app.app_context(), _session(app) as session:
        images = session.scalars(sa.select(Image).where(Image.referral_id == uuid.UUID(referral_id))).all()
        expected = {str(image.id): bytes(app.json.response(ImageSchema().dump(image)).get_data())
                    for image in images}
    reader.client.get(f"/api/v1/images/{next(iter(expected))}")  # warm the token's last use
    for image_id, answer_bytes in expected.items():
        for client in (riverside.staff, reader.client):
            with _statements(app) as seen:
                answer = client.get(f"/api/v1/images/{image_id}")
            assert answer.status_code == 200
            assert answer.get_data() == answer_bytes
            statements = [s for s in seen if not s.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "PRAGMA",
                                                                                 "BEGIN", "UPDATE API_TOKENS"))]
            if _on_postgres(app):
                # the token and its user (the suite runs with the token cache off), then the image with its case's
                # access check and its capturer, and the audit row, in one statement
                assert len(statements) == 3, statements
                assert "INSERT INTO audit_events" in statements[-1]
                continue
            # the token and its user (the suite runs with the token cache off), the image with its case's access
            # check and its capturer in one SELECT, the audit row
            assert len(statements) == 4, statements


def test_image_read_refusals_are_unchanged(app: Flask, riverside: Practice, hillside: Practice, reader: Reader,
                                           world: World):
    referral_id = _case(app, riverside, reader, 1)
    with app.app_context(), _session(app) as session:
        image_id = str(session.scalars(sa.select(Image.id).where(Image.referral_id == uuid.UUID(referral_id))).one())
    assert hillside.staff.get(f"/api/v1/images/{image_id}").status_code == 404
    assert riverside.staff.get(f"/api/v1/images/{uuid.uuid4()}").status_code == 404
    assert world.admin.get(f"/api/v1/images/{image_id}").status_code == 403  # the platform admin reads no cases
    with app.app_context(), _session(app) as session:
        denied = session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "image.access")).all()
        assert {(row.outcome, str(row.object_id) == image_id) for row in denied} == {("denied", True),
                                                                                      ("denied", False)}


def test_inbox_statements_do_not_grow_with_the_page(app: Flask, riverside: Practice, reader: Reader):
    _case(app, riverside, reader, 0)
    reader.client.get("/api/v1/referrals?view=inbox")
    with _statements(app) as seen:
        few = reader.client.get("/api/v1/referrals?view=inbox")
    small = [s for s in seen if not s.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "PRAGMA", "BEGIN"))]
    for _ in range(9):
        _case(app, riverside, reader, 0)
    with _statements(app) as seen:
        many = reader.client.get("/api/v1/referrals?view=inbox")
    large = [s for s in seen if not s.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "PRAGMA", "BEGIN"))]
    assert (len(few.get_json()["items"]), len(many.get_json()["items"])) == (1, 10)
    if _on_postgres(app):
        # the token and its user (the suite runs with the token cache off), then the page and its audit row in one
        # statement
        assert len(large) == len(small) == 3, large
        assert "INSERT INTO audit_events" in large[-1]
        return
    assert len(large) == len(small) <= 4, large


def test_report_read_loads_the_report_and_addenda_with_the_access_check_in_few_statements(
        app: Flask, world: World, riverside: Practice, hillside: Practice, reader: Reader):
    referral_id = signed_case(world, riverside, reader, target_provider_id=reader.provider_id)
    path = f"/api/v1/referrals/{referral_id}/report"
    for text in ("Tooth 18 also shows a widened PDL space.", "Recall in six months."):
        assert reader.client.post(f"{path}/addenda", {"text": text}).status_code == 201
    with app.app_context(), _session(app) as session:
        report = session.scalars(sa.select(Report).where(Report.referral_id == uuid.UUID(referral_id))).one()
        expected = bytes(app.json.response(ReportSchema().dump(report)).get_data())
    for client in (riverside.staff, reader.client):
        client.get(path)  # warm the token's last use
        with _statements(app) as seen:
            answer = client.get(path)
        assert answer.status_code == 200
        assert answer.get_data() == expected
        statements = [s for s in seen if not s.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "PRAGMA",
                                                                             "BEGIN", "UPDATE API_TOKENS"))]
        assert sum("FROM report_addenda" in s for s in statements) == 1
        if _on_postgres(app):
            # the token and its user (the suite runs with the token cache off), then the access check, the report
            # with its addenda and the audit row in one statement
            assert len(statements) == 3, statements
            assert "INSERT INTO audit_events" in statements[-1]
            continue
        # the token and its user (the suite runs with the token cache off), the case with its report and the
        # access check, the addenda, the audit row
        assert len(statements) == 5, statements
    # Refusals are unchanged: another practice and an unknown case are 404 and audited as denied.
    assert hillside.staff.get(path).status_code == 404
    assert riverside.staff.get(f"/api/v1/referrals/{uuid.uuid4()}/report").status_code == 404
    with app.app_context(), _session(app) as session:
        denied = session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "referral.access",
                                                             AuditEvent.outcome == "denied")).all()
        assert {str(row.object_id) == referral_id for row in denied} == {True, False}


# The one-statement read (referral/services/case_reads.py) against the ORM read it stands in for, on PostgreSQL.

# Every column of an audit row as the database holds it (text), so that a JSON null and an SQL NULL differ.
_AUDIT_TEXT = [sa.cast(column, sa.Text).label(column.name) for column in AuditEvent.__table__.c]


def _audit_rows(session: Any, **where: Any) -> list[dict[str, Any]]:
    query = sa.select(*_AUDIT_TEXT).filter_by(**where).order_by(AuditEvent.__table__.c.id)
    return [dict(row._mapping) for row in session.execute(query)]


def _actor(app: Flask, user_id: str, *, ip_address: str | None = None, user_agent: str | None = None) -> Actor:
    with app.app_context(), _session(app) as session:
        user = session.get(User, uuid.UUID(user_id))
        return Actor(user_id=user.id, organization_id=user.organization_id, role=user.role,
                     provider_id=user.provider_id, ip_address=ip_address, user_agent=user_agent)


def _reader_user(app: Flask, reader: Reader) -> str:
    with app.app_context(), _session(app) as session:
        return str(session.scalars(sa.select(User.id).where(User.provider_id == uuid.UUID(reader.provider_id))).one())


def _both_reads(app: Flask, actor: Actor, reads: tuple[Any, Any], wanted: uuid.UUID, action: str,
                render: Any, time_zone: str) -> tuple[list[bytes], dict[str, Any]]:
    """The one-statement read and the ORM read of ``wanted``, each in a session of its own set to ``time_zone``
    (timestamps must read alike whatever it is): their answers' bytes, and the audit row of the first once checked
    to equal the second's column by column, but for their ids and times."""
    answers: list[bytes] = []
    rows: list[dict[str, Any]] = []
    for read in reads:
        with app.app_context(), _session(app) as session:
            session.execute(sa.text(f"SET LOCAL TIME ZONE '{time_zone}'"))
            found = read(session, actor, wanted)
            assert found is not None
            session.commit()
            answers.append(bytes(app.json.response(render(found)).get_data()))
            rows.append(_audit_rows(session, action=action, actor_user_id=actor.user_id)[-1])
    fast, orm = rows
    assert fast.pop("id") != orm.pop("id")
    assert fast.pop("at") <= orm.pop("at")
    assert fast == orm
    return answers, fast


@POSTGRES_ONLY
@pytest.mark.parametrize("images", [0, 2, 100])
def test_one_statement_read_answers_and_audits_as_the_orm_read(app: Flask, riverside: Practice, reader: Reader,
                                                                images: int):
    referral_id = _case(app, riverside, reader, images)
    expected = _schema_bytes(app, referral_id)
    case_id = uuid.UUID(referral_id)
    long_agent = "Mozilla/5.0 " + "x" * 300  # cut to 200 characters in the row
    for user_id in (riverside.users["staff"], _reader_user(app, reader)):
        actor = _actor(app, user_id, ip_address="203.0.113.9", user_agent=long_agent)
        # +12:45 / +13:45
        answers, fast = _both_reads(app, actor, (case_reads.read_visible_case, referrals.read_referral), case_id,
                                    "referral.read", referral_detail, "Pacific/Chatham")
        assert answers == [expected, expected]
        assert fast["user_agent"] == long_agent[:200]
        assert fast["details"] == "null"  # as the ORM writes a None JSON value


@POSTGRES_ONLY
def test_one_statement_read_of_a_case_the_actor_does_not_see_finds_nothing_and_records_nothing(
        app: Flask, riverside: Practice, hillside: Practice, reader: Reader):
    referral_id = uuid.UUID(_case(app, riverside, reader, 2))
    for user_id, case_id in ((hillside.users["staff"], referral_id), (riverside.users["staff"], uuid.uuid4())):
        with app.app_context(), _session(app) as session:
            assert case_reads.read_visible_case(session, _actor(app, user_id), case_id) is None
            session.commit()
            assert _audit_rows(session, referral_id=case_id, actor_user_id=uuid.UUID(user_id)) == []
    # the platform admin reads no cases: refused before any statement
    admin = Actor(user_id=uuid.uuid4(), organization_id=None, role=Role.ADMIN)
    with app.app_context(), _session(app) as session, _statements(app) as seen:
        with pytest.raises(Forbidden):
            case_reads.read_visible_case(session, admin, referral_id)
        assert seen == []


def test_who_may_read_the_case_is_unchanged(app: Flask, world: World, riverside: Practice, hillside: Practice,
                                            reader: Reader):
    """Each way to the case (or none) answers and is audited as before, on both databases; on PostgreSQL the ones
    the one-statement read does not find go through the ORM read."""
    referral_id = _case(app, riverside, reader, 2)
    path = f"/api/v1/referrals/{referral_id}"
    reader_org = reader.organization_id

    def last_row() -> AuditEvent:
        with app.app_context(), _session(app) as session:
            return session.scalars(sa.select(AuditEvent).where(AuditEvent.referral_id == uuid.UUID(referral_id))
                                   .order_by(AuditEvent.id.desc()).limit(1)).one()

    def outcome(client: Any) -> tuple[int, str, str, str | None, bool]:
        status = client.get(path).status_code
        row = last_row()
        return (status, f"{row.action}:{row.outcome}", str(row.actor_organization_id),
                None if row.organization_id is None else str(row.organization_id),
                row.emergency_access_id is not None)

    # the referring practice, any of its reading roles; the reader assigned
    assert outcome(riverside.staff) == (200, "referral.read:success", riverside.id, riverside.id, False)
    assert outcome(riverside.billing) == (200, "referral.read:success", riverside.id, riverside.id, False)
    assert outcome(riverside.dentist) == (200, "referral.read:success", riverside.id, riverside.id, False)
    assert outcome(reader.client) == (200, "referral.read:success", reader_org, riverside.id, False)
    # another practice: not found, audited as denied with nothing of the case's practice
    assert outcome(hillside.staff) == (404, "referral.access:denied", hillside.id, hillside.id, False)
    # a colleague of the reader holding an emergency grant: read, flagged with the grant
    covering = world.reader(reader_org, last_name="Covering", accepting=False, role=None)
    created = world.admin.post(f"/api/v1/organizations/{reader_org}/users",
                               {"email": "covering@readers.example.com", "role": "specialist",
                                "provider_id": covering.provider_id})
    assert created.status_code == 201, created.get_json()
    colleague = world.as_token(created.get_json()["token"])
    assert outcome(colleague) == (404, "referral.access:denied", reader_org, reader_org, False)
    grant = colleague.post(f"{path}/emergency-access",
                           {"reason": "Dr Endo is in surgery; the patient is in my chair with acute swelling"})
    assert grant.status_code == 201, grant.get_json()
    assert outcome(colleague) == (200, "referral.read:success", reader_org, riverside.id, True)
    assert str(last_row().emergency_access_id) == grant.get_json()["id"]
    # the reader, once the case is no longer assigned to them: not found
    with app.app_context(), _session(app) as session:
        session.get(Referral, uuid.UUID(referral_id)).assigned_provider_id = None
        session.commit()
    assert outcome(reader.client) == (404, "referral.access:denied", reader_org, reader_org, False)
    # the platform admin reads no cases (403, not audited); an unknown id is not found and audited as denied
    assert world.admin.get(path).status_code == 403
    missing = uuid.uuid4()
    assert riverside.staff.get(f"/api/v1/referrals/{missing}").status_code == 404
    with app.app_context(), _session(app) as session:
        denied = session.scalars(sa.select(AuditEvent).where(AuditEvent.object_id == missing)).one()
        assert (denied.action, denied.outcome, denied.organization_id) == ("referral.access", "denied",
                                                                            uuid.UUID(riverside.id))


def test_markup_characters_reach_the_answer_escaped(app: Flask, riverside: Practice, reader: Reader):
    referral_id = _case(app, riverside, reader, 2)
    answer = reader.client.get(f"/api/v1/referrals/{referral_id}")
    data = answer.get_data()
    assert not {b"<", b">", b"&"} & {bytes([byte]) for byte in data}
    assert b'"Periapical \\u003c0\\u003e \\u0026 more"' in data
    assert b'"Not my field \\u003cb\\u003e"' in data
    assert "Periapical <0> & more" in {image["reason"] for image in answer.get_json()["images"]}


@POSTGRES_ONLY
@pytest.mark.parametrize("addenda", [0, 2])
def test_one_statement_report_read_answers_and_audits_as_the_orm_read(app: Flask, world: World,
                                                                      riverside: Practice, reader: Reader,
                                                                      addenda: int):
    referral_id = signed_case(world, riverside, reader, target_provider_id=reader.provider_id)
    path = f"/api/v1/referrals/{referral_id}/report"
    for n in range(addenda):
        assert reader.client.post(f"{path}/addenda", {"text": f"Addendum <{n}> & more"}).status_code == 201
    case_id = uuid.UUID(referral_id)
    with app.app_context(), _session(app) as session:
        report = session.scalars(sa.select(Report).where(Report.referral_id == case_id)).one()
        expected = bytes(app.json.response(ReportSchema().dump(report)).get_data())
    for user_id in (riverside.users["billing"], _reader_user(app, reader)):
        actor = _actor(app, user_id, ip_address="2001:db8::7", user_agent="curl/8")
        answers, fast = _both_reads(app, actor, (case_reads.read_visible_report, lambda *args: reports.read(*args)[1]),
                                    case_id, "report.read", ReportSchema().dump, "Pacific/Chatham")
        assert answers == [expected, expected]
        assert fast["object_type"] == "report"
        assert fast["object_id"] == str(report.id)


def test_report_reads_that_the_one_statement_read_leaves_are_unchanged(app: Flask, world: World,
                                                                       riverside: Practice, hillside: Practice,
                                                                       reader: Reader):
    """A draft is the reader's alone, a case without a report has none to read, another practice's case is not
    found: as before, on both databases (on PostgreSQL these go through the ORM read)."""
    referral_id = _case(app, riverside, reader, 2)  # a draft report by ``reader``
    bare_id = _case(app, riverside, reader, 0)  # no report
    path = f"/api/v1/referrals/{referral_id}/report"

    def rows(action: str, case: str) -> list[tuple[str, str]]:
        with app.app_context(), _session(app) as session:
            found = session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action,
                                                                AuditEvent.referral_id == uuid.UUID(case))).all()
            return [(row.outcome, str(row.actor_organization_id)) for row in found]

    assert reader.client.get(path).status_code == 200
    assert rows("report.read", referral_id) == [("success", reader.organization_id)]
    for client in (riverside.staff, riverside.billing):
        answer = client.get(path)
        assert (answer.status_code, answer.get_json()["message"]) == (404, "No report for this referral yet")
    assert riverside.staff.get(f"/api/v1/referrals/{bare_id}/report").status_code == 404
    assert rows("report.read", referral_id) == [("success", reader.organization_id)]
    assert rows("report.read", bare_id) == []
    assert hillside.staff.get(path).status_code == 404
    assert rows("referral.access", referral_id) == [("denied", hillside.id)]
    with app.app_context(), _session(app) as session:
        # and the one-statement read finds none of these (nothing recorded by it)
        for user_id, case in ((riverside.users["staff"], referral_id), (riverside.users["staff"], bare_id),
                              (hillside.users["staff"], referral_id)):
            if _on_postgres(app):
                assert case_reads.read_visible_report(session, _actor(app, user_id), uuid.UUID(case)) is None
        session.commit()
    assert rows("report.read", referral_id) == [("success", reader.organization_id)]


@POSTGRES_ONLY
def test_one_statement_image_read_answers_and_audits_as_the_orm_read(app: Flask, riverside: Practice,
                                                                      reader: Reader):
    referral_id = _case(app, riverside, reader, 12)
    with app.app_context(), _session(app) as session:
        images = session.scalars(sa.select(Image).where(Image.referral_id == uuid.UUID(referral_id))).all()
        expected = {image.id: bytes(app.json.response(ImageSchema().dump(image)).get_data()) for image in images}
    for user_id in (riverside.users["staff"], _reader_user(app, reader)):
        actor = _actor(app, user_id, ip_address="203.0.113.9", user_agent="Mozilla/5.0 " + "y" * 300)
        for image_id, answer_bytes in list(expected.items())[:4]:
            answers, fast = _both_reads(app, actor, (case_reads.read_visible_image, intake.read_image), image_id,
                                        "image.read", image_document, "America/Anchorage")
            assert answers == [answer_bytes, answer_bytes]
            assert (fast["object_id"], fast["referral_id"]) == (str(image_id), referral_id)


@POSTGRES_ONLY
def test_one_statement_image_read_of_an_image_the_actor_does_not_see_finds_nothing_and_records_nothing(
        app: Flask, riverside: Practice, hillside: Practice, reader: Reader, world: World):
    referral_id = _case(app, riverside, reader, 1)
    with app.app_context(), _session(app) as session:
        image_id = session.scalars(sa.select(Image.id).where(Image.referral_id == uuid.UUID(referral_id))).one()
    admin = _actor(app, world.admin_id)  # the platform admin reads no cases
    for actor, wanted in ((_actor(app, hillside.users["staff"]), image_id),
                          (_actor(app, riverside.users["staff"]), uuid.uuid4()), (admin, image_id)):
        with app.app_context(), _session(app) as session:
            assert case_reads.read_visible_image(session, actor, wanted) is None
            session.commit()
            assert _audit_rows(session, action="image.read") == []


def _page_row(session: Any, actor: Actor) -> dict[str, Any]:
    row = _audit_rows(session, action="referral.list", actor_user_id=actor.user_id)[-1]
    assert row.pop("id") is not None
    assert row.pop("at") is not None
    return row


@POSTGRES_ONLY
def test_one_statement_page_answers_and_audits_as_the_orm_page(app: Flask, riverside: Practice, reader: Reader):
    """Each page of the inbox and of the sent box, searched or not, holds the cases ``pagination.page`` gives, and
    its audit row holds what ``audit.record`` writes, the details' JSON text included, byte for byte."""
    for _ in range(5):
        _case(app, riverside, reader, 0)
    for user_id, view in ((_reader_user(app, reader), "inbox"), (riverside.users["staff"], "sent")):
        actor = _actor(app, user_id, ip_address="198.51.100.4", user_agent="Tablet")
        for searched in (False, True):
            details: dict[str, Any] = {"view": view, **({"searched": True} if searched else {})}
            cursor: str | None = None
            sizes = []
            while True:
                with app.app_context(), _session(app) as session:
                    query = sa.select(Referral).where(
                        Referral.assigned_provider_id == actor.provider_id if view == "inbox"
                        else Referral.organization_id == actor.organization_id)
                    session.execute(sa.text("SET LOCAL TIME ZONE 'Pacific/Honolulu'"))
                    items, after = case_reads.read_page(session, actor, query, {}, cursor, 2, details,
                                                        reuse=False)
                    session.commit()
                    fast = _page_row(session, actor)
                    expected, expected_after = pagination.page(session, query, [Referral.due_at, Referral.id],
                                                               cursor, 2)
                    audit.record(session, actor, "referral.list", object_type="referral", object_id=None,
                                 organization_id=actor.organization_id,
                                 details={"count": len(expected), **details})
                    session.commit()
                    orm = _page_row(session, actor)
                    assert [item.id for item in items] == [item.id for item in expected]
                    assert after == expected_after
                    assert fast == orm
                    assert json.loads(fast["details"]) == {"count": len(items), **details}
                sizes.append(len(items))
                if after is None:
                    break
                cursor = after
            assert sizes == [2, 2, 1], sizes


@POSTGRES_ONLY
def test_one_statement_page_that_is_empty_or_after_the_last_case_is_audited_with_its_count(
        app: Flask, riverside: Practice, hillside: Practice, reader: Reader):
    _case(app, riverside, reader, 0)
    answer = hillside.staff.get("/api/v1/referrals?view=sent")
    assert (answer.status_code, answer.get_json()) == (200, {"items": [], "next_cursor": None})
    first = riverside.staff.get("/api/v1/referrals?view=sent&limit=1").get_json()
    assert (len(first["items"]), first["next_cursor"]) == (1, None)
    with app.app_context(), _session(app) as session:
        rows = _audit_rows(session, action="referral.list")
    assert [(row["actor_organization_id"], json.loads(row["details"])) for row in rows] == [
        (hillside.id, {"count": 0, "view": "sent"}), (riverside.id, {"count": 1, "view": "sent"})]


# What the case read keeps of its answers (case_reads.IMAGE_DOCUMENTS): each image's JSON, by the versions of its row
# and its capturer's.

@POSTGRES_ONLY
def test_a_case_read_again_is_answered_from_the_images_kept_without_reading_them(
        app: Flask, riverside: Practice, reader: Reader, monkeypatch: pytest.MonkeyPatch):
    referral_id = _case(app, riverside, reader, 12)
    expected = _schema_bytes(app, referral_id)
    first = reader.client.get(f"/api/v1/referrals/{referral_id}")
    assert first.get_data() == expected

    def unread(*_args: Any) -> Any:
        raise AssertionError("an image's JSON was read although every image's answer was kept")

    monkeypatch.setattr(case_reads, "_image", unread)
    for client in (reader.client, riverside.staff):
        again = client.get(f"/api/v1/referrals/{referral_id}")
        assert again.status_code == 200
        assert again.get_data() == expected


@POSTGRES_ONLY
def test_a_changed_image_or_capturer_is_answered_as_it_is_now(app: Flask, riverside: Practice, reader: Reader):
    referral_id = _case(app, riverside, reader, 8)
    path = f"/api/v1/referrals/{referral_id}"
    assert reader.client.get(path).get_data() == _schema_bytes(app, referral_id)
    changes = (
        # the storage check flags one image; another is deleted (both among those not deleted yet: a deleted image
        # cannot change)
        lambda session, images: setattr(images[0], "integrity_problem", "checksum_mismatch"),
        lambda session, images: (setattr(images[1], "deleted_at", T0), setattr(images[1], "deleted_reason", "retake")),
        # the capturer's name changes (named in the note on an image whose DICOM operator differs), then becomes
        # the operator's
        lambda session, images: setattr(session.get(Provider, images[1].captured_by_provider_id), "last_name",
                                        "Nobody"),
        lambda session, images: setattr(session.get(Provider, images[1].captured_by_provider_id), "first_name", "Else"),
    )
    before = reader.client.get(path).get_data()
    assert _operator_notes(before) == 2  # two images name an operator (Nobody^Else) who is not the capturer
    for change in changes:
        with app.app_context(), _session(app) as session:
            images = session.scalars(sa.select(Image).where(Image.referral_id == uuid.UUID(referral_id),
                                                            Image.deleted_at.is_(None)).order_by(Image.id)).all()
            change(session, images)
            session.commit()
        answer = reader.client.get(path).get_data()
        assert answer == _schema_bytes(app, referral_id)
        assert answer != before
        before = answer
    assert _operator_notes(before) == 0, "the capturer now bears the operator's name"


def _operator_notes(answer: bytes) -> int:
    return sum(note["code"] == "operator_differs" for image in json.loads(answer)["images"]
               for note in image["capture_notes"])


@POSTGRES_ONLY
def test_an_indented_answer_writes_the_images_itself(app: Flask, riverside: Practice, reader: Reader):
    referral_id = _case(app, riverside, reader, 3)
    reader.client.get(f"/api/v1/referrals/{referral_id}")  # the images' answers kept, written compactly
    app.json.compact = False  # type: ignore[attr-defined]
    try:
        answer = reader.client.get(f"/api/v1/referrals/{referral_id}")
        expected = _schema_bytes(app, referral_id)
    finally:
        app.json.compact = None  # type: ignore[attr-defined]
    assert answer.get_data() == expected
    assert b'\n  "images": [\n    {\n' in expected


def test_the_images_kept_are_bounded_and_the_oldest_go_first():
    kept = case_reads._Documents()
    for n in range(8):
        kept.put(f"k{n}", f"t{n}", 8)
    assert kept.get_all([f"k{n}" for n in range(8)]) == [f"t{n}" for n in range(8)]
    kept.put("k8", "t8", 8)
    # a quarter of the oldest made room
    assert [kept.get(f"k{n}") for n in range(9)] == [None, None, "t2", "t3", "t4", "t5", "t6", "t7", "t8"]
    assert kept.get_all(["k2", "k0"]) is None
    # a smaller limit (the setting changed) makes room down to it
    kept.put("k9", "t9", 4)
    assert [kept.get(f"k{n}") for n in range(10)] == [None] * 6 + ["t6", "t7", "t8", "t9"]


@POSTGRES_ONLY
def test_with_no_images_kept_every_read_writes_them(app: Flask, riverside: Practice, reader: Reader,
                                                    monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(app.extensions, SETTINGS, dataclasses.replace(app.extensions[SETTINGS], case_image_answers=0))
    referral_id = _case(app, riverside, reader, 6)
    expected = _schema_bytes(app, referral_id)
    read: list[Any] = []
    image = case_reads._image
    monkeypatch.setattr(case_reads, "_image", lambda *args: read.append(args) or image(*args))
    for _ in range(2):
        assert reader.client.get(f"/api/v1/referrals/{referral_id}").get_data() == expected
    assert len(read) == 12


def test_text_written_apart_must_stand_in_exactly_once_and_only_in_compact_answers(app: Flask):
    with app.app_context():
        provider = app.json
        answer = provider.response_with_text({"a": 1, "b": WRITTEN_APART}, lambda dumps: dumps(["<x>", 2]))
        assert answer.get_data() == b'{"a":1,"b":["\\u003cx\\u003e",2]}\n'
        assert answer.get_data() == provider.response({"a": 1, "b": ["<x>", 2]}).get_data()
        for twice in ({"a": WRITTEN_APART, "b": WRITTEN_APART}, {"a": 1}):
            with pytest.raises(ValueError, match="exactly once"):
                provider.response_with_text(twice, lambda dumps: "[]")
        provider.compact = False
        try:
            with pytest.raises(ValueError, match="indented"):
                provider.response_with_text({"b": WRITTEN_APART}, lambda dumps: "[]")
        finally:
            provider.compact = None
