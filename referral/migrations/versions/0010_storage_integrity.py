"""Storage integrity: images flagged by the storage check, and the worker's periodic job times.

Only new nullable columns and a new table: SQLite adds the columns in place, without rebuilding tables
that others reference.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-15
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column(
            "integrity_problem", sa.String(length=20), nullable=True,
            comment="missing or checksum_mismatch, as last found by the storage check; null when intact"))
        batch.add_column(sa.Column(
            "integrity_problem_since", sa.DateTime(timezone=True), nullable=True,
            comment="when the storage check first found the current problem"))
    op.create_table(
        "maintenance_runs",
        sa.Column("name", sa.String(length=50), nullable=False, comment="the job, e.g. storage_sweep"),
        sa.Column("last_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_maintenance_runs")),
    )


def downgrade() -> None:
    op.drop_table("maintenance_runs")
    # Plain DROP COLUMN, as in 0009: a batch rebuild of images is refused while rows reference it.
    for column in ("integrity_problem_since", "integrity_problem"):
        op.drop_column("images", column)
