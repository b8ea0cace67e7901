"""DICOM networking: accession numbers and study UIDs for referrals, registered devices, network-received images.

Every referral gets an accession number (unique within its practice) and a Study Instance UID; existing rows
are given theirs here. The generators are written out as they stood, so that a later change to the
application's format does not rewrite history. New columns are nullable (or have a server default) and the
uniqueness rules are indexes, so SQLite adds them in place, without rebuilding tables others reference.

Revision ID: dicom_network
Revises: 0014
Create Date: 2026-12-02
"""

import secrets
import uuid

import sqlalchemy as sa
from alembic import op

revision = "dicom_network"
down_revision = "claim_lifecycle"
branch_labels = None
depends_on = None

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _accession_number() -> str:
    return "R" + "".join(secrets.choice(_ALPHABET) for _ in range(9))


def upgrade() -> None:
    with op.batch_alter_table("referrals") as batch:
        batch.add_column(sa.Column(
            "accession_number", sa.String(length=16), nullable=True,
            comment="the case's DICOM accession number, unique within the practice"))
        batch.add_column(sa.Column(
            "study_instance_uid", sa.String(length=64), nullable=True,
            comment="the DICOM Study Instance UID the worklist gives the case"))
    referrals = sa.table("referrals", sa.column("id", sa.Uuid), sa.column("accession_number", sa.String),
                         sa.column("study_instance_uid", sa.String))
    conn = op.get_bind()
    taken: set[str] = set()
    for (referral_id,) in conn.execute(sa.select(referrals.c.id)).all():
        number = _accession_number()
        while number in taken:
            number = _accession_number()
        taken.add(number)
        conn.execute(referrals.update().where(referrals.c.id == referral_id).values(
            accession_number=number, study_instance_uid=f"2.25.{uuid.uuid4().int}"))
    op.create_index("ux_referrals_org_accession", "referrals", ["organization_id", "accession_number"],
                    unique=True)
    op.create_index("ux_referrals_study_instance_uid", "referrals", ["study_instance_uid"], unique=True)

    op.create_table(
        "dicom_devices",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("ae_title", sa.String(length=16), nullable=False,
                  comment="the calling AE title the device presents; unique across practices"),
        sa.Column("host", sa.String(length=255), nullable=True,
                  comment="the only address associations from this AE title are accepted from; null: any"),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("created_by_user_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"],
                                name="fk_dicom_devices_organization_id_organizations"),
        sa.ForeignKeyConstraint(["created_by_user_id"], ["users.id"],
                                name="fk_dicom_devices_created_by_user_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_dicom_devices"),
    )
    op.create_index("ix_dicom_devices_organization_id", "dicom_devices", ["organization_id"])
    op.create_index("ux_dicom_devices_ae_title", "dicom_devices", ["ae_title"], unique=True)

    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column(
            "sop_instance_uid", sa.String(length=64), nullable=True,
            comment="SOP Instance UID of an image received over the DICOM network; one image per referral"))
        batch.add_column(sa.Column(
            "captured_by_confirmed", sa.Boolean(), nullable=False, server_default=sa.true(),
            comment="false while the office has yet to confirm who captured an image its device sent"))
    op.create_index("ux_images_referral_sop_instance", "images", ["referral_id", "sop_instance_uid"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_images_referral_sop_instance", table_name="images")
    # Plain DROP COLUMN, as in 0009: a batch rebuild of a referenced table is refused while rows reference it.
    op.drop_column("images", "captured_by_confirmed")
    op.drop_column("images", "sop_instance_uid")
    op.drop_index("ux_dicom_devices_ae_title", table_name="dicom_devices")
    op.drop_index("ix_dicom_devices_organization_id", table_name="dicom_devices")
    op.drop_table("dicom_devices")
    op.drop_index("ux_referrals_study_instance_uid", table_name="referrals")
    op.drop_index("ux_referrals_org_accession", table_name="referrals")
    op.drop_column("referrals", "study_instance_uid")
    op.drop_column("referrals", "accession_number")
