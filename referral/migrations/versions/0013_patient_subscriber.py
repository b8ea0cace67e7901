"""A dependant's coverage names its subscriber: the insured person's name, birth date, sex and address.

Only new nullable columns: SQLite adds them in place, without rebuilding a table others reference. Sex is
kept as its one-letter code (F, M, U), checked by the API, so that no constraint needs a table rebuild.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("coverage_subscriber_first_name", sa.String(length=100), "the insured person, when not the patient"),
    ("coverage_subscriber_last_name", sa.String(length=100), None),
    ("coverage_subscriber_birth_date", sa.Date(), None),
    ("coverage_subscriber_sex", sa.String(length=1), "F, M or U"),
    ("coverage_subscriber_address_line1", sa.String(length=200), None),
    ("coverage_subscriber_address_line2", sa.String(length=200), None),
    ("coverage_subscriber_city", sa.String(length=100), None),
    ("coverage_subscriber_state", sa.String(length=2), None),
    ("coverage_subscriber_zip", sa.String(length=9), None),
)


def upgrade() -> None:
    with op.batch_alter_table("patients") as batch:
        for name, type_, comment in _COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True, comment=comment))


def downgrade() -> None:
    # Plain DROP COLUMN: a batch rebuild of patients is refused while referrals reference its rows.
    for name, _type, _comment in reversed(_COLUMNS):
        op.drop_column("patients", name)
