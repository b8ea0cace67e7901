"""Provider link requests: a new login an org admin asks to link to a provider who already has one waits for
that provider's own confirmation.

One new table.

Revision ID: provider_link_requests
Revises: emergency_access
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "provider_link_requests"
down_revision = "emergency_access"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "provider_link_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False, comment="the new login to be linked"),
        sa.Column("role", sa.String(length=20), nullable=False, comment="the role the new login was made with"),
        sa.Column("requested_by_user_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False,
                  comment="pending, confirmed or refused (expiry is read from expires_at)"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_by_user_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"],
                                name=op.f("fk_provider_link_requests_organization_id_organizations")),
        sa.ForeignKeyConstraint(["provider_id"], ["providers.id"],
                                name=op.f("fk_provider_link_requests_provider_id_providers")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_provider_link_requests_user_id_users")),
        sa.ForeignKeyConstraint(["requested_by_user_id"], ["users.id"],
                                name=op.f("fk_provider_link_requests_requested_by_user_id_users")),
        sa.ForeignKeyConstraint(["answered_by_user_id"], ["users.id"],
                                name=op.f("fk_provider_link_requests_answered_by_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_link_requests")),
    )
    op.create_index("ix_provider_link_requests_provider_id", "provider_link_requests", ["provider_id", "status"],
                    unique=False)
    op.create_index("ix_provider_link_requests_user_id", "provider_link_requests", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_provider_link_requests_user_id", table_name="provider_link_requests")
    op.drop_index("ix_provider_link_requests_provider_id", table_name="provider_link_requests")
    op.drop_table("provider_link_requests")
