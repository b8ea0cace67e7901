from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from referral.db import Base, UTCDateTime, new_id, utcnow


class DicomDevice(Base):
    """Imaging software or a sensor of one practice, allowed to use the DICOM listener under its AE title."""

    __tablename__ = "dicom_devices"
    __table_args__ = (sa.Index("ux_dicom_devices_ae_title", "ae_title", unique=True),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    ae_title: Mapped[str] = mapped_column(
        sa.String(16), comment="the calling AE title the device presents; unique across practices")
    host: Mapped[str | None] = mapped_column(
        sa.String(255), comment="the only address associations from this AE title are accepted from; null: any")
    description: Mapped[str] = mapped_column(sa.String(200))
    created_by_user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
