"""Claim attachment packages and corrections: each claim's documentation package and the control number its
837D names; a claim may replace or void an earlier one of the same practice on the same referral, so the one
claim per practice and referral holds for originals only (a partial unique index, on SQLite and PostgreSQL).

Revision ID: claim_attachments
Revises: claim_lifecycle
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "claim_attachments"
down_revision = "dicom_network"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "claim_attachments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("claim_id", sa.Uuid(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False,
                  comment="counts packages of one practice on one referral"),
        sa.Column("claim_generation", sa.Integer(), nullable=False,
                  comment="the claim's generation the package documents"),
        sa.Column("control_number", sa.String(length=80), nullable=False, comment="PWK06 after the AC qualifier"),
        sa.Column("created_by_user_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["claim_id"], ["claims.id"], name=op.f("fk_claim_attachments_claim_id_claims"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["created_by_user_id"], ["users.id"],
                                name=op.f("fk_claim_attachments_created_by_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_claim_attachments")),
        sa.UniqueConstraint("claim_id", "revision", name=op.f("uq_claim_attachments_claim_id_revision")),
        sa.UniqueConstraint("control_number", name=op.f("uq_claim_attachments_control_number")),
    )
    with op.batch_alter_table("claim_attachments") as batch:
        batch.create_index(batch.f("ix_claim_attachments_claim_id"), ["claim_id"], unique=False)


    with op.batch_alter_table("claims") as batch:
        batch.add_column(sa.Column("original_claim_id", sa.Uuid(), nullable=True,
                                   comment="the claim this one replaces (frequency 7) or voids (8)"))
        batch.add_column(sa.Column("original_payer_claim_number", sa.String(length=50), nullable=True,
                                   comment="REF*F8: the payer's number of the claim replaced or voided"))
        batch.create_foreign_key(batch.f("fk_claims_original_claim_id_claims"), "claims",
                                 ["original_claim_id"], ["id"])
        batch.drop_constraint("uq_claims_referral_id_billing_organization_id", type_="unique")
    op.create_index("ix_claims_original_per_practice", "claims", ["referral_id", "billing_organization_id"],
                    unique=True, sqlite_where=sa.text("original_claim_id IS NULL"),
                    postgresql_where=sa.text("original_claim_id IS NULL"))


def downgrade() -> None:
    # Corrections cannot survive the return of one claim per practice and referral.
    op.execute("DELETE FROM claim_attachments WHERE claim_id IN "
               "(SELECT id FROM claims WHERE original_claim_id IS NOT NULL)")
    op.execute("DELETE FROM remittance_lines WHERE remittance_claim_id IN (SELECT id FROM remittance_claims "
               "WHERE claim_id IN (SELECT id FROM claims WHERE original_claim_id IS NOT NULL))")
    for table in ("remittance_claims", "claim_lines", "claim_edits", "claim_events", "claim_exports"):
        op.execute(f"DELETE FROM {table} WHERE claim_id IN "  # noqa: S608
                   "(SELECT id FROM claims WHERE original_claim_id IS NOT NULL)")
    op.execute("DELETE FROM claims WHERE original_claim_id IS NOT NULL")
    op.drop_index("ix_claims_original_per_practice", table_name="claims")
    with op.batch_alter_table("claims") as batch:
        batch.create_unique_constraint(batch.f("uq_claims_referral_id_billing_organization_id"),
                                       ["referral_id", "billing_organization_id"])
        batch.drop_constraint(batch.f("fk_claims_original_claim_id_claims"), type_="foreignkey")
        batch.drop_column("original_payer_claim_number")
        batch.drop_column("original_claim_id")
    with op.batch_alter_table("claim_attachments") as batch:
        batch.drop_index(batch.f("ix_claim_attachments_claim_id"))
    op.drop_table("claim_attachments")
