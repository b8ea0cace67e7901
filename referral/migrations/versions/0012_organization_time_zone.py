"""Each practice has an IANA time zone: times are shown, and typed, in it.

Existing practices get the zone most of their state uses (the same table new practices are defaulted from,
written here as it stood, so that a later change to the application's table does not rewrite history).
A NOT NULL column with a default: SQLite adds it in place, without rebuilding a table others reference.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_FALLBACK = "America/New_York"
_ZONES = {
    "America/Chicago": "AL AR IL IA KS LA MN MS MO NE ND OK SD TN TX WI",
    "America/New_York": "CT DE DC FL GA KY ME MD MA NH NJ NY NC OH PA RI SC VT VA WV",
    "America/Denver": "CO MT NM UT WY",
    "America/Los_Angeles": "CA NV OR WA",
    "America/Anchorage": "AK", "America/Phoenix": "AZ", "Pacific/Honolulu": "HI", "America/Boise": "ID",
    "America/Indiana/Indianapolis": "IN", "America/Detroit": "MI", "Pacific/Pago_Pago": "AS", "Pacific/Guam": "GU",
    "Pacific/Saipan": "MP", "America/Puerto_Rico": "PR", "America/St_Thomas": "VI",
}


def upgrade() -> None:
    with op.batch_alter_table("organizations") as batch:
        batch.add_column(sa.Column(
            "time_zone", sa.String(length=64), nullable=False, server_default=_FALLBACK,
            comment="IANA zone in which the practice's people read and type times"))
    organizations = sa.table("organizations", sa.column("state", sa.String), sa.column("time_zone", sa.String))
    for zone, states in _ZONES.items():
        if zone != _FALLBACK:
            op.execute(organizations.update().where(organizations.c.state.in_(states.split()))
                       .values(time_zone=zone))


def downgrade() -> None:
    op.drop_column("organizations", "time_zone")
