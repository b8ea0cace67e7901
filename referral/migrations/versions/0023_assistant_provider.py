"""Dental assistants as providers: "assistant" joins the specialty vocabulary.

Specialties are stored as short strings with a CHECK constraint naming the allowed values, on providers and on
referrals (both columns use the one vocabulary; the API never lets a referral ask for an assistant). The
constraints are dropped and made again with the new value (on SQLite, the CHECK text is edited in place).

Revision ID: assistant_provider
Revises: reader_phrases
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "assistant_provider"
down_revision = "reader_phrases"
branch_labels = None
depends_on = None

_BEFORE = ("general", "endodontics", "oral_surgery", "periodontics", "oral_radiology", "oral_medicine", "pediatric",
           "orthodontics", "prosthodontics", "hygiene")
_AFTER = (*_BEFORE, "assistant")
# (table, constraint name as the naming convention "ck_<table>_<enum name>" made it)
_COLUMNS = (("providers", "specialty"), ("referrals", "referral_specialty"))


def _sqlite_allow(conn: sa.Connection, before: tuple[str, ...], after: tuple[str, ...]) -> None:
    """SQLite keeps a CHECK only in the table's CREATE text. Rebuilding providers and referrals in a batch is
    refused while other rows reference them (foreign keys are on), so the text is edited in place, the way
    SQLite's own documentation describes for constraint changes that existing rows already satisfy (widening
    an IN list; narrowing it runs only after the rows were moved off the value)."""
    old, new = _listed(before), _listed(after)
    version = conn.exec_driver_sql("PRAGMA schema_version").scalar_one()
    conn.exec_driver_sql("PRAGMA writable_schema=ON")
    for table, name in _COLUMNS:
        sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                                   (table,)).scalar_one()
        if f"ck_{table}_{name}" not in sql or f"IN ({old})" not in sql:
            raise RuntimeError(f"{table}: the specialty CHECK constraint is not the one this migration expects")
        conn.exec_driver_sql("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?",
                             (sql.replace(f"IN ({old})", f"IN ({new})"), table))
    conn.exec_driver_sql(f"PRAGMA schema_version={int(version) + 1}")
    conn.exec_driver_sql("PRAGMA writable_schema=OFF")


def _listed(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{value}'" for value in values)


def _allow(before: tuple[str, ...], after: tuple[str, ...]) -> None:
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        _sqlite_allow(conn, before, after)
        return
    for table, name in _COLUMNS:
        op.drop_constraint(op.f(f"ck_{table}_{name}"), table, type_="check")
        op.create_check_constraint(op.f(f"ck_{table}_{name}"), table, f"specialty IN ({_listed(after)})")


def upgrade() -> None:
    _allow(_BEFORE, _AFTER)


def downgrade() -> None:
    op.execute("UPDATE providers SET specialty = 'hygiene' WHERE specialty = 'assistant'")
    _allow(_AFTER, _BEFORE)
