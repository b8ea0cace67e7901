"""Operator commands: ``flask --app wsgi db upgrade``, ``flask --app wsgi create-admin EMAIL``,
``flask --app wsgi password-link EMAIL``, ``flask --app wsgi demo``,
``flask --app wsgi worker`` (webhook and email notifications), ``flask --app wsgi dicom-listener`` (imaging
software's worklist and images), ``flask --app wsgi retention apply`` and ``flask --app wsgi storage check``."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import click
from alembic import command
from alembic.config import Config
from flask import Flask, current_app
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from referral.config import Settings
from referral.errors import DomainError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
WORKER_BATCH_LIMIT = 100
# Previews the worker draws in one pass (renditions.draw_pending_images); a full batch means more are waiting.
PREVIEW_BATCH_LIMIT = 20
log = logging.getLogger(__name__)


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Percent signs in passwords would otherwise be read as interpolation.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_database(engine: Engine, revision: str = "head") -> None:
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def _engine() -> Engine:
    return cast(Engine, current_app.extensions["referral.engine"])


@click.group("db", help="Database schema migrations (Alembic).")
def db_group() -> None:
    pass


@db_group.command("upgrade", help="Create or upgrade the schema to REVISION (default: head).")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    if _engine().dialect.name == "sqlite":
        Path(current_app.instance_path).mkdir(parents=True, exist_ok=True)
    upgrade_database(_engine(), revision)
    click.echo(f"database at {revision}")


@db_group.command("downgrade", help="Step the schema back to REVISION.")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    config = alembic_config(_engine().url.render_as_string(hide_password=False))
    with _engine().begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


@db_group.command("current", help="Show the schema revision.")
def db_current() -> None:
    config = alembic_config(_engine().url.render_as_string(hide_password=False))
    with _engine().begin() as connection:
        config.attributes["connection"] = connection
        command.current(config)


@click.command("create-admin", help="Create a platform admin. Prints a one-time link to set a password for the "
                                    "pages, then its id and first API token as JSON on the last line.")
@click.argument("email")
@click.option("--password-stdin", is_flag=True,
              help="Read a web sign-in password (12-128 characters) from the first line of standard input "
                   "instead of printing a link.")
def create_admin(email: str, password_stdin: bool) -> None:
    from referral.services.organizations import set_up_platform_admin

    # Standard input rather than an argument, so the password stays out of shell history and `ps`.
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    configured = _settings()
    factory = cast(sessionmaker[Session], current_app.extensions["referral.sessionmaker"])
    with factory() as session:
        try:
            created = set_up_platform_admin(session, email, password, link=True,
                                            token_days=configured.api_token_days,
                                            link_hours=configured.password_link_hours)
        except DomainError as exc:
            raise click.ClickException(exc.message) from None
    if created.link is not None:
        _print_link(created.link.url(configured.public_base_url), created.link.expires_at)
    click.echo(json.dumps({"user_id": str(created.user.id), "token": created.token}))


def _print_link(url: str, expires_at: Any) -> None:
    """The set-password link on standard error, so the JSON on standard output stays parseable."""
    click.echo(f"Set your password (works once, until {expires_at:%Y-%m-%d %H:%M} UTC):", err=True)
    click.echo(f"  {url}", err=True)
    if not url.startswith("http"):
        click.echo("  (PUBLIC_BASE_URL is not set: put the server's address in front of this path)", err=True)


@click.command("password-link", help="Print a new one-time link to set a password for an existing account "
                                     "(a lost link or a forgotten password). Older unused links stop working.")
@click.argument("email")
def password_link(email: str) -> None:
    from referral.services.organizations import new_sign_in_link

    configured = _settings()
    factory = cast(sessionmaker[Session], current_app.extensions["referral.sessionmaker"])
    with factory() as session:
        try:
            link = new_sign_in_link(session, email, link_hours=configured.password_link_hours)
        except DomainError as exc:
            raise click.ClickException(exc.message) from None
    _print_link(link.url(configured.public_base_url), link.expires_at)


@click.command("demo", help="Fill an empty development database with two demo practices, their people "
                            "(printed sign-ins), patients and cases in several states. Refused in production.")
def demo() -> None:
    from referral.demo import DemoRefused, build_demo

    if _settings().env == "production":
        raise click.ClickException("demo data is never loaded in production (APP_ENV=production); "
                                   "use APP_ENV=development")
    try:
        summary = build_demo(current_app)
    except DemoRefused as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(summary)


def _settings() -> Settings:
    return cast(Settings, current_app.extensions["referral.settings"])


def _worker_pass(stop: threading.Event | None) -> dict[str, int]:
    """Deliver what is due (and email people about their cases when SMTP_URL is set), clear expired upload forms
    and resumable uploads, draw previews left pending, and at most every STORAGE_SWEEP_MINUTES sweep the store;
    the outcome counts."""
    from referral.services import direct_uploads, mail, outbox, renditions, tus_uploads

    configured = _settings()
    factory = cast(sessionmaker[Session], current_app.extensions["referral.sessionmaker"])
    summary = outbox.DeliverySummary()
    policy = outbox.RetryPolicy(max_attempts=configured.webhook_max_attempts)
    outbox.deliver_due(factory, limit=WORKER_BATCH_LIMIT, policy=policy, summary=summary, stop=stop,
                       allow_private=configured.webhook_allow_private)
    counts = summary.as_dict()
    if configured.smtp_url:
        counts["emailed"] = mail.notify_events(factory, smtp_url=configured.smtp_url, mail_from=configured.mail_from,
                                               base_url=configured.public_base_url)
        if alerts := mail.notify_notices(factory, smtp_url=configured.smtp_url, mail_from=configured.mail_from,
                                         base_url=configured.public_base_url):
            counts["access_alerts_emailed"] = alerts
    if swept := direct_uploads.sweep_expired_uploads(factory, current_app.extensions["referral.storage"]):
        counts["uploads_swept"] = swept
    if swept := tus_uploads.sweep_expired_uploads(factory, current_app.extensions["referral.storage"]):
        counts["resumable_uploads_swept"] = swept
    # With PREVIEWS_AFTER_ANSWER=worker every pending image is the worker's from the start: no web process draws.
    drawn = renditions.draw_pending_images(
        factory, current_app.extensions["referral.storage"], limit=PREVIEW_BATCH_LIMIT,
        older_than=timedelta(0) if configured.previews_after_answer == "worker" else renditions.WORKER_GRACE)
    counts.update({f"previews_{name}": value for name in ("drawn", "failed", "retry")
                   if (value := getattr(drawn, name))})
    counts.update(_storage_sweep(factory))
    return counts


def _storage_sweep(factory: sessionmaker[Session]) -> dict[str, int]:
    """The periodic storage sweep, when it is due: orphans past the grace period removed, missing originals
    flagged; no checksums (that is `storage check`'s job). Counts only what needs attention."""
    from referral.services import integrity
    from storage import StorageError

    configured = _settings()
    try:
        report = integrity.sweep(factory, current_app.extensions["referral.storage"],
                                 every=timedelta(minutes=configured.storage_sweep_minutes),
                                 grace=timedelta(minutes=configured.storage_orphan_grace_minutes))
    except StorageError as exc:
        # The store being down must not stop webhook delivery; the next due sweep tries again.
        log.warning("storage sweep failed: %s", type(exc).__name__)
        return {}
    if report is None:
        return {}
    found = {"orphans_removed": report.orphans_removed, "orphan_removal_refused": int(report.orphan_removal_refused),
             "missing_objects": report.missing_objects, "images_flagged": report.images_flagged}
    return {name: value for name, value in found.items() if value}


@click.command("worker", help="Send webhook deliveries (and routing emails when SMTP_URL is set) until "
                              "SIGTERM or SIGINT; the batch in hand is finished first.")
@click.option("--once", is_flag=True, help="Deliver what is due now, print a JSON summary and exit.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds between polls when nothing is due.")
def worker(once: bool, interval: float) -> None:
    from sqlalchemy.exc import SQLAlchemyError

    from referral.services.mail import MailConfigError, parse_smtp_url

    smtp_url = _settings().smtp_url
    if smtp_url:
        try:
            parse_smtp_url(smtp_url)
        except MailConfigError as exc:
            raise click.ClickException(str(exc)) from None
    if once:
        click.echo(json.dumps(_worker_pass(None)))
        return
    stop = threading.Event()

    def request_stop(_signum: int, _frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    click.echo(json.dumps({"worker": "started", "interval": interval}))
    try:
        while not stop.is_set():
            try:
                counts = _worker_pass(stop)
            except SQLAlchemyError as exc:
                # A database restart should not end the worker; the next poll tries again.
                log.warning("worker pass failed: %s", type(exc).__name__)
                counts = {}
            if any(counts.values()):
                click.echo(json.dumps(counts))
            busy = (sum(counts.get(k, 0) for k in ("delivered", "failed", "dead")) >= WORKER_BATCH_LIMIT
                    or sum(counts.get(f"previews_{k}", 0) for k in ("drawn", "failed")) >= PREVIEW_BATCH_LIMIT)
            if not busy:
                stop.wait(interval)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo(json.dumps({"worker": "stopped"}))


@click.group("claims", help="Claims, for billing staff.")
def claims_group() -> None:
    pass


@claims_group.command("explain", help="Print each claim of a referral line by line, with why each line is there.")
@click.argument("referral_id", type=click.UUID)
def claims_explain(referral_id: uuid.UUID) -> None:
    import sqlalchemy as sa

    from referral.billing.explain import explain
    from referral.models import Claim
    from referral.services.claims import claim_model

    factory = cast(sessionmaker[Session], current_app.extensions["referral.sessionmaker"])
    with factory() as session:
        rows = list(session.scalars(sa.select(Claim).where(Claim.referral_id == referral_id).order_by(Claim.id)))
        if not rows:
            raise click.ClickException("No claims for this referral (claims are made when its report is signed)")
        try:
            models = [claim_model(session, row) for row in rows]
        except DomainError as exc:
            raise click.ClickException(exc.message) from None
        click.echo(explain(models))


@click.group("retention", help="Image retention: delete images of cases closed longer ago than their "
                               "organization's retention period.")
def retention_group() -> None:
    pass


@retention_group.command(
    "apply",
    help="Delete (tombstone) every image whose case closed longer ago than its organization's "
         "image_retention_days, remove its objects from the store, and finish removals left pending by an "
         "earlier run or a patient's deletion. Prints the counts as JSON; running it again deletes nothing new.")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; change nothing.")
def retention_apply(dry_run: bool) -> None:
    from referral.services.lifecycle import apply_retention

    factory = cast(sessionmaker[Session], current_app.extensions["referral.sessionmaker"])
    store = current_app.extensions["referral.storage"]
    with factory() as session:
        counts = apply_retention(session, store, dry_run=dry_run)
    click.echo(json.dumps(counts))
    if counts["removals_failed"]:
        raise SystemExit(1)


@click.group("storage", help="The object store: check that rows and stored objects agree.")
def storage_group() -> None:
    pass


@storage_group.command(
    "check",
    help="Compare the store with the database: objects no row names (orphans), objects a row names that are "
         "missing, and originals whose SHA-256 differs from the one recorded at intake. Prints JSON; exits 1 "
         "when anything is missing or altered. With --repair, deletes orphans older than the grace period and "
         "flags images whose original is missing or altered (clearing flags on originals found intact again); "
         "a repair that would delete most of the store deletes nothing and exits 1.")
@click.option("--repair", is_flag=True, help="Delete old orphans and flag (or clear) damaged images.")
@click.option("--no-checksums", is_flag=True,
              help="Do not re-read originals to verify their SHA-256 (only presence is checked).")
@click.option("--grace-minutes", type=click.IntRange(min=0), default=None,
              help="Leave orphans younger than this alone [default: STORAGE_ORPHAN_GRACE_MINUTES].")
@click.option("--allow-mass-removal", is_flag=True,
              help="Remove orphans even when they are most of the store (normally a sign of the wrong database).")
def storage_check(repair: bool, no_checksums: bool, grace_minutes: int | None, allow_mass_removal: bool) -> None:
    from datetime import timedelta

    from referral.services.integrity import check_storage
    from storage import StorageError

    grace = grace_minutes if grace_minutes is not None else _settings().storage_orphan_grace_minutes
    factory = cast(sessionmaker[Session], current_app.extensions["referral.sessionmaker"])
    try:
        report = check_storage(factory, current_app.extensions["referral.storage"], checksums=not no_checksums,
                               repair=repair, grace=timedelta(minutes=grace), allow_mass_removal=allow_mass_removal)
    except StorageError as exc:
        raise click.ClickException(f"the object store failed during the check ({type(exc).__name__}); "
                                   "nothing more was changed, run it again") from None
    click.echo(json.dumps(report.as_dict(repair=repair)))
    if not report.ok:
        raise SystemExit(1)


@click.command("dicom-listener", help="Serve the practices' registered DICOM devices (C-ECHO, Modality Worklist "
                                      "C-FIND, C-STORE) on DICOM_PORT until SIGTERM or SIGINT.")
@click.option("--port", type=click.IntRange(min=0, max=65535), default=None,
              help="Listen on this port instead of DICOM_PORT (0: any free port, printed at start).")
def dicom_listener(port: int | None) -> None:
    import ssl
    from dataclasses import replace

    from referral.dicom_net.listener import Listener, listener_config

    config = listener_config(_settings())
    if port is not None:
        config = replace(config, port=port)
    factory = cast(sessionmaker[Session], current_app.extensions["referral.sessionmaker"])
    listener = Listener(config, factory, current_app.extensions["referral.storage"])
    stop = threading.Event()

    def request_stop(_signum: int, _frame: Any) -> None:
        stop.set()

    try:
        listener.start()
    except ssl.SSLError as exc:
        raise click.ClickException(f"DICOM_TLS_CERT and DICOM_TLS_KEY could not be loaded: {exc.reason}") from None
    except OSError as exc:
        raise click.ClickException(f"The DICOM listener cannot listen on port {config.port}: {exc.strerror}") from None
    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    click.echo(json.dumps({"dicom_listener": "started", "port": listener.port, "ae_title": config.ae_title,
                           "tls": config.tls_cert is not None}), nl=True)
    sys.stdout.flush()
    try:
        stop.wait()
    finally:
        listener.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo(json.dumps({"dicom_listener": "stopped"}))


def register_commands(app: Flask) -> None:
    app.cli.add_command(dicom_listener)
    app.cli.add_command(db_group)
    app.cli.add_command(create_admin)
    app.cli.add_command(password_link)
    app.cli.add_command(demo)
    app.cli.add_command(worker)
    app.cli.add_command(claims_group)
    app.cli.add_command(retention_group)
    app.cli.add_command(storage_group)
