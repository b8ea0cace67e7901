"""Settings read from the environment in one place, with the embedded defaults.

Nothing else in the package reads ``os.environ``: ``create_app`` builds a ``Settings`` and puts its
values into ``app.config``.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from limits import parse_many

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ("development", "test", "production")
DEFAULT_MAX_UPLOAD_BYTES = 64 * 1024 * 1024
# How long a reader has to answer, by urgency: pain or swelling that cannot wait for the next clinic
# day, a problem for this week, and routine cases that fit a week of reading sessions.
DEFAULT_RESPONSE_HOURS = {"emergency": 4.0, "urgent": 24.0, "routine": 168.0}
LOG_FORMATS = ("json", "text")
# Who may scrape /metrics: loopback and the private ranges a scraper inside the deployment uses.
DEFAULT_METRICS_ALLOW = ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
# Abuse limits (referral/ratelimit.py), in flask-limiter's notation. Rejected API tokens per address: the
# same allowance as failed sign-ins per address. Uploads per user: a full-mouth series with retakes, sent
# direct-to-storage (two calls an image), fits in a minute many times over; a runaway script does not.
DEFAULT_RATELIMIT_AUTH_FAILURES = "20 per 15 minutes"
DEFAULT_RATELIMIT_UPLOADS = "120 per minute"
RATELIMIT_STORAGE_SCHEMES = ("memory", "redis", "rediss", "redis+unix", "redis+sentinel", "redis+cluster")


class ConfigError(RuntimeError):
    """The environment does not describe a runnable server."""


@dataclass(frozen=True)
class Settings:
    env: str
    secret_key: str
    database_url: str
    storage_url: str
    max_upload_bytes: int
    instance_path: Path
    upload_tmp_dir: str | None
    response_hours: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_RESPONSE_HOURS))
    consent_required_states: frozenset[str] = frozenset()
    webhook_allow_private: bool = False
    webhook_max_attempts: int = 8
    smtp_url: str | None = None
    mail_from: str | None = None
    # HIPAA automatic logoff: a browser session idle this long is ended on the server.
    session_idle_minutes: int = 15
    log_format: str = "json"
    metrics_allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = tuple(
        ipaddress.ip_network(cidr) for cidr in DEFAULT_METRICS_ALLOW
    )
    # Set when several gunicorn workers share their metrics through files in this directory.
    prometheus_multiproc_dir: str | None = None
    # The worker's storage sweep (orphan objects removed, missing originals flagged) runs at most this often.
    storage_sweep_minutes: int = 60
    # An object without a row is left alone until it is this old: its upload's commit may still be in flight.
    storage_orphan_grace_minutes: int = 60
    # Where the abuse-limit counts live: memory:// per process, or redis://host:6379/0 shared by all.
    ratelimit_storage_url: str = "memory://"
    ratelimit_auth_failures: str = DEFAULT_RATELIMIT_AUTH_FAILURES
    ratelimit_uploads: str = DEFAULT_RATELIMIT_UPLOADS
    # Keeps this deployment's counts apart from another's in a shared Redis.
    ratelimit_key_prefix: str = "referral"

    def to_flask_config(self) -> dict[str, object]:
        return {
            "APP_ENV": self.env,
            "SECRET_KEY": self.secret_key,
            "DATABASE_URL": self.database_url,
            "STORAGE_URL": self.storage_url,
            "MAX_UPLOAD_BYTES": self.max_upload_bytes,
            # The multipart envelope and the form fields need a little room beyond the file itself;
            # anything larger is refused with 413 before the body is read.
            "MAX_CONTENT_LENGTH": self.max_upload_bytes + 1024 * 1024,
            "UPLOAD_TMP_DIR": self.upload_tmp_dir,
            "RESPONSE_HOURS": dict(self.response_hours),
            "CONSENT_REQUIRED_STATES": self.consent_required_states,
            "WEBHOOK_ALLOW_PRIVATE": self.webhook_allow_private,
            "WEBHOOK_MAX_ATTEMPTS": self.webhook_max_attempts,
            "SMTP_URL": self.smtp_url,
            "MAIL_FROM": self.mail_from,
            "SESSION_IDLE_MINUTES": self.session_idle_minutes,
            "LOG_FORMAT": self.log_format,
            "METRICS_ALLOW": self.metrics_allow,
            "PROMETHEUS_MULTIPROC_DIR": self.prometheus_multiproc_dir,
            "STORAGE_SWEEP_MINUTES": self.storage_sweep_minutes,
            "STORAGE_ORPHAN_GRACE_MINUTES": self.storage_orphan_grace_minutes,
            "RATELIMIT_STORAGE_URL": self.ratelimit_storage_url,
            "RATELIMIT_AUTH_FAILURES": self.ratelimit_auth_failures,
            "RATELIMIT_UPLOADS": self.ratelimit_uploads,
            "RATELIMIT_KEY_PREFIX": self.ratelimit_key_prefix,
            "TESTING": self.env == "test",
        }


def normalize_database_url(url: str) -> str:
    """Accept the usual ``postgresql://user@host:port/db`` form and drive it with psycopg 3."""
    for plain in ("postgres://", "postgresql://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


def _int_setting(environ: dict[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from exc
    if value <= 0:
        raise ConfigError(f"{name} must be positive")
    return value


def _flag(environ: dict[str, str], name: str) -> bool:
    raw = environ.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"{name} must be 1 or 0, got {raw!r}")


def _response_hours(environ: dict[str, str]) -> dict[str, float]:
    hours = dict(DEFAULT_RESPONSE_HOURS)
    for urgency in hours:
        name = f"RESPONSE_HOURS_{urgency.upper()}"
        raw = environ.get(name)
        if raw:
            try:
                hours[urgency] = float(raw)
            except ValueError as exc:
                raise ConfigError(f"{name} must be a number of hours, got {raw!r}") from exc
            if hours[urgency] <= 0:
                raise ConfigError(f"{name} must be positive")
    return hours


def _log_format(environ: dict[str, str]) -> str:
    value = environ.get("LOG_FORMAT", "").strip().lower() or "json"
    if value not in LOG_FORMATS:
        raise ConfigError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, got {value!r}")
    return value


def _metrics_allow(environ: dict[str, str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    raw = environ.get("METRICS_ALLOW", "")
    cidrs = [part.strip() for part in raw.split(",") if part.strip()] or list(DEFAULT_METRICS_ALLOW)
    try:
        return tuple(ipaddress.ip_network(cidr) for cidr in cidrs)
    except ValueError as exc:
        raise ConfigError(f"METRICS_ALLOW must be a comma-separated list of CIDR ranges: {exc}") from exc


def _rate_limit(environ: dict[str, str], name: str, default: str) -> str:
    value = environ.get(name, "").strip() or default
    try:
        parse_many(value)
    except ValueError:
        raise ConfigError(f"{name} must be a limit such as '20 per 15 minutes', got {value!r}") from None
    return value


def _ratelimit_storage_url(environ: dict[str, str]) -> str:
    value = environ.get("RATELIMIT_STORAGE_URL", "").strip() or "memory://"
    scheme, separator, _ = value.partition("://")
    if not separator or scheme.lower() not in RATELIMIT_STORAGE_SCHEMES:
        raise ConfigError("RATELIMIT_STORAGE_URL must be memory:// or a Redis URL such as redis://127.0.0.1:6379/0")
    return value


def _development_secret(instance_path: Path) -> str:
    """A random key kept in the local instance folder, so a development server's sessions survive
    restarts without any secret being written into the repository."""
    path = instance_path / "dev-secret-key"
    if path.exists():
        return path.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env_vars = dict(os.environ if environ is None else environ)
    env = env_vars.get("APP_ENV", "production").strip().lower()
    if env not in ENVIRONMENTS:
        raise ConfigError(f"APP_ENV must be one of {', '.join(ENVIRONMENTS)}, got {env!r}")

    instance_path = Path(env_vars.get("INSTANCE_PATH") or PROJECT_ROOT / "instance").resolve()

    secret_key = env_vars.get("SECRET_KEY", "")
    if not secret_key:
        if env == "production":
            raise ConfigError(
                "SECRET_KEY is not set. Set SECRET_KEY to a long random value, "
                "or APP_ENV=development for a local instance."
            )
        secret_key = _development_secret(instance_path) if env == "development" else secrets.token_urlsafe(32)
    elif env == "production" and len(secret_key) < 32:
        raise ConfigError("SECRET_KEY must be at least 32 characters in production")

    database_url = env_vars.get("DATABASE_URL") or f"sqlite:///{instance_path / 'referral.db'}"
    storage_url = env_vars.get("STORAGE_URL") or f"file://{instance_path / 'objects'}"

    return Settings(
        env=env,
        secret_key=secret_key,
        database_url=normalize_database_url(database_url),
        storage_url=storage_url,
        max_upload_bytes=_int_setting(env_vars, "MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES),
        instance_path=instance_path,
        upload_tmp_dir=env_vars.get("UPLOAD_TMP_DIR") or None,
        response_hours=_response_hours(env_vars),
        consent_required_states=frozenset(
            s.strip().upper() for s in env_vars.get("CONSENT_REQUIRED_STATES", "").split(",") if s.strip()
        ),
        webhook_allow_private=_flag(env_vars, "WEBHOOK_ALLOW_PRIVATE"),
        webhook_max_attempts=_int_setting(env_vars, "WEBHOOK_MAX_ATTEMPTS", 8),
        smtp_url=env_vars.get("SMTP_URL") or None,
        mail_from=env_vars.get("MAIL_FROM") or None,
        session_idle_minutes=_int_setting(env_vars, "SESSION_IDLE_MINUTES", 15),
        log_format=_log_format(env_vars),
        metrics_allow=_metrics_allow(env_vars),
        prometheus_multiproc_dir=env_vars.get("PROMETHEUS_MULTIPROC_DIR") or None,
        storage_sweep_minutes=_int_setting(env_vars, "STORAGE_SWEEP_MINUTES", 60),
        storage_orphan_grace_minutes=_int_setting(env_vars, "STORAGE_ORPHAN_GRACE_MINUTES", 60),
        ratelimit_storage_url=_ratelimit_storage_url(env_vars),
        ratelimit_auth_failures=_rate_limit(env_vars, "RATELIMIT_AUTH_FAILURES", DEFAULT_RATELIMIT_AUTH_FAILURES),
        ratelimit_uploads=_rate_limit(env_vars, "RATELIMIT_UPLOADS", DEFAULT_RATELIMIT_UPLOADS),
        ratelimit_key_prefix=env_vars.get("RATELIMIT_KEY_PREFIX", "").strip() or "referral",
    )
