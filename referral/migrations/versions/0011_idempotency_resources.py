"""Idempotency keys remember the resource their first request created.

A replay answers with that resource; the whole first response is still read from ``response_body`` for keys
recorded before this revision. A new nullable column only: SQLite adds it in place.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_records") as batch:
        batch.add_column(sa.Column(
            "resource_id", sa.Uuid(), nullable=True,
            comment="what the first request created; a replay answers with its current state"))
    # SQLite keeps no column comments; elsewhere the comment is changed without touching the data.
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("idempotency_records", "response_body", existing_type=sa.JSON(), existing_nullable=True,
                        comment="the first response, for keys recorded before resource_id was kept")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("idempotency_records", "response_body", existing_type=sa.JSON(), existing_nullable=True,
                        comment=None)
    op.drop_column("idempotency_records", "resource_id")
