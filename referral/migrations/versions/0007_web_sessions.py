"""Web sign-in: user passwords, server-side sessions and sign-in attempts.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("password_hash", sa.String(length=255), nullable=True,
                                   comment="argon2id; null for users who sign in with API tokens only"))
    op.create_table("web_sessions",
    sa.Column("id", sa.String(length=64), nullable=False, comment="hex SHA-256 of the cookie token"),
    sa.Column("user_id", sa.Uuid(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, comment="absolute end, whatever the activity"),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("revoked_reason", sa.String(length=20), nullable=True, comment="logout, idle or expired"),
    sa.Column("csrf_token", sa.String(length=64), nullable=False),
    sa.Column("ip_address", sa.String(length=45), nullable=True),
    sa.Column("user_agent", sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_web_sessions_user_id_users")),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions"))
    )
    with op.batch_alter_table("web_sessions") as batch:
        batch.create_index(batch.f("ix_web_sessions_user_id"), ["user_id"], unique=False)
    op.create_table("sign_in_attempts",
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("email", sa.String(length=254), nullable=False, comment="as typed, lower-cased; may match no user"),
    sa.Column("ip_address", sa.String(length=45), nullable=True),
    sa.Column("succeeded", sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_attempts"))
    )
    with op.batch_alter_table("sign_in_attempts") as batch:
        batch.create_index("ix_sign_in_attempts_email_at", ["email", "at"], unique=False)
        batch.create_index("ix_sign_in_attempts_ip_address_at", ["ip_address", "at"], unique=False)


def downgrade() -> None:
    op.drop_table("sign_in_attempts")
    op.drop_table("web_sessions")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("password_hash")
