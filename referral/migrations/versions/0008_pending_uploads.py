"""Direct-to-storage uploads: the upload forms handed out and what became of them.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("pending_uploads",
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("referral_id", sa.Uuid(), nullable=False),
    sa.Column("uploaded_by_user_id", sa.Uuid(), nullable=False, comment="the only user who may complete it"),
    sa.Column("storage_key", sa.String(length=512), nullable=False, comment="where the form puts the bytes; made by the server"),
    sa.Column("max_bytes", sa.BigInteger(), nullable=False, comment="the largest file the form accepts"),
    sa.Column("status", sa.Enum("pending", "completed", "failed", "expired", name="pending_upload_status", native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column("image_id", sa.Uuid(), nullable=True, comment="the image it became, once completed"),
    sa.Column("failure_reason", sa.String(length=200), nullable=True, comment="why completion refused it or it expired; never PHI"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, comment="when the form stops being accepted"),
    sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True, comment="when completion settled it, as completed or failed"),
    sa.Column("swept_at", sa.DateTime(timezone=True), nullable=True, comment="when the worker cleared its key after the form expired"),
    sa.ForeignKeyConstraint(["image_id"], ["images.id"], name=op.f("fk_pending_uploads_image_id_images")),
    sa.ForeignKeyConstraint(["referral_id"], ["referrals.id"], name=op.f("fk_pending_uploads_referral_id_referrals")),
    sa.ForeignKeyConstraint(["uploaded_by_user_id"], ["users.id"], name=op.f("fk_pending_uploads_uploaded_by_user_id_users")),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_uploads")),
    sa.UniqueConstraint("image_id", name=op.f("uq_pending_uploads_image_id")),
    sa.UniqueConstraint("storage_key", name=op.f("uq_pending_uploads_storage_key"))
    )
    with op.batch_alter_table("pending_uploads") as batch:
        batch.create_index(batch.f("ix_pending_uploads_referral_id"), ["referral_id"], unique=False)
        batch.create_index("ix_pending_uploads_swept_at_expires_at", ["swept_at", "expires_at"], unique=False)


def downgrade() -> None:
    op.drop_table("pending_uploads")
