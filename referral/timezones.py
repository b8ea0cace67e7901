"""Practices' time zones. Times are stored in UTC; people read and type them in their practice's zone.

A practice without a zone of its own gets the zone most of its state's people live in: a practice in a
state that spans two zones (Florida's panhandle, west Texas, most of Idaho) picks its own in the pages.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

STATE_ZONES = {
    "AL": "America/Chicago", "AK": "America/Anchorage", "AZ": "America/Phoenix", "AR": "America/Chicago",
    "CA": "America/Los_Angeles", "CO": "America/Denver", "CT": "America/New_York", "DE": "America/New_York",
    "DC": "America/New_York", "FL": "America/New_York", "GA": "America/New_York", "HI": "Pacific/Honolulu",
    "ID": "America/Boise", "IL": "America/Chicago", "IN": "America/Indiana/Indianapolis", "IA": "America/Chicago",
    "KS": "America/Chicago", "KY": "America/New_York", "LA": "America/Chicago", "ME": "America/New_York",
    "MD": "America/New_York", "MA": "America/New_York", "MI": "America/Detroit", "MN": "America/Chicago",
    "MS": "America/Chicago", "MO": "America/Chicago", "MT": "America/Denver", "NE": "America/Chicago",
    "NV": "America/Los_Angeles", "NH": "America/New_York", "NJ": "America/New_York", "NM": "America/Denver",
    "NY": "America/New_York", "NC": "America/New_York", "ND": "America/Chicago", "OH": "America/New_York",
    "OK": "America/Chicago", "OR": "America/Los_Angeles", "PA": "America/New_York", "RI": "America/New_York",
    "SC": "America/New_York", "SD": "America/Chicago", "TN": "America/Chicago", "TX": "America/Chicago",
    "UT": "America/Denver", "VT": "America/New_York", "VA": "America/New_York", "WA": "America/Los_Angeles",
    "WV": "America/New_York", "WI": "America/Chicago", "WY": "America/Denver", "AS": "Pacific/Pago_Pago",
    "GU": "Pacific/Guam", "MP": "Pacific/Saipan", "PR": "America/Puerto_Rico", "VI": "America/St_Thomas",
}
# For a state this table does not know (none today), and the column's default in the database.
FALLBACK_ZONE = "America/New_York"
# The zones offered first in the pages: those of the states and territories above.
US_ZONES = tuple(sorted(set(STATE_ZONES.values())))
MAX_ZONE_LENGTH = 64
# Clocks differ (a sensor's PC, a phone, the server): a time up to this far ahead of the server's is not
# "in the future".
CLOCK_SKEW = timedelta(minutes=5)


def zone_for_state(state: str) -> str:
    return STATE_ZONES.get(state.upper(), FALLBACK_ZONE)


@cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def is_zone(name: str) -> bool:
    """An IANA zone name this server knows (``America/Los_Angeles``); never a file path or an offset."""
    return 0 < len(name) <= MAX_ZONE_LENGTH and name in _known_zones()


def zone(name: str | None) -> tzinfo:
    """The zone called ``name``, or UTC for none (a platform admin has no practice)."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def local(moment: datetime, name: str | None) -> datetime:
    """``moment`` (aware) as wall time in the zone ``name``."""
    return moment.astimezone(zone(name))


def from_local(wall_time: datetime, name: str | None) -> datetime:
    """A wall time typed in the zone ``name`` (naive, as a form gives it) as an aware UTC moment; an aware
    value keeps its own offset."""
    if wall_time.tzinfo is None:
        wall_time = wall_time.replace(tzinfo=zone(name))
    return wall_time.astimezone(UTC)


def is_future(moment: datetime, now: datetime | None = None) -> bool:
    """Later than now by more than the clocks may differ."""
    return moment > (now or datetime.now(UTC)) + CLOCK_SKEW


def wall_time(moment: datetime) -> datetime:
    """``moment`` as it reads on a clock, without its zone (for a form's date-and-time field)."""
    return moment.replace(tzinfo=None)


def describe(moment: datetime | None, name: str | None, *, with_time: bool = True) -> str:
    """How a person reads a moment in their zone: ``Dec 2, 2026, 9:30 AM PST`` (or ``Dec 2, 2026``)."""
    if moment is None:
        return ""
    when = local(moment, name)
    day = f"{when:%b} {when.day}, {when.year}"
    if not with_time:
        return day
    hour = when.hour % 12 or 12
    return f"{day}, {hour}:{when:%M} {'AM' if when.hour < 12 else 'PM'} {when.tzname()}"
