"""Claims: fee schedules, claims per billing organization, their lines and edits; patient addresses.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('fee_schedule_entries',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('code', sa.String(length=5), nullable=False, comment='CDT code number, e.g. D0707'),
    sa.Column('amount', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_fee_schedule_entries_organization_id_organizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fee_schedule_entries')),
    sa.UniqueConstraint('organization_id', 'code', name=op.f('uq_fee_schedule_entries_organization_id_code'))
    )
    op.create_table('claims',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('referral_id', sa.Uuid(), nullable=False),
    sa.Column('billing_organization_id', sa.Uuid(), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False, comment='capture, interpretation or single'),
    sa.Column('rendering_provider_id', sa.Uuid(), nullable=False),
    sa.Column('referring_provider_id', sa.Uuid(), nullable=True),
    sa.Column('place_of_service', sa.String(length=2), nullable=False),
    sa.Column('date_of_service', sa.Date(), nullable=False),
    sa.Column('payer_id', sa.String(length=80), nullable=True),
    sa.Column('payer_name', sa.String(length=120), nullable=True),
    sa.Column('payer_profile', sa.String(length=60), nullable=False, comment='the payer rules the claim was built with'),
    sa.Column('frequency', sa.String(length=1), nullable=False, comment='1 original, 7 replacement, 8 void'),
    sa.Column('status', sa.String(length=10), nullable=False, comment='ready, or hold while an edit blocks it'),
    sa.Column('total', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('generation', sa.Integer(), nullable=False, comment='times regenerated after new facts'),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['billing_organization_id'], ['organizations.id'], name=op.f('fk_claims_billing_organization_id_organizations')),
    sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], name=op.f('fk_claims_referral_id_referrals')),
    sa.ForeignKeyConstraint(['referring_provider_id'], ['providers.id'], name=op.f('fk_claims_referring_provider_id_providers')),
    sa.ForeignKeyConstraint(['rendering_provider_id'], ['providers.id'], name=op.f('fk_claims_rendering_provider_id_providers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_claims')),
    sa.UniqueConstraint('referral_id', 'billing_organization_id', name=op.f('uq_claims_referral_id_billing_organization_id'))
    )
    with op.batch_alter_table('claims', schema=None) as batch_op:
        batch_op.create_index('ix_claims_billing_organization_id_id', ['billing_organization_id', 'id'], unique=False)

    op.create_table('claim_edits',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('claim_id', sa.Uuid(), nullable=False),
    sa.Column('rule', sa.String(length=60), nullable=False),
    sa.Column('severity', sa.String(length=10), nullable=False, comment='warning or hold'),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('line_numbers', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['claim_id'], ['claims.id'], name=op.f('fk_claim_edits_claim_id_claims')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_claim_edits'))
    )
    op.create_table('claim_lines',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('claim_id', sa.Uuid(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=5), nullable=False),
    sa.Column('tooth', sa.String(length=3), nullable=True),
    sa.Column('teeth', sa.JSON(), nullable=False),
    sa.Column('area', sa.String(length=2), nullable=True),
    sa.Column('surfaces', sa.String(length=7), nullable=True),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('fee', sa.Numeric(precision=12, scale=2), nullable=False, comment='per unit'),
    sa.Column('date_of_service', sa.Date(), nullable=False),
    sa.Column('control_number', sa.String(length=30), nullable=False, comment='REF*6R line item control number'),
    sa.Column('explanation', sa.Text(), nullable=False),
    sa.Column('rule', sa.String(length=60), nullable=False),
    sa.Column('image_ids', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['claim_id'], ['claims.id'], name=op.f('fk_claim_lines_claim_id_claims')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_claim_lines')),
    sa.UniqueConstraint('claim_id', 'number', name=op.f('uq_claim_lines_claim_id_number'))
    )
    _claim_exports()
    with op.batch_alter_table("patients") as batch:
        batch.add_column(sa.Column("address_line1", sa.String(length=200), nullable=True,
                                   comment="claims to a payer need it"))
        batch.add_column(sa.Column("address_line2", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("city", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("zip", sa.String(length=9), nullable=True))


def _claim_exports() -> None:
    op.create_table(
        "claim_exports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("claim_id", sa.Uuid(), nullable=False),
        sa.Column("format", sa.String(length=10), nullable=False, comment="x12 or fhir"),
        sa.Column("exported_by_user_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["claim_id"], ["claims.id"], name=op.f("fk_claim_exports_claim_id_claims")),
        sa.ForeignKeyConstraint(["exported_by_user_id"], ["users.id"],
                                name=op.f("fk_claim_exports_exported_by_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_claim_exports")),
    )
    op.create_index(op.f("ix_claim_exports_claim_id"), "claim_exports", ["claim_id"])


def downgrade() -> None:
    with op.batch_alter_table("patients") as batch:
        for column in ("zip", "city", "address_line2", "address_line1"):
            batch.drop_column(column)
    op.drop_index(op.f("ix_claim_exports_claim_id"), table_name="claim_exports")
    op.drop_table("claim_exports")
    op.drop_table('claim_lines')
    op.drop_table('claim_edits')
    with op.batch_alter_table('claims', schema=None) as batch_op:
        batch_op.drop_index('ix_claims_billing_organization_id_id')

    op.drop_table('claims')
    op.drop_table('fee_schedule_entries')
