"""Resumable (tus 1.0) uploads: how far each one has arrived, its parts, and what became of it.

Revision ID: tus_uploads
Revises: mfa
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "tus_uploads"
down_revision = "mfa"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tus_uploads",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("created_by_user_id", sa.Uuid(), nullable=False, comment="the only user who may continue it"),
        sa.Column("upload_length", sa.BigInteger(), nullable=False, comment="the file's size, declared at creation"),
        sa.Column("upload_offset", sa.BigInteger(), nullable=False, comment="bytes received so far"),
        sa.Column("fields", sa.JSON(), nullable=False,
                  comment="the image's form fields from Upload-Metadata, as sent (checked at creation)"),
        sa.Column("filename", sa.String(length=255), nullable=True, comment="the file's name, for display only"),
        sa.Column("storage_key", sa.String(length=512), nullable=False,
                  comment="the tus/ key the parts are assembled under; never an image key"),
        sa.Column("part_size", sa.Integer(), nullable=False, comment="the size of every part but the last"),
        sa.Column("multipart_id", sa.String(length=1024), nullable=True,
                  comment="the store's multipart upload, once the first full part was sent"),
        sa.Column("parts", sa.JSON(), nullable=False, comment="[number, etag] of each part sent"),
        sa.Column("tail_key", sa.String(length=512), nullable=True,
                  comment="the bytes after the last full part, waiting for the next chunk"),
        sa.Column("status", sa.Enum("active", "completed", "failed", "terminated", "expired", name="tus_upload_status",
                                    native_enum=False, create_constraint=True, length=32), nullable=False),
        sa.Column("image_id", sa.Uuid(), nullable=True, comment="the image it became, once completed"),
        sa.Column("failure_reason", sa.String(length=200), nullable=True,
                  comment="why it was refused, terminated or expired; a code, never PHI"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False,
                  comment="when an unfinished upload is given up; moved on by every chunk received"),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True, comment="when it was settled"),
        sa.Column("swept_at", sa.DateTime(timezone=True), nullable=True,
                  comment="when the worker cleared its parts and objects"),
        sa.ForeignKeyConstraint(["image_id"], ["images.id"], name=op.f("fk_tus_uploads_image_id_images")),
        sa.ForeignKeyConstraint(["referral_id"], ["referrals.id"], name=op.f("fk_tus_uploads_referral_id_referrals")),
        sa.ForeignKeyConstraint(["created_by_user_id"], ["users.id"],
                                name=op.f("fk_tus_uploads_created_by_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tus_uploads")),
        sa.UniqueConstraint("image_id", name=op.f("uq_tus_uploads_image_id")),
        sa.UniqueConstraint("storage_key", name=op.f("uq_tus_uploads_storage_key")),
    )
    with op.batch_alter_table("tus_uploads") as batch:
        batch.create_index(batch.f("ix_tus_uploads_referral_id"), ["referral_id"], unique=False)
        batch.create_index("ix_tus_uploads_swept_at_expires_at", ["swept_at", "expires_at"], unique=False)


def downgrade() -> None:
    op.drop_table("tus_uploads")
