from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from referral.db import Base, UTCDateTime


class MaintenanceRun(Base):
    """When a periodic job of the worker last started. Shared by every worker process, so a job due every N
    minutes runs once per N minutes however many workers (or cron-started ``worker --once``) there are."""

    __tablename__ = "maintenance_runs"

    name: Mapped[str] = mapped_column(sa.String(50), primary_key=True, comment="the job, e.g. storage_sweep")
    last_started_at: Mapped[datetime] = mapped_column(UTCDateTime)
