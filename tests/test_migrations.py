"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from referral.cli import alembic_config, upgrade_database
from referral.db import Base, make_engine
from tests.support.settings import POSTGRES_SERVER


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    request.getfixturevalue("postgres_url")  # fails or skips cleanly when PostgreSQL is missing
    name = f"referral_migrate_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://{POSTGRES_SERVER.split('://', 1)[1]}/{name}"
    with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_an_empty_database_upgrades_to_head_matching_the_models(empty_database: str):
    engine = make_engine(empty_database)
    upgrade_database(engine)
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert differences == []


def test_the_schema_downgrades_to_nothing_and_back(empty_database: str):
    from alembic import command

    engine = make_engine(empty_database)
    upgrade_database(engine)
    config = alembic_config(empty_database)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade_database(engine)
    assert "images" in sa.inspect(engine).get_table_names()
    engine.dispose()


def test_the_audit_trail_is_append_only_in_the_database(empty_database: str):
    engine = make_engine(empty_database)
    upgrade_database(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO audit_events (id, at, action, outcome, object_type) "
                             "VALUES (:id, :at, 'x.read', 'success', 'x')"),
                     {"id": uuid.uuid4().hex if engine.dialect.name == "sqlite" else str(uuid.uuid4()),
                      "at": "2026-01-01 00:00:00+00:00"})
    for statement in ("UPDATE audit_events SET action = 'tampered'", "DELETE FROM audit_events"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text(statement))
    engine.dispose()


def test_tokens_from_before_expiry_get_an_end_date_when_the_schema_is_upgraded(empty_database: str):
    engine = make_engine(empty_database)
    upgrade_database(engine, "0014")
    sqlite = engine.dialect.name == "sqlite"
    user_id, token_id = (uuid.uuid4().hex if sqlite else str(uuid.uuid4()) for _ in range(2))
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO users (id, email, role, active, created_at) "
                             "VALUES (:id, 'early@example.com', 'admin', true, '2026-01-01 00:00:00+00:00')"),
                     {"id": user_id})
        conn.execute(sa.text("INSERT INTO api_tokens (id, user_id, token_hash, prefix, created_at) "
                             "VALUES (:id, :user_id, :hash, 'rfl_early', '2026-01-01 00:00:00+00:00')"),
                     {"id": token_id, "user_id": user_id, "hash": "0" * 64})
    upgrade_database(engine)
    with engine.connect() as conn:
        expires = conn.execute(sa.text("SELECT expires_at FROM api_tokens")).scalar_one()
    engine.dispose()
    assert expires is not None
