"""Images can be fixed until their case is sent: each image records when it was first sent.

One new nullable column: SQLite adds it in place. An image already stored was sent with the first submission
that followed its upload; one uploaded since the last submission (a retake not sent yet) stays unsent.

Revision ID: capture_drafts
Revises: 0014
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "capture_drafts"
down_revision = "claim_attachments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column(
            "sent_at", sa.DateTime(timezone=True), nullable=True,
            comment="when the case was first sent with this image; null while it can still be fixed"))
    images = sa.table("images", sa.column("referral_id", sa.Uuid), sa.column("created_at", sa.DateTime(timezone=True)),
                      sa.column("sent_at", sa.DateTime(timezone=True)))
    events = sa.table("referral_events", sa.column("referral_id", sa.Uuid), sa.column("action", sa.String),
                      sa.column("at", sa.DateTime(timezone=True)))
    first_send = (sa.select(sa.func.min(events.c.at))
                  .where(events.c.referral_id == images.c.referral_id, events.c.action == "submit",
                         events.c.at >= images.c.created_at)
                  .scalar_subquery())
    op.execute(images.update().values(sent_at=first_send))


def downgrade() -> None:
    # Plain DROP COLUMN, as in 0009 and 0014: a batch rebuild of images is refused while rows reference it.
    op.drop_column("images", "sent_at")
