"""Optional email to people about their cases (on when SMTP_URL is set; each person chooses which).

Emails go to a reader when a case is routed to them, to the referring office when a report is signed, a retake
is asked for, or a reader declines (or none can be found), and to the other side of a case when someone writes
on it. Each person's choices are in ``notifications``; only active users who may see the case are emailed.

An email leaves the organization's systems, so it says only what happened and where: a link to the case's page
(under PUBLIC_BASE_URL) and the referral id, never patient details or message text. Each event is emailed at
most once: the worker inserts the event's ``EmailNotification`` row before sending, and the row's unique event
id makes concurrent workers agree on who sends. A worker that dies mid-send leaves the row as ``sending`` and
the email is not retried.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from referral.db import utcnow
from referral.models import (
    AdminNotice,
    EmailNotification,
    NotificationPreference,
    OutboxEvent,
    Referral,
    ReferralEvent,
    User,
)
from referral.models.enums import Role
from referral.services.notifications import KINDS_BY_NAME

log = logging.getLogger(__name__)

ROUTED = "referral.routed"
# Event type -> (choice in the person's preferences, subject, first line). No patient detail in any of them.
EMAILED_EVENTS: dict[str, tuple[str, str, str]] = {
    ROUTED: ("routed", "A referral has been routed to you", "A referral has been routed to you for reading."),
    "report.signed": ("report_signed", "A report is ready", "The reader signed the report on a referral of "
                                                           "your practice."),
    "referral.retake_requested": ("retake_requested", "Retakes requested", "The reader asks your practice to "
                                                                          "retake images of a referral."),
    "referral.declined": ("declined", "A reader declined a referral", "A reader declined a referral of your "
                                                                      "practice."),
    "referral.unassigned": ("declined", "A referral needs a reader", "No reader could be found for a referral "
                                                                     "of your practice."),
    "message.created": ("message", "New message on a referral", "There is a new message for you on a "
                                                                "referral."),
}
OFFICE_ROLES = (Role.STAFF, Role.DENTIST, Role.ORG_ADMIN)
DEFAULT_FROM = "noreply@localhost"
# A routing notice is only useful while the case is fresh; turning email on later does not send a
# backlog of old notices.
DEFAULT_MAX_AGE = timedelta(hours=24)

SessionFactory = Callable[[], Session]


class MailConfigError(ValueError):
    pass


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    security: str  # "none", "starttls" or "tls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def parse_smtp_url(url: str) -> SmtpTarget:
    """``smtp://host[:port]`` (plain, e.g. a local relay), ``smtp://host:587?starttls=true`` or
    ``smtps://host[:465]`` (TLS from the start); ``user:password@`` for a relay that needs a login."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("smtp", "smtps") or not parts.hostname:
        raise MailConfigError("SMTP_URL must look like smtp://host:port or smtps://host:port")
    starttls = parse_qs(parts.query).get("starttls", ["false"])[0].lower() in ("1", "true", "yes")
    security = "tls" if scheme == "smtps" else ("starttls" if starttls else "none")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    if username and security == "none":
        # A login over a plain connection would put the relay's password on the wire.
        raise MailConfigError("SMTP_URL has credentials: use smtps:// or ?starttls=true")
    return SmtpTarget(parts.hostname, parts.port or (465 if scheme == "smtps" else 25), security, username, password)


def case_link(base_url: str | None, referral_id: uuid.UUID) -> str:
    """The case's page, absolute under PUBLIC_BASE_URL (a bare path when it is not set)."""
    return f"{(base_url or '').rstrip('/')}/referrals/{referral_id}"


def _message(mail_from: str, to: str, event_type: str, referral_id: uuid.UUID, base_url: str | None) -> EmailMessage:
    _, subject, first_line = EMAILED_EVENTS[event_type]
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=mail_from.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(
        f"{first_line}\n\n"
        f"Referral: {referral_id}\n"
        f"Open the case:\n{case_link(base_url, referral_id)}\n\n"
        "This message carries no patient details; sign in to see the case.\n"
        "You can choose which emails you get on the notifications page.\n"
    )
    return message


def send_messages(target: SmtpTarget, messages: list[EmailMessage], timeout: float = 10.0) -> None:
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if target.security == "tls":
        smtp = smtplib.SMTP_SSL(target.host, target.port, timeout=timeout, context=context)
    else:
        smtp = smtplib.SMTP(target.host, target.port, timeout=timeout)
    with smtp:
        if target.security == "starttls":
            smtp.starttls(context=context)
        if target.username:
            smtp.login(target.username, target.password or "")
        for message in messages:
            smtp.send_message(message)


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _candidates(session: Session, event: OutboxEvent, referral_id: uuid.UUID) -> sa.Select[Any] | None:
    """Who the event concerns, as a query of users; None when nobody is to be told."""
    data = event.data
    reader = _uuid(data.get("assigned_provider_id"))
    if event.type == ROUTED:
        return None if reader is None else sa.select(User.email).where(User.provider_id == reader)
    referral = session.get(Referral, referral_id)
    if referral is None:
        return None
    office = sa.select(User.email).where(User.organization_id == referral.organization_id,
                                         User.role.in_(list(OFFICE_ROLES)))
    if event.type == "referral.unassigned":
        last = session.scalar(sa.select(ReferralEvent.action).where(ReferralEvent.referral_id == referral.id)
                              .order_by(ReferralEvent.at.desc(), ReferralEvent.id.desc()).limit(1))
        # After a decline, the declined email has already told the office.
        return None if last == "decline" else office
    if event.type != "message.created":
        return office
    author = session.get(User, _uuid(data.get("author_user_id"))) if _uuid(data.get("author_user_id")) else None
    if author is None:
        return None
    reader_now = referral.assigned_provider_id
    if reader_now is not None and author.provider_id == reader_now:
        return office.where(User.id != author.id)
    if reader_now is None:
        return None
    return sa.select(User.email).where(User.provider_id == reader_now, User.id != author.id)


def _plan(session: Session, event: OutboxEvent) -> tuple[uuid.UUID | None, list[str]]:
    """The referral and the addresses to tell: the people the event concerns, of the organization this copy of the
    event is for (so an event fanned out to two practices mails each person once), who are active and want it."""
    referral_id = _uuid(event.data.get("referral_id"))
    choice = EMAILED_EVENTS.get(event.type, (None, "", ""))[0]
    if referral_id is None or choice is None:
        return None, []
    query = _candidates(session, event, referral_id)
    if query is None:
        return referral_id, []
    kind = KINDS_BY_NAME[choice]
    column = getattr(NotificationPreference, kind.column)
    wanted = sa.func.coalesce(column, kind.default)
    emails = session.scalars(
        query.outerjoin(NotificationPreference, NotificationPreference.user_id == User.id)
        .where(User.organization_id == event.organization_id, User.active.is_(True), wanted.is_(True))
        .order_by(User.email)
    )
    return referral_id, list(dict.fromkeys(emails))


def _claim(factory: SessionFactory, event_id: uuid.UUID, now: datetime) -> tuple[uuid.UUID, str, list[str]] | None:
    try:
        with factory() as session, session.begin():
            event = session.get(OutboxEvent, event_id)
            if event is None:
                return None
            referral_id, recipients = _plan(session, event)
            event_type = event.type
            session.add(EmailNotification(event_id=event_id, status="sending" if recipients else "skipped",
                                          recipients=len(recipients), created_at=now))
    except IntegrityError:
        return None  # another worker took this event
    return (referral_id, event_type, recipients) if referral_id is not None and recipients else None


def _finish(factory: SessionFactory, event_id: uuid.UUID, now: datetime, error: str | None) -> None:
    with factory() as session, session.begin():
        session.execute(
            sa.update(EmailNotification)
            .where(EmailNotification.event_id == event_id)
            .values(status="failed" if error else "sent", sent_at=None if error else now, last_error=error)
        )


def notify_events(
    session_factory: SessionFactory,
    *,
    smtp_url: str,
    mail_from: str | None = None,
    base_url: str | None = None,
    now: datetime | None = None,
    limit: int = 100,
    max_age: timedelta = DEFAULT_MAX_AGE,
    send: Callable[[SmtpTarget, list[EmailMessage]], None] = send_messages,
) -> int:
    """Email the people concerned by recent events not yet considered; returns how many events were emailed."""
    target = parse_smtp_url(smtp_url)
    sender = mail_from or DEFAULT_FROM
    current = now or utcnow()
    with session_factory() as session:
        candidates = list(session.scalars(
            sa.select(OutboxEvent.id)
            .where(
                OutboxEvent.type.in_(list(EMAILED_EVENTS)),
                OutboxEvent.created_at >= current - max_age,
                ~sa.exists().where(EmailNotification.event_id == OutboxEvent.id),
            )
            .order_by(OutboxEvent.id)
            .limit(limit)
        ))
    emailed = 0
    for event_id in candidates:
        claimed = _claim(session_factory, event_id, current)
        if claimed is None:
            continue
        referral_id, event_type, recipients = claimed
        error: str | None = None
        try:
            send(target, [_message(sender, to, event_type, referral_id, base_url) for to in recipients])
        except (smtplib.SMTPException, OSError) as exc:
            error = f"{type(exc).__name__}"[:300]
            log.warning("email for event %s failed: %s", event_id, error)
        _finish(session_factory, event_id, current, error)
        if error is None:
            emailed += 1
    return emailed


# -- access alerts to org admins (referral.services.notices) --------------------------------------------------

NOTICE_LINES = {
    "emergency_access": "Someone used emergency access to open a case of your practice, or one routed to it.",
    "user_created": "A new login was made in your practice.",
    "access_change": "The role or provider link of a login in your practice was changed.",
    "link_requested": "A new login in your practice is waiting for a provider to confirm it may read their cases.",
    "link_confirmed": "A provider confirmed a new login that reads their cases.",
    "link_refused": "A provider refused a new login that would have read their cases.",
}
ACCESS_ALERTS = KINDS_BY_NAME["access_alerts"]


def _notice_message(mail_from: str, to: str, kind: str, base_url: str | None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = to
    message["Subject"] = "Access alert for your practice"
    message["Message-ID"] = make_msgid(domain=mail_from.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(
        f"{NOTICE_LINES.get(kind, 'There is a new access notice for your practice.')}\n\n"
        f"See who and when on the notices page:\n{(base_url or '').rstrip('/')}/notices\n\n"
        "This message carries no patient details; sign in to see the notice.\n"
        "You can turn these emails off on the notifications page.\n"
    )
    return message


def _claim_notice(factory: SessionFactory, notice_id: uuid.UUID) -> tuple[str, str] | None:
    """Take one notice for emailing (the conditional update makes concurrent workers agree on who sends); the
    admin's address and the notice's kind, or None when another worker took it or the admin does not want it."""
    with factory() as session, session.begin():
        notice = session.get(AdminNotice, notice_id)
        if notice is None:
            return None
        wanted = session.execute(
            sa.select(User.email).outerjoin(NotificationPreference, NotificationPreference.user_id == User.id)
            .where(User.id == notice.user_id, User.active.is_(True),
                   sa.func.coalesce(NotificationPreference.email_access_alerts, ACCESS_ALERTS.default).is_(True))
        ).scalar()
        taken = session.execute(
            sa.update(AdminNotice).where(AdminNotice.id == notice_id, AdminNotice.email_status.is_(None))
            .values(email_status="sending" if wanted else "skipped"))
        if not getattr(taken, "rowcount", 0) or not wanted:
            return None
        return wanted, notice.kind


def _finish_notice(factory: SessionFactory, notice_id: uuid.UUID, error: str | None) -> None:
    with factory() as session, session.begin():
        session.execute(sa.update(AdminNotice).where(AdminNotice.id == notice_id)
                        .values(email_status="failed" if error else "sent"))


def notify_notices(
    session_factory: SessionFactory,
    *,
    smtp_url: str,
    mail_from: str | None = None,
    base_url: str | None = None,
    now: datetime | None = None,
    limit: int = 100,
    max_age: timedelta = DEFAULT_MAX_AGE,
    send: Callable[[SmtpTarget, list[EmailMessage]], None] = send_messages,
) -> int:
    """Email org admins their recent access notices not yet considered (one email per notice, no PHI); returns
    how many were sent."""
    target = parse_smtp_url(smtp_url)
    sender = mail_from or DEFAULT_FROM
    current = now or utcnow()
    with session_factory() as session:
        pending = list(session.scalars(
            sa.select(AdminNotice.id)
            .where(AdminNotice.email_status.is_(None), AdminNotice.created_at >= current - max_age)
            .order_by(AdminNotice.id).limit(limit)))
    sent = 0
    for notice_id in pending:
        claimed = _claim_notice(session_factory, notice_id)
        if claimed is None:
            continue
        to, kind = claimed
        error: str | None = None
        try:
            send(target, [_notice_message(sender, to, kind, base_url)])
        except (smtplib.SMTPException, OSError) as exc:
            error = type(exc).__name__[:300]
            log.warning("access alert %s failed: %s", notice_id, error)
        _finish_notice(session_factory, notice_id, error)
        if error is None:
            sent += 1
    return sent
