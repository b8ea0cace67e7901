"""Image previews: object keys of the JPEG preview and thumbnail made at intake.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: images stored before this revision have no previews until they are made.
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("preview_key", sa.String(length=512), nullable=True,
                                   comment="JPEG preview (longer side at most 1600 px, no metadata), made at intake"))
        batch.add_column(sa.Column("thumbnail_key", sa.String(length=512), nullable=True,
                                   comment="JPEG thumbnail (longer side at most 256 px, no metadata), made at intake"))


def downgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.drop_column("thumbnail_key")
        batch.drop_column("preview_key")
