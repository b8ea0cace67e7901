"""Claim life cycle: status events, per-practice 837D interchanges (batches), remittances (835) and
acknowledgements (999/277CA); the claim's narrative and CLM01; line-level place of service and date basis.

Revision ID: claim_lifecycle
Revises: 0014
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "claim_lifecycle"
down_revision = "case_messages"
branch_labels = None
depends_on = None

_MONEY = sa.Numeric(precision=12, scale=2)


def upgrade() -> None:
    with op.batch_alter_table("claims") as batch:
        batch.alter_column("status", existing_type=sa.String(length=10), type_=sa.String(length=20),
                           existing_nullable=False, existing_comment="ready, or hold while an edit blocks it",
                           comment="life-cycle state, one of CLAIM_STATUSES")
        batch.add_column(sa.Column("narrative", sa.String(length=80), nullable=True,
                                   comment="the claim note sent as NTE*ADD"))
        batch.add_column(sa.Column("narrative_edited", sa.Boolean(), nullable=False, server_default=sa.false(),
                                   comment="billing wrote the narrative; regeneration keeps it"))
        batch.add_column(sa.Column("patient_control_number", sa.String(length=20), nullable=True,
                                   comment="CLM01 as first exported; the payer echoes it in 277CA and 835"))
        batch.add_column(sa.Column("payer_claim_number", sa.String(length=50), nullable=True,
                                   comment="the payer's number (835 CLP07)"))
        batch.add_column(sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_claims_patient_control_number", ["patient_control_number"], unique=False)
    with op.batch_alter_table("claims") as batch:
        batch.alter_column("narrative_edited", server_default=None, existing_type=sa.Boolean(),
                           existing_nullable=False,
                           existing_comment="billing wrote the narrative; regeneration keeps it")
    with op.batch_alter_table("claim_lines") as batch:
        batch.add_column(sa.Column(
            "place_of_service", sa.String(length=2), nullable=True,
            comment="where this line was performed when not at the claim's place; None: the claim's"))
        batch.add_column(sa.Column("date_basis", sa.String(length=10), nullable=True,
                                   comment="what the line's date is: capture, reading or visit"))

    op.create_table(
        "claim_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("claim_id", sa.Uuid(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False, comment="1, 2, ... per claim, in order"),
        sa.Column("from_status", sa.String(length=20), nullable=True, comment="None for the claim's first event"),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("actor_user_id", sa.Uuid(), nullable=True),
        sa.Column("actor_label", sa.String(length=200), nullable=False,
                  comment="who, in words, also for the system itself"),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["claim_id"], ["claims.id"], name=op.f("fk_claim_events_claim_id_claims")),
        sa.ForeignKeyConstraint(["actor_user_id"], ["users.id"], name=op.f("fk_claim_events_actor_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_claim_events")),
    )
    op.create_index(op.f("ix_claim_events_claim_id"), "claim_events", ["claim_id"])

    op.create_table(
        "claim_batches",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("control_number", sa.Integer(), nullable=False),
        sa.Column("payer_id", sa.String(length=80), nullable=False),
        sa.Column("claim_ids", sa.JSON(), nullable=False),
        sa.Column("interchange", sa.Text(), nullable=False, comment="the 837D as sent"),
        sa.Column("created_by_user_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"],
                                name=op.f("fk_claim_batches_organization_id_organizations")),
        sa.ForeignKeyConstraint(["created_by_user_id"], ["users.id"],
                                name=op.f("fk_claim_batches_created_by_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_claim_batches")),
        sa.UniqueConstraint("organization_id", "control_number",
                            name=op.f("uq_claim_batches_organization_id_control_number")),
    )
    with op.batch_alter_table("claim_exports") as batch:
        batch.add_column(sa.Column("batch_id", sa.Uuid(), nullable=True,
                                   comment="the 837D interchange this export went out in"))
        batch.create_foreign_key(op.f("fk_claim_exports_batch_id_claim_batches"), "claim_batches",
                                 ["batch_id"], ["id"])

    op.create_table(
        "remittances",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("trace_number", sa.String(length=80), nullable=False, comment="TRN02: check or EFT number"),
        sa.Column("payer_id", sa.String(length=80), nullable=True),
        sa.Column("payer_name", sa.String(length=120), nullable=True),
        sa.Column("paid_total", _MONEY, nullable=False, comment="BPR02"),
        sa.Column("payment_date", sa.Date(), nullable=True),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("unmatched", sa.JSON(), nullable=False,
                  comment="payments in the file that are not this practice's claims"),
        sa.Column("received_by_user_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"],
                                name=op.f("fk_remittances_organization_id_organizations")),
        sa.ForeignKeyConstraint(["received_by_user_id"], ["users.id"],
                                name=op.f("fk_remittances_received_by_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_remittances")),
        sa.UniqueConstraint("organization_id", "trace_number",
                            name=op.f("uq_remittances_organization_id_trace_number")),
    )
    op.create_table(
        "remittance_claims",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("remittance_id", sa.Uuid(), nullable=False),
        sa.Column("claim_id", sa.Uuid(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.String(length=2), nullable=False, comment="CLP02"),
        sa.Column("charge", _MONEY, nullable=False),
        sa.Column("paid", _MONEY, nullable=False),
        sa.Column("patient_share", _MONEY, nullable=True),
        sa.Column("payer_claim_number", sa.String(length=50), nullable=True),
        sa.Column("adjustments", sa.JSON(), nullable=False, comment="claim-level CAS"),
        sa.Column("result_status", sa.String(length=20), nullable=False,
                  comment="the claim's status this payment set"),
        sa.Column("previous_status", sa.String(length=20), nullable=False,
                  comment="the claim's status before it"),
        sa.Column("reversed_by_id", sa.Uuid(), nullable=True, comment="the reversal that undid it"),
        sa.ForeignKeyConstraint(["remittance_id"], ["remittances.id"],
                                name=op.f("fk_remittance_claims_remittance_id_remittances")),
        sa.ForeignKeyConstraint(["claim_id"], ["claims.id"], name=op.f("fk_remittance_claims_claim_id_claims")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_remittance_claims")),
    )
    op.create_index(op.f("ix_remittance_claims_remittance_id"), "remittance_claims", ["remittance_id"])
    op.create_index(op.f("ix_remittance_claims_claim_id"), "remittance_claims", ["claim_id"])
    op.create_table(
        "remittance_lines",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("remittance_claim_id", sa.Uuid(), nullable=False),
        sa.Column("claim_line_id", sa.Uuid(), nullable=True, comment="None when the payer's line matched none"),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("control_number", sa.String(length=50), nullable=True, comment="REF*6R as returned"),
        sa.Column("code", sa.String(length=10), nullable=False, comment="the adjudicated code"),
        sa.Column("submitted_code", sa.String(length=10), nullable=True, comment="SVC06 when the payer recoded"),
        sa.Column("charge", _MONEY, nullable=False),
        sa.Column("paid", _MONEY, nullable=False),
        sa.Column("adjustments", sa.JSON(), nullable=False, comment="[{group, reason, amount, explanation}]"),
        sa.Column("remarks", sa.JSON(), nullable=False, comment="RARC codes"),
        sa.ForeignKeyConstraint(["remittance_claim_id"], ["remittance_claims.id"],
                                name=op.f("fk_remittance_lines_remittance_claim_id_remittance_claims")),
        sa.ForeignKeyConstraint(["claim_line_id"], ["claim_lines.id"],
                                name=op.f("fk_remittance_lines_claim_line_id_claim_lines")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_remittance_lines")),
    )
    op.create_index(op.f("ix_remittance_lines_remittance_claim_id"), "remittance_lines", ["remittance_claim_id"])
    op.create_table(
        "acknowledgements",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=5), nullable=False, comment="999 or 277CA"),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.Column("unmatched", sa.JSON(), nullable=False),
        sa.Column("received_by_user_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"],
                                name=op.f("fk_acknowledgements_organization_id_organizations")),
        sa.ForeignKeyConstraint(["received_by_user_id"], ["users.id"],
                                name=op.f("fk_acknowledgements_received_by_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_acknowledgements")),
    )
    op.create_index(op.f("ix_acknowledgements_organization_id"), "acknowledgements", ["organization_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_acknowledgements_organization_id"), table_name="acknowledgements")
    op.drop_table("acknowledgements")
    op.drop_index(op.f("ix_remittance_lines_remittance_claim_id"), table_name="remittance_lines")
    op.drop_table("remittance_lines")
    op.drop_index(op.f("ix_remittance_claims_claim_id"), table_name="remittance_claims")
    op.drop_index(op.f("ix_remittance_claims_remittance_id"), table_name="remittance_claims")
    op.drop_table("remittance_claims")
    op.drop_table("remittances")
    with op.batch_alter_table("claim_exports") as batch:
        batch.drop_constraint(op.f("fk_claim_exports_batch_id_claim_batches"), type_="foreignkey")
        batch.drop_column("batch_id")
    op.drop_table("claim_batches")
    op.drop_index(op.f("ix_claim_events_claim_id"), table_name="claim_events")
    op.drop_table("claim_events")
    with op.batch_alter_table("claim_lines") as batch:
        batch.drop_column("date_basis")
        batch.drop_column("place_of_service")
    with op.batch_alter_table("claims") as batch:
        batch.drop_index("ix_claims_patient_control_number")
        for column in ("submitted_at", "payer_claim_number", "patient_control_number", "narrative_edited",
                       "narrative"):
            batch.drop_column(column)
        batch.alter_column("status", existing_type=sa.String(length=20), type_=sa.String(length=10),
                           existing_nullable=False, existing_comment="life-cycle state, one of CLAIM_STATUSES",
                           comment="ready, or hold while an edit blocks it")
