"""Practice set-up in the pages: one-time links to set a password, a practice's default place of service,
and an end date for every API token.

Tokens issued before this revision had no end; they are given one 90 days from the upgrade (the default
API_TOKEN_DAYS), so no token lives for ever and none stops working the moment the upgrade runs.

Revision ID: practice_setup
Revises: 0014
Create Date: 2026-12-02
"""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "practice_setup"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("organizations") as batch:
        batch.add_column(sa.Column(
            "default_place_of_service", sa.String(length=2), nullable=False, server_default="11",
            comment="CMS place-of-service code a new referral starts with"))
    op.create_table(
        "password_links",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False, comment="hex SHA-256 of the link's token"),
        sa.Column("purpose", sa.String(length=20), nullable=False, comment="first_sign_in, invite or reset"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("voided_at", sa.DateTime(timezone=True), nullable=True,
                  comment="set when a newer link replaced it or the account was deactivated"),
        sa.Column("created_by_user_id", sa.Uuid(), nullable=True, comment="null when made on the command line"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_password_links_user_id_users")),
        sa.ForeignKeyConstraint(["created_by_user_id"], ["users.id"],
                                name=op.f("fk_password_links_created_by_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_password_links_token_hash")),
    )
    with op.batch_alter_table("password_links") as batch:
        batch.create_index(batch.f("ix_password_links_user_id"), ["user_id"], unique=False)
    tokens = sa.table("api_tokens", sa.column("expires_at", sa.DateTime(timezone=True)),
                      sa.column("revoked_at", sa.DateTime(timezone=True)))
    op.execute(tokens.update().where(tokens.c.expires_at.is_(None), tokens.c.revoked_at.is_(None))
               .values(expires_at=datetime.now(UTC) + timedelta(days=90)))


def downgrade() -> None:
    op.drop_table("password_links")
    op.drop_column("organizations", "default_place_of_service")
