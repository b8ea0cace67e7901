"""Data lifecycle: per-organization image retention, image tombstones, deleted patients.

Only new nullable columns: SQLite adds them in place, without rebuilding tables that others reference.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("organizations") as batch:
        batch.add_column(sa.Column(
            "image_retention_days", sa.Integer(), nullable=True,
            comment="images of cases closed longer ago are deleted by `retention apply`; null keeps them"))
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("deleted_reason", sa.String(length=20), nullable=True,
                                   comment="retention or patient_deleted"))
        batch.add_column(sa.Column(
            "objects_removed_at", sa.DateTime(timezone=True), nullable=True,
            comment="when the stored objects were removed; null on a tombstone while removal is pending"))
    with op.batch_alter_table("patients") as batch:
        batch.add_column(sa.Column(
            "deleted_at", sa.DateTime(timezone=True), nullable=True,
            comment="set when the patient's record was deleted on request; identity columns are erased"))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+ has it): a batch rebuild would drop and recreate tables that
    # referrals and images reference, which SQLite refuses while foreign keys are enforced and rows exist.
    op.drop_column("patients", "deleted_at")
    for column in ("objects_removed_at", "deleted_reason", "deleted_at"):
        op.drop_column("images", column)
    op.drop_column("organizations", "image_retention_days")
