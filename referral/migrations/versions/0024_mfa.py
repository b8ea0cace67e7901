"""Multi-factor sign-in: each user's authenticator (encrypted TOTP secret, last used time step), their one-time
recovery codes (hashes only), and the second step a browser session still owes.

Revision ID: mfa
Revises: assistant_provider
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "mfa"
down_revision = "assistant_provider"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("web_sessions") as batch:
        batch.add_column(sa.Column(
            "mfa_pending", sa.String(length=10), nullable=True,
            comment="null once fully signed in; code or enrol while the second step is outstanding"))
    op.create_table("user_mfa",
    sa.Column("user_id", sa.Uuid(), nullable=False),
    sa.Column("secret_sealed", sa.String(length=200), nullable=False,
              comment="encrypted TOTP secret; never the secret itself"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("enabled_at", sa.DateTime(timezone=True), nullable=True, comment="null while enrolment awaits a code"),
    sa.Column("last_used_step", sa.BigInteger(), nullable=True,
              comment="the last accepted 30-second time step: a code is never taken twice"),
    sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_user_mfa_user_id_users")),
    sa.PrimaryKeyConstraint("user_id", name=op.f("pk_user_mfa"))
    )
    op.create_table("mfa_recovery_codes",
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("user_id", sa.Uuid(), nullable=False),
    sa.Column("code_hash", sa.String(length=64), nullable=False, comment="hex SHA-256 of the code"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_mfa_recovery_codes_user_id_users")),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_mfa_recovery_codes"))
    )
    with op.batch_alter_table("mfa_recovery_codes") as batch:
        batch.create_index(batch.f("ix_mfa_recovery_codes_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_table("mfa_recovery_codes")
    op.drop_table("user_mfa")
    with op.batch_alter_table("web_sessions") as batch:
        batch.drop_column("mfa_pending")
