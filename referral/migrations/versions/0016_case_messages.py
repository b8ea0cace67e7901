"""Case conversation, read markers, email preferences and the structured question.

New tables: the messages on a case, how far each person has read each case, and which emails each person wants.
New nullable columns: the referral's questions and who decides restorability, the report's answer (SQLite adds
them in place).

Revision ID: case_messages
Revises: 0014
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "case_messages"
down_revision = "practice_setup"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_messages",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("author_user_id", sa.Uuid(), nullable=False),
        sa.Column("author_organization_id", sa.Uuid(), nullable=False),
        sa.Column("image_id", sa.Uuid(), nullable=True,
                  comment="an image of the same case the message is about, if any"),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["referral_id"], ["referrals.id"], name=op.f("fk_case_messages_referral_id_referrals")),
        sa.ForeignKeyConstraint(["author_user_id"], ["users.id"], name=op.f("fk_case_messages_author_user_id_users")),
        sa.ForeignKeyConstraint(["author_organization_id"], ["organizations.id"],
                                name=op.f("fk_case_messages_author_organization_id_organizations")),
        sa.ForeignKeyConstraint(["image_id"], ["images.id"], name=op.f("fk_case_messages_image_id_images")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_messages")),
    )
    op.create_index("ix_case_messages_referral_id_id", "case_messages", ["referral_id", "id"], unique=False)
    op.create_table(
        "case_reads",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_case_reads_user_id_users")),
        sa.ForeignKeyConstraint(["referral_id"], ["referrals.id"], name=op.f("fk_case_reads_referral_id_referrals")),
        sa.PrimaryKeyConstraint("user_id", "referral_id", name=op.f("pk_case_reads")),
    )
    op.create_table(
        "notification_preferences",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("email_routed", sa.Boolean(), nullable=False),
        sa.Column("email_report_signed", sa.Boolean(), nullable=False),
        sa.Column("email_retake_requested", sa.Boolean(), nullable=False),
        sa.Column("email_declined", sa.Boolean(), nullable=False,
                  comment="a reader declined, or no reader could be found"),
        sa.Column("email_message", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_notification_preferences_user_id_users")),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_notification_preferences")),
    )


    with op.batch_alter_table("referrals") as batch:
        batch.add_column(sa.Column(
            "questions", sa.JSON(), nullable=True,
            comment="what the referring dentist asks: diagnosis, treatment_plan, restorability"))
        batch.add_column(sa.Column(
            "restorability_decided_by", sa.String(length=20), nullable=True,
            comment="referring_dentist or reader, when restorability is asked"))
    with op.batch_alter_table("reports") as batch:
        batch.add_column(sa.Column("answer", sa.Text(), nullable=True,
                                   comment="the reader's answer to the referring dentist's question"))


def downgrade() -> None:
    # Plain DROP COLUMN, as in 0014: a batch rebuild is refused while rows reference these tables.
    op.drop_column("reports", "answer")
    op.drop_column("referrals", "restorability_decided_by")
    op.drop_column("referrals", "questions")
    op.drop_table("notification_preferences")
    op.drop_table("case_reads")
    op.drop_index("ix_case_messages_referral_id_id", table_name="case_messages")
    op.drop_table("case_messages")
