"""A PostgreSQL statement that does not finish is ended by the server, so a stuck query or lock frees its worker."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from referral.db import PG_STATEMENT_TIMEOUT_MS, make_engine


def test_every_connection_carries_the_statement_timeout(migrated_postgres: str) -> None:
    engine = make_engine(migrated_postgres)
    try:
        with engine.connect() as connection:
            shown = connection.execute(sa.text("SHOW statement_timeout")).scalar_one()
        assert shown == f"{PG_STATEMENT_TIMEOUT_MS // 1000}s"
    finally:
        engine.dispose()


def test_a_statement_past_the_timeout_is_cancelled(migrated_postgres: str) -> None:
    engine = make_engine(migrated_postgres, connect_args={"options": "-c statement_timeout=200"})
    try:
        with engine.connect() as connection, pytest.raises(sa.exc.OperationalError, match="statement timeout"):
            connection.execute(sa.text("SELECT pg_sleep(5)"))
    finally:
        engine.dispose()
