"""Emergency (break-glass) access: time-limited grants to read a case, the notices that tell a practice's admins
about them and about role and provider-link changes, a flag on the audit rows of reads made through a grant, and
each person's choice of emailed access alerts.

Two new tables and two new nullable columns (SQLite adds them in place).

Revision ID: emergency_access
Revises: tus_uploads
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "emergency_access"
down_revision = "tus_uploads"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "emergency_access_grants",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False, comment="the practice of the person given access"),
        sa.Column("case_organization_id", sa.Uuid(), nullable=False, comment="the practice that referred the case"),
        sa.Column("reason", sa.Text(), nullable=False, comment="why, in the person's words; shown to admins only"),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["referral_id"], ["referrals.id"],
                                name=op.f("fk_emergency_access_grants_referral_id_referrals")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_emergency_access_grants_user_id_users")),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"],
                                name=op.f("fk_emergency_access_grants_organization_id_organizations")),
        sa.ForeignKeyConstraint(["case_organization_id"], ["organizations.id"],
                                name=op.f("fk_emergency_access_grants_case_organization_id_organizations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emergency_access_grants")),
    )
    op.create_index("ix_emergency_access_grants_user_referral", "emergency_access_grants",
                    ["user_id", "referral_id", "expires_at"], unique=False)
    op.create_index("ix_emergency_access_grants_organization_id", "emergency_access_grants",
                    ["organization_id", "expires_at"], unique=False)
    op.create_index("ix_emergency_access_grants_case_organization_id", "emergency_access_grants",
                    ["case_organization_id", "expires_at"], unique=False)
    op.create_table(
        "admin_notices",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False, comment="the admin told"),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False,
                  comment="emergency_access, role_change or provider_link"),
        sa.Column("actor_user_id", sa.Uuid(), nullable=True, comment="who did it; null for the CLI"),
        sa.Column("subject_user_id", sa.Uuid(), nullable=True, comment="whose access changed"),
        sa.Column("referral_id", sa.Uuid(), nullable=True),
        sa.Column("grant_id", sa.Uuid(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True, comment="ids and codes only"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("email_status", sa.String(length=10), nullable=True,
                  comment="null until the mail worker looks at it: sending, sent, failed or skipped"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_admin_notices_user_id_users")),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"],
                                name=op.f("fk_admin_notices_organization_id_organizations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_notices")),
    )
    op.create_index("ix_admin_notices_user_id_id", "admin_notices", ["user_id", "id"], unique=False)
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column(
            "emergency_access_id", sa.Uuid(), nullable=True,
            comment="set when the actor reached the case only through this emergency access grant"))
    with op.batch_alter_table("notification_preferences") as batch:
        batch.add_column(sa.Column(
            "email_access_alerts", sa.Boolean(), nullable=True,
            comment="org admins: emergency access, role and provider-link changes; null = the default (on)"))


def downgrade() -> None:
    # Plain DROP COLUMN, as in the earlier migrations: a batch rebuild is refused while rows reference these tables.
    op.drop_column("notification_preferences", "email_access_alerts")
    op.drop_column("audit_events", "emergency_access_id")
    op.drop_index("ix_admin_notices_user_id_id", table_name="admin_notices")
    op.drop_table("admin_notices")
    op.drop_index("ix_emergency_access_grants_case_organization_id", table_name="emergency_access_grants")
    op.drop_index("ix_emergency_access_grants_organization_id", table_name="emergency_access_grants")
    op.drop_index("ix_emergency_access_grants_user_referral", table_name="emergency_access_grants")
    op.drop_table("emergency_access_grants")
