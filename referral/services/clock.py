"""Times typed in the pages or sent without an offset are wall times in the practice's zone."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from referral import timezones
from referral.errors import ValidationFailed
from referral.models import Organization


def practice_zone(session: Session, organization_id: uuid.UUID) -> str | None:
    organization = session.get(Organization, organization_id)
    return organization.time_zone if organization is not None else None


def practice_moment(value: datetime, zone_name: str | None, field: str, what: str) -> datetime:
    """``value`` as an aware UTC moment: one with an offset keeps it, a wall time is read in ``zone_name``.
    A moment later than now (beyond the clocks' usual difference) is refused with 422 naming ``field``."""
    try:
        moment = timezones.from_local(value, zone_name)
    except (OverflowError, ValueError):
        raise ValidationFailed(f"{what} is not a valid date and time",
                               _at(field, "Not a valid date and time.")) from None
    if timezones.is_future(moment):
        where = f" in the practice's time zone ({zone_name})" if zone_name and value.tzinfo is None else ""
        raise ValidationFailed(f"{what} is later than now{where}; check the date and time",
                               _at(field, "Must not be in the future."))
    return moment


def _at(field: str, message: str) -> dict[str, Any]:
    """``{"consent": {"given_at": [message]}}`` for ``consent.given_at``."""
    errors: Any = [message]
    for part in reversed(field.split(".")):
        errors = {part: errors}
    return dict(errors)
