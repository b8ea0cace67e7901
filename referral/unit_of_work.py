"""One service call, one transaction, and the steps that must follow how it ended.

A service entry point is the transaction: it commits once its work is complete, and anything raised before
that leaves the work to be rolled back (by the request's teardown, or by the command that called it).
Helpers add to the transaction and never end it.

Some work cannot be part of a database transaction, and must follow its outcome instead:

- ``on_rollback``: undo something done outside the database that only a commit makes permanent (delete an
  object written to the store for a row that was never committed), or record something that must be kept
  even though the transaction is not (a denied access attempt, written in a transaction of its own);
- ``after_commit``: something the committed rows allow only once they are committed (delete the object a
  replaced row no longer names).

Steps are registered on the session and run exactly once, from SQLAlchemy's session events, however the
transaction ends: a commit, a rollback, or the session closing with the transaction still open. A step that
fails is logged by its description (never by its exception text, which may quote data) and the others still
run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

log = logging.getLogger(__name__)

Step = Callable[[], None]

_ON_ROLLBACK = "referral.on_rollback"
_AFTER_COMMIT = "referral.after_commit"


def on_rollback(session: Session, step: Step, *, describe: str) -> None:
    """Run ``step`` if the session's current transaction ends without a commit."""
    _steps(session, _ON_ROLLBACK).append((describe, step))


def after_commit(session: Session, step: Step, *, describe: str) -> None:
    """Run ``step`` once the session's current transaction has committed (and never if it does not)."""
    _steps(session, _AFTER_COMMIT).append((describe, step))


def pending_steps(session: Session) -> tuple[int, int]:
    """How many rollback and commit steps wait on the current transaction (for tests and assertions)."""
    return len(session.info.get(_ON_ROLLBACK, ())), len(session.info.get(_AFTER_COMMIT, ()))


def install(factory: sessionmaker[Session]) -> None:
    """Hook the steps to every session the factory makes."""
    event.listen(factory, "after_commit", _committed)
    event.listen(factory, "after_transaction_end", _ended)


def _steps(session: Session, name: str) -> list[tuple[str, Step]]:
    if not session.in_transaction():
        # A step belongs to a transaction: open one, so that its end is seen even if nothing else runs.
        session.begin()
    steps: list[tuple[str, Step]] = session.info.setdefault(name, [])
    return steps


def _committed(session: Session) -> None:
    session.info.pop(_ON_ROLLBACK, None)
    _run(session.info.pop(_AFTER_COMMIT, []))


def _ended(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is not None:
        return  # a savepoint: the outer transaction decides
    session.info.pop(_AFTER_COMMIT, None)
    # Undone newest first, unwinding what was done in the order it was done.
    _run(list(reversed(session.info.pop(_ON_ROLLBACK, []))))


def _run(steps: list[tuple[str, Step]]) -> None:
    for describe, step in steps:
        try:
            step()
        except Exception as exc:  # one failed step must not stop the others
            log.error("a step after the end of a transaction failed: %s (%s)", describe, type(exc).__name__)


def run_alone(session: Session, write: Callable[[Session], Any]) -> None:
    """Run ``write`` in a session and transaction of its own on the same database, and commit it."""
    with Session(bind=session.get_bind()) as own:
        write(own)
        own.commit()
