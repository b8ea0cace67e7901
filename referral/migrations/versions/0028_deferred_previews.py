"""Previews drawn after the upload's answer: an image may wait for its renditions, or have failed to get them.

One new nullable column on images; every stored image keeps null (its status follows from preview_key).

Revision ID: deferred_previews
Revises: provider_link_requests
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "deferred_previews"
down_revision = "provider_link_requests"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column(
            "preview_state", sa.String(length=10), nullable=True,
            comment="pending: renditions are drawn after the upload's answer; failed: they could not be drawn"))


def downgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.drop_column("preview_state")
