"""The app the security suites share within a module (``SharedApp``, made by the ``shared_app`` fixture of
tests/security/conftest.py) and its state as a value: a snapshot taken before a refused request is compared with
one taken after, so a request that changed nothing passes and one that changed something is named."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from referral.db import Base
from storage import Storage

# Rows that every request may add or touch (who did what, token and session bookkeeping); everything
# else must be exactly as it was after a refused request.
BOOKKEEPING_TABLES = frozenset({"audit_events", "api_tokens", "web_sessions", "sign_in_attempts"})


@dataclass
class SharedApp:
    backend: str
    app: Flask
    client: FlaskClient
    store: Storage


def snapshot(app: Flask) -> dict[str, Any]:
    """Every row of every table but the bookkeeping ones, and every key in the store."""
    state: dict[str, Any] = {}
    with app.extensions["referral.sessionmaker"]() as session:
        for table in Base.metadata.sorted_tables:
            if table.name in BOOKKEEPING_TABLES:
                continue
            rows = session.execute(sa.select(table)).all()
            state[table.name] = sorted(repr(tuple(row)) for row in rows)
    state["objects"] = sorted(app.extensions["referral.storage"].keys(""))
    return state


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What differs between two snapshots, per table, for a readable failure."""
    return {name: {"gone": sorted(set(before[name]) - set(after[name]))[:3],
                   "new": sorted(set(after[name]) - set(before[name]))[:3]}
            for name in before if before[name] != after[name]}
