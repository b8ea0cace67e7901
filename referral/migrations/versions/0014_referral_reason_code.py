"""A referral's reason as a code: the SNOMED CT concept of the dental reason for referral, when one fits.

One new nullable column: SQLite adds it in place.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-20
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("referrals") as batch:
        batch.add_column(sa.Column(
            "reason_code", sa.String(length=20), nullable=True,
            comment="SNOMED CT code of the reason, from the dental reason-for-referral list, when one fits"))


def downgrade() -> None:
    # Plain DROP COLUMN, as in 0009: a batch rebuild of referrals is refused while rows reference it.
    op.drop_column("referrals", "reason_code")
