"""The steps that follow a transaction: undone on rollback, done after a commit, each exactly once."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from referral import unit_of_work
from referral.cli import upgrade_database
from referral.db import make_engine, make_session_factory
from referral.models import AuditEvent
from referral.services import audit
from referral.services.actor import Actor


@pytest.fixture
def factory(tmp_path: Path) -> sessionmaker[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'uow.db'}")
    upgrade_database(engine)
    yield make_session_factory(engine)
    engine.dispose()


def _ran(log: list[str], name: str) -> unit_of_work.Step:
    return lambda: log.append(name)


def test_rollback_steps_run_when_the_transaction_rolls_back_and_commit_steps_never(factory):
    log: list[str] = []
    with factory() as session:
        session.execute(sa.text("SELECT 1"))
        unit_of_work.on_rollback(session, _ran(log, "undo first"), describe="first")
        unit_of_work.on_rollback(session, _ran(log, "undo second"), describe="second")
        unit_of_work.after_commit(session, _ran(log, "after commit"), describe="commit")
        session.rollback()
        session.commit()  # a later, empty transaction runs nothing left over
    assert log == ["undo second", "undo first"]


def test_commit_steps_run_after_the_commit_and_rollback_steps_are_dropped(factory):
    log: list[str] = []
    with factory() as session:
        unit_of_work.on_rollback(session, _ran(log, "undo"), describe="undo")
        unit_of_work.after_commit(session, _ran(log, "after commit"), describe="commit")
        session.commit()
        session.rollback()
    assert log == ["after commit"]


def test_a_session_closed_with_its_transaction_open_runs_the_rollback_steps(factory):
    log: list[str] = []
    session = factory()
    # Registered before any SQL ran: the step opens the transaction it belongs to.
    unit_of_work.on_rollback(session, _ran(log, "undo"), describe="undo")
    assert unit_of_work.pending_steps(session) == (1, 0)
    session.close()
    assert log == ["undo"]


def test_a_savepoint_rolled_back_leaves_the_steps_to_the_outer_transaction(factory):
    log: list[str] = []
    with factory() as session:
        unit_of_work.on_rollback(session, _ran(log, "undo"), describe="undo")
        savepoint = session.begin_nested()
        savepoint.rollback()
        assert log == []
        session.rollback()
    assert log == ["undo"]


def test_a_failing_step_is_logged_without_its_message_and_the_others_still_run(factory, caplog):
    log: list[str] = []

    def broken() -> None:
        raise RuntimeError("patient Jane Doe")

    with factory() as session:
        unit_of_work.on_rollback(session, _ran(log, "undo"), describe="undo")
        unit_of_work.on_rollback(session, broken, describe="remove an object")
        session.rollback()
    assert log == ["undo"]
    assert "remove an object (RuntimeError)" in caplog.text
    assert "Jane" not in caplog.text


def _denials(factory: sessionmaker[Session], object_id: uuid.UUID) -> list[AuditEvent]:
    with factory() as session:
        return list(session.scalars(sa.select(AuditEvent).where(AuditEvent.object_id == object_id)))


@pytest.mark.parametrize("ending", ["rollback", "close", "commit"])
def test_a_denied_attempt_is_audited_exactly_once_however_the_transaction_ends(factory, ending: str):
    target = uuid.uuid4()
    actor = Actor(user_id=None, organization_id=None, role=None, ip_address="192.0.2.7")
    session = factory()
    session.execute(sa.text("SELECT 1"))
    audit.record_denied(session, actor, "referral.access", object_type="referral", object_id=target)
    if ending == "rollback":
        session.rollback()
    elif ending == "commit":
        session.commit()
    session.close()
    rows = _denials(factory, target)
    assert [(row.action, row.outcome, row.ip_address) for row in rows] == [("referral.access", "denied", "192.0.2.7")]
