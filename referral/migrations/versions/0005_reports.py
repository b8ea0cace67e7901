"""Interpretation reports and their signed addenda.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("reader_provider_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.Enum("draft", "signed", name="report_status", native_enum=False, create_constraint=True,
                                    length=32), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False,
                  comment="per image: crown, roots, pdl_space, lamina_dura, periapical_area, bone_levels, other, "
                  "diagnostic_quality"),
        sa.Column("impression", sa.Text(), nullable=True),
        sa.Column("recommendation", sa.Text(), nullable=True),
        sa.Column("evaluation_performed", sa.Boolean(), nullable=False,
                  comment="the reader also evaluated the patient; drives an evaluation code"),
        sa.Column("drafted_by_user_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("signed_by_user_id", sa.Uuid(), nullable=True),
        sa.Column("content_sha256", sa.String(length=64), nullable=True,
                  comment="SHA-256 of the canonical signed content, to show it never changed"),
        sa.ForeignKeyConstraint(["drafted_by_user_id"], ["users.id"], name=op.f("fk_reports_drafted_by_user_id_users")),
        sa.ForeignKeyConstraint(["reader_provider_id"], ["providers.id"],
                                name=op.f("fk_reports_reader_provider_id_providers")),
        sa.ForeignKeyConstraint(["referral_id"], ["referrals.id"], name=op.f("fk_reports_referral_id_referrals")),
        sa.ForeignKeyConstraint(["signed_by_user_id"], ["users.id"], name=op.f("fk_reports_signed_by_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
        sa.UniqueConstraint("referral_id", name=op.f("uq_reports_referral_id")),
    )
    op.create_table(
        "report_addenda",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("signed_by_user_id", sa.Uuid(), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["provider_id"], ["providers.id"], name=op.f("fk_report_addenda_provider_id_providers")),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], name=op.f("fk_report_addenda_report_id_reports")),
        sa.ForeignKeyConstraint(["signed_by_user_id"], ["users.id"],
                                name=op.f("fk_report_addenda_signed_by_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_addenda")),
    )
    op.create_index("ix_report_addenda_report_id_id", "report_addenda", ["report_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_report_addenda_report_id_id", table_name="report_addenda")
    op.drop_table("report_addenda")
    op.drop_table("reports")
