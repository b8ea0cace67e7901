"""Workflow: referral events, declines, submission and acceptance times, consent form, inbox indexes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "referral_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=30), nullable=False,
                  comment="submit, accept, decline, retake_request, cancel..."),
        sa.Column("from_status", sa.String(length=32), nullable=False),
        sa.Column("to_status", sa.String(length=32), nullable=False),
        sa.Column("actor_user_id", sa.Uuid(), nullable=True),
        sa.Column("provider_id", sa.Uuid(), nullable=True, comment="the reader the step concerns, if any"),
        sa.Column("reason", sa.String(length=1000), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True, comment="ids and codes only"),
        sa.ForeignKeyConstraint(["actor_user_id"], ["users.id"], name=op.f("fk_referral_events_actor_user_id_users")),
        sa.ForeignKeyConstraint(["provider_id"], ["providers.id"],
                                name=op.f("fk_referral_events_provider_id_providers")),
        sa.ForeignKeyConstraint(["referral_id"], ["referrals.id"],
                                name=op.f("fk_referral_events_referral_id_referrals")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_events")),
    )
    op.create_index("ix_referral_events_referral_id_id", "referral_events", ["referral_id", "id"])

    op.create_table(
        "referral_declines",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["provider_id"], ["providers.id"],
                                name=op.f("fk_referral_declines_provider_id_providers")),
        sa.ForeignKeyConstraint(["referral_id"], ["referrals.id"],
                                name=op.f("fk_referral_declines_referral_id_referrals")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_declines")),
        sa.UniqueConstraint("referral_id", "provider_id", name=op.f("uq_referral_declines_referral_id_provider_id")),
    )

    with op.batch_alter_table("referrals") as batch:
        batch.add_column(sa.Column("consent_form_key", sa.String(length=512), nullable=True,
                                   comment="object key of a scanned consent form, if one was uploaded"))
        batch.add_column(sa.Column("consent_form_content_type", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True,
                                   comment="first submission"))
        batch.add_column(sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True))
        batch.drop_index("ix_referrals_org_status_id")
        batch.drop_index("ix_referrals_assigned_status_due")
        batch.create_index("ix_referrals_org_due", ["organization_id", "due_at", "id"])
        batch.create_index("ix_referrals_org_status_due", ["organization_id", "status", "due_at", "id"])
        batch.create_index("ix_referrals_assigned_due", ["assigned_provider_id", "due_at", "id"])
        batch.create_index("ix_referrals_assigned_status_due", ["assigned_provider_id", "status", "due_at", "id"])


def downgrade() -> None:
    with op.batch_alter_table("referrals") as batch:
        batch.drop_index("ix_referrals_assigned_status_due")
        batch.drop_index("ix_referrals_assigned_due")
        batch.drop_index("ix_referrals_org_status_due")
        batch.drop_index("ix_referrals_org_due")
        batch.create_index("ix_referrals_assigned_status_due", ["assigned_provider_id", "status", "due_at"])
        batch.create_index("ix_referrals_org_status_id", ["organization_id", "status", "id"])
        batch.drop_column("accepted_at")
        batch.drop_column("submitted_at")
        batch.drop_column("consent_form_content_type")
        batch.drop_column("consent_form_key")
    op.drop_table("referral_declines")
    op.drop_index("ix_referral_events_referral_id_id", table_name="referral_events")
    op.drop_table("referral_events")
