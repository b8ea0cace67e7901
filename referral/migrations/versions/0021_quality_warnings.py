"""Capture quality warnings: each image keeps the warnings measured in its pixels at intake.

One new nullable JSON column: SQLite adds it in place. Images stored before the checks keep null (not measured).

Revision ID: quality_warnings
Revises: capture_drafts
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "quality_warnings"
down_revision = "capture_drafts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column(
            "quality_warnings", sa.JSON(), nullable=True,
            comment="capture quality warnings measured at intake ({code, message}); null before the checks"))


def downgrade() -> None:
    # Plain DROP COLUMN, like the other image columns: a batch rebuild of images is refused while rows reference it.
    op.drop_column("images", "quality_warnings")
