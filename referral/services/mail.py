"""Optional email to a reader when a referral is routed to them (on when SMTP_URL is set).

An email leaves the organization's systems, so it says only that a referral is waiting and where:
its id and a link path, never patient details. Each ``referral.routed`` event is emailed at most
once: the worker inserts the event's ``EmailNotification`` row before sending, and the row's unique
event id makes concurrent workers agree on who sends. A worker that dies mid-send leaves the row as
``sending`` and the email is not retried.
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
from urllib.parse import parse_qs, unquote, urlsplit

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from referral.db import utcnow
from referral.models import EmailNotification, OutboxEvent, Provider, User

log = logging.getLogger(__name__)

ROUTED = "referral.routed"
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


def _message(mail_from: str, to: str, referral_id: uuid.UUID) -> EmailMessage:
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = to
    message["Subject"] = "A referral has been routed to you"
    message["Message-ID"] = make_msgid(domain=mail_from.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(
        "A referral has been routed to you for reading.\n\n"
        f"Referral: {referral_id}\n"
        f"Open it in the referral application:\n/api/v1/referrals/{referral_id}\n\n"
        "This message carries no patient details; sign in to see the case.\n"
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


def _plan(session: Session, event: OutboxEvent) -> tuple[uuid.UUID | None, list[str]]:
    """The referral and the addresses to tell. Only the event for the reader's own organization sends
    mail, so an event fanned out to both practices mails the reader once."""
    try:
        referral_id = uuid.UUID(str(event.data.get("referral_id")))
        provider_id = uuid.UUID(str(event.data.get("assigned_provider_id")))
    except ValueError:
        return None, []
    provider = session.get(Provider, provider_id)
    if provider is None or provider.organization_id != event.organization_id:
        return referral_id, []
    emails = session.scalars(
        sa.select(User.email)
        .where(User.provider_id == provider.id, User.organization_id == provider.organization_id,
               User.active.is_(True))
        .order_by(User.email)
    )
    return referral_id, list(emails)


def _claim(factory: SessionFactory, event_id: uuid.UUID, now: datetime) -> tuple[uuid.UUID, list[str]] | None:
    try:
        with factory() as session, session.begin():
            event = session.get(OutboxEvent, event_id)
            if event is None:
                return None
            referral_id, recipients = _plan(session, event)
            session.add(EmailNotification(event_id=event_id, status="sending" if recipients else "skipped",
                                          recipients=len(recipients), created_at=now))
    except IntegrityError:
        return None  # another worker took this event
    return (referral_id, recipients) if referral_id is not None and recipients else None


def _finish(factory: SessionFactory, event_id: uuid.UUID, now: datetime, error: str | None) -> None:
    with factory() as session, session.begin():
        session.execute(
            sa.update(EmailNotification)
            .where(EmailNotification.event_id == event_id)
            .values(status="failed" if error else "sent", sent_at=None if error else now, last_error=error)
        )


def notify_routed(
    session_factory: SessionFactory,
    *,
    smtp_url: str,
    mail_from: str | None = None,
    now: datetime | None = None,
    limit: int = 100,
    max_age: timedelta = DEFAULT_MAX_AGE,
    send: Callable[[SmtpTarget, list[EmailMessage]], None] = send_messages,
) -> int:
    """Email the readers of recent ``referral.routed`` events not yet considered; returns how many
    events were emailed."""
    target = parse_smtp_url(smtp_url)
    sender = mail_from or DEFAULT_FROM
    current = now or utcnow()
    with session_factory() as session:
        candidates = list(session.scalars(
            sa.select(OutboxEvent.id)
            .where(
                OutboxEvent.type == ROUTED,
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
        referral_id, recipients = claimed
        error: str | None = None
        try:
            send(target, [_message(sender, to, referral_id) for to in recipients])
        except (smtplib.SMTPException, OSError) as exc:
            error = f"{type(exc).__name__}"[:300]
            log.warning("routing email for event %s failed: %s", event_id, error)
        _finish(session_factory, event_id, current, error)
        if error is None:
            emailed += 1
    return emailed
