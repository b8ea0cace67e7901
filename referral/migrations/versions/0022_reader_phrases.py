"""Reader phrases: each reader's own reusable phrases for report fields.

One new table; nothing existing changes.

Revision ID: reader_phrases
Revises: quality_warnings
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "reader_phrases"
down_revision = "quality_warnings"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reader_phrases",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False, comment="the phrase as the reader typed it"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_reader_phrases_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reader_phrases")),
    )
    op.create_index("ix_reader_phrases_user_id_created_at", "reader_phrases", ["user_id", "created_at"],
                    unique=False)


def downgrade() -> None:
    op.drop_index("ix_reader_phrases_user_id_created_at", table_name="reader_phrases")
    op.drop_table("reader_phrases")
