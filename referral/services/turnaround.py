"""How fast cases come back: for an organization admin, per practice and per reader, the time from sending a
case to its acceptance and to its signed report, and how many cases ran past their response deadline.

An organization sees the cases it sent (grouped by the reader who took them) and the cases its readers were
given (grouped by the practice that sent them). Counts and durations only: no patient, no case id.
"""

from __future__ import annotations

import statistics
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from referral import timezones
from referral.db import utcnow
from referral.errors import ValidationFailed
from referral.models import Organization, Provider, Referral, Report
from referral.models.enums import Role
from referral.models.reports import ReportStatus
from referral.services import access, audit
from referral.services.actor import Actor
from referral.services.referrals import AWAITING_RESPONSE

MAX_DAYS = 366
DEFAULT_DAYS = 30


@dataclass
class _Group:
    accept_hours: list[float] = field(default_factory=list)
    report_hours: list[float] = field(default_factory=list)
    sent: int = 0
    overdue: int = 0
    overdue_open: int = 0

    def summary(self) -> dict[str, Any]:
        def median(values: list[float]) -> float | None:
            return round(statistics.median(values), 1) if values else None

        def mean(values: list[float]) -> float | None:
            return round(statistics.fmean(values), 1) if values else None

        return {"sent": self.sent, "accepted": len(self.accept_hours), "reported": len(self.report_hours),
                "median_hours_to_accept": median(self.accept_hours), "mean_hours_to_accept": mean(self.accept_hours),
                "median_hours_to_report": median(self.report_hours), "mean_hours_to_report": mean(self.report_hours),
                "overdue": self.overdue, "overdue_open": self.overdue_open}


def _hours(later: datetime, earlier: datetime) -> float:
    return max((later - earlier).total_seconds() / 3600, 0.0)


def window(first: date | None, last: date | None, today: date) -> tuple[date, date]:
    """The days asked for (both included); the last 30 days by default. A reversed or too long range is refused."""
    last = last or today
    first = first or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise ValidationFailed("The start date is after the end date", {"from": ["Must be on or before 'to'."]})
    if (last - first).days + 1 > MAX_DAYS:
        raise ValidationFailed(f"Ask for at most {MAX_DAYS} days at a time",
                               {"to": [f"At most {MAX_DAYS} days after 'from'."]})
    return first, last


def turnaround(session: Session, actor: Actor, first: date | None, last: date | None) -> dict[str, Any]:
    access.require_role(actor, Role.ORG_ADMIN)
    organization_id, _ = access.membership(actor)
    organization = session.get(Organization, organization_id)
    zone = organization.time_zone if organization is not None else None
    now = utcnow()
    first, last = window(first, last, timezones.local(now, zone).date())
    start = timezones.from_local(datetime.combine(first, time.min), zone)
    end = timezones.from_local(datetime.combine(last + timedelta(days=1), time.min), zone)

    own_readers = sa.select(Provider.id).where(Provider.organization_id == organization_id)
    rows = session.execute(
        sa.select(Referral.organization_id, Referral.assigned_provider_id, Referral.status, Referral.submitted_at,
                  Referral.accepted_at, Referral.due_at, Report.reader_provider_id, Report.signed_at, Report.status)
        .outerjoin(Report, Report.referral_id == Referral.id)
        .where(Referral.submitted_at.is_not(None), Referral.submitted_at >= start, Referral.submitted_at < end,
               sa.or_(Referral.organization_id == organization_id,
                      Referral.assigned_provider_id.in_(own_readers),
                      Report.reader_provider_id.in_(own_readers)))
    ).all()

    totals = _Group()
    practices: dict[uuid.UUID, _Group] = {}
    readers: dict[uuid.UUID | None, _Group] = {}
    for sender, assigned, status, submitted, accepted, due, report_reader, signed, report_status in rows:
        if submitted is None:
            continue
        reader = report_reader or assigned
        signed_at = signed if report_status == ReportStatus.SIGNED else None
        for group in (totals, practices.setdefault(sender, _Group()), readers.setdefault(reader, _Group())):
            group.sent += 1
            if accepted is not None:
                group.accept_hours.append(_hours(accepted, submitted))
            if signed_at is not None:
                group.report_hours.append(_hours(signed_at, submitted))
                if signed_at > due:
                    group.overdue += 1
            elif status in AWAITING_RESPONSE and due < now:
                group.overdue += 1
                group.overdue_open += 1

    practice_names: dict[uuid.UUID, str] = {}
    if practices:
        for org_id, name in session.execute(
                sa.select(Organization.id, Organization.name).where(Organization.id.in_(set(practices)))):
            practice_names[org_id] = name
    known = {r for r in readers if r is not None}
    providers = {p.id: p for p in session.scalars(sa.select(Provider).where(Provider.id.in_(known)))} if known else {}
    by_practice = [{"organization_id": org, "name": practice_names.get(org, ""), **group.summary()}
                   for org, group in practices.items()]
    by_practice.sort(key=lambda item: (str(item["name"]), str(item["organization_id"])))
    by_reader = []
    for provider_id, group in readers.items():
        provider = providers.get(provider_id) if provider_id is not None else None
        by_reader.append({"provider_id": provider_id, "name": provider.display_name if provider else "No reader yet",
                          "organization_id": provider.organization_id if provider else None, **group.summary()})
    by_reader.sort(key=lambda item: (str(item["name"]), str(item["provider_id"])))
    audit.record(session, actor, "report.turnaround", object_type="organization", object_id=organization_id,
                 organization_id=organization_id, details={"from": first.isoformat(), "to": last.isoformat()})
    session.commit()
    return {"first": first, "last": last, "time_zone": zone or "UTC", "totals": totals.summary(),
            "by_practice": by_practice, "by_reader": by_reader}
