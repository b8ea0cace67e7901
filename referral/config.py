"""Settings read from the environment in one place, with the embedded defaults.

Nothing else in the package reads ``os.environ``: ``create_app`` builds one typed ``Settings`` object, which
the code reads (``referral.http.context.settings()`` during a request); its values are also copied into
``app.config`` for Flask and its extensions. Each default is written once, as the default of its field.

In production nothing is assumed: SECRET_KEY, DATABASE_URL and STORAGE_URL must be set, or the server
refuses to start and names what is missing. The embedded SQLite file and local folder are for
development and tests only.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

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
# A webhook delivery is retried with backoff this many times before it is dead-lettered.
DEFAULT_WEBHOOK_MAX_ATTEMPTS = 8
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
    webhook_max_attempts: int = DEFAULT_WEBHOOK_MAX_ATTEMPTS
    smtp_url: str | None = None
    mail_from: str | None = None
    # HIPAA automatic logoff: a browser session idle this long is ended on the server (whole minutes from the
    # environment; a fraction only in tests).
    session_idle_minutes: float = 15
    log_format: str = "json"
    metrics_allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = tuple(
        ipaddress.ip_network(cidr) for cidr in DEFAULT_METRICS_ALLOW
    )
    # Reverse proxies whose X-Forwarded-For names the client (addresses or ranges); none by default.
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    # Set when several gunicorn workers share their metrics through files in this directory.
    prometheus_multiproc_dir: str | None = None
    # The worker's storage sweep (orphan objects removed, missing originals flagged) runs at most this often.
    storage_sweep_minutes: int = 60
    # Images a process draws previews of at once; each may use the full decode budget.
    preview_concurrency: int = 2
    # When an upload's preview and thumbnail are drawn: "busy" (before the answer if a drawing slot is free,
    # otherwise right after it), "always" (always after the answer), "never" (always before it, waiting for a slot).
    previews_after_answer: str = "busy"
    # Threads in each web process that draw previews left for after the answer (the worker draws any left over);
    # None: 1, or 0 under APP_ENV=test, where tests run the drawing themselves.
    preview_background_threads: int | None = None
    # An object without a row is left alone until it is this old: its upload's commit may still be in flight.
    storage_orphan_grace_minutes: int = 60
    # Where the abuse-limit counts live: memory:// per process, or redis://host:6379/0 shared by all.
    ratelimit_storage_url: str = "memory://"
    ratelimit_auth_failures: str = DEFAULT_RATELIMIT_AUTH_FAILURES
    ratelimit_uploads: str = DEFAULT_RATELIMIT_UPLOADS
    # Keeps this deployment's counts apart from another's in a shared Redis.
    ratelimit_key_prefix: str = "referral"
    # Where people reach the pages (https://referrals.example.com): links to set a password and the links to case
    # pages in emails are built on it. The default is the address `make run` serves on; production has no default
    # (links are then the request's own address, or a path).
    public_base_url: str | None = "http://127.0.0.1:5000"
    # Every page user must sign in with a second factor (TOTP): on by default in production, off in development
    # and tests unless MFA_REQUIRED is set (docs/security.md, Multi-factor sign-in).
    mfa_required: bool = False
    # API tokens expire this many days after they are issued.
    api_token_days: int = 90
    # A token that checked out is remembered in the process this many seconds (0: never); a revocation reaches
    # other processes within this time (referral/services/auth.py).
    api_token_cache_seconds: int = 30
    # Each process keeps the JSON it wrote for this many images in case reads, to answer a case read again without
    # writing its unchanged images anew (referral/services/case_reads.py); 0 keeps none.
    case_image_answers: int = 4096
    # A one-time link to set a password works for this many hours.
    password_link_hours: int = 72
    # An emergency (break-glass) access grant to a case lasts this many minutes.
    emergency_access_minutes: int = 60
    # The DICOM listener (`flask --app wsgi dicom-listener`): where it listens, the AE title it answers to as
    # the called AE, and an optional TLS certificate and key (PEM files; both or neither).
    dicom_host: str = "0.0.0.0"  # noqa: S104 - the listener serves sensors on the practice network
    dicom_port: int = 11112
    dicom_ae_title: str = "REFERRAL"
    dicom_tls_cert: str | None = None
    dicom_tls_key: str | None = None
    # Resumable (tus) uploads: an unfinished one is given up this many hours after its last chunk arrived, and
    # its bytes are sent on to the store in parts of this size (at least 5 MiB on S3).
    tus_expiry_hours: int = 24
    tus_part_bytes: int = 5 * 1024 * 1024
    # Browser viewers served from another origin (OHIF at https://viewer.example.org) that may call DICOMweb:
    # exact origins, normalized (scheme and host in lower case, no default port). None: no CORS at all.
    dicomweb_cors_origins: tuple[str, ...] = ()

    @property
    def background_drawing_threads(self) -> int:
        """PREVIEW_BACKGROUND_THREADS, or its default for the environment."""
        if self.preview_background_threads is not None:
            return self.preview_background_threads
        return 0 if self.env == "test" else 1

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
            "PUBLIC_BASE_URL": self.public_base_url,
            "SESSION_IDLE_MINUTES": self.session_idle_minutes,
            "MFA_REQUIRED": self.mfa_required,
            "LOG_FORMAT": self.log_format,
            "METRICS_ALLOW": self.metrics_allow,
            "PROMETHEUS_MULTIPROC_DIR": self.prometheus_multiproc_dir,
            "STORAGE_SWEEP_MINUTES": self.storage_sweep_minutes,
            "PREVIEW_CONCURRENCY": self.preview_concurrency,
            "PREVIEWS_AFTER_ANSWER": self.previews_after_answer,
            "PREVIEW_BACKGROUND_THREADS": self.background_drawing_threads,
            "STORAGE_ORPHAN_GRACE_MINUTES": self.storage_orphan_grace_minutes,
            "RATELIMIT_STORAGE_URL": self.ratelimit_storage_url,
            "RATELIMIT_AUTH_FAILURES": self.ratelimit_auth_failures,
            "RATELIMIT_UPLOADS": self.ratelimit_uploads,
            "RATELIMIT_KEY_PREFIX": self.ratelimit_key_prefix,
            "EMERGENCY_ACCESS_MINUTES": self.emergency_access_minutes,
            "DICOM_HOST": self.dicom_host,
            "DICOM_PORT": self.dicom_port,
            "DICOM_AE_TITLE": self.dicom_ae_title,
            "DICOM_TLS_CERT": self.dicom_tls_cert,
            "DICOM_TLS_KEY": self.dicom_tls_key,
            "TUS_EXPIRY_HOURS": self.tus_expiry_hours,
            "TUS_PART_BYTES": self.tus_part_bytes,
            "DICOMWEB_CORS_ORIGINS": self.dicomweb_cors_origins,
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


def _mfa_required(environ: dict[str, str], env: str) -> bool:
    """MFA_REQUIRED=1 or 0 when set; otherwise required in production only."""
    if environ.get("MFA_REQUIRED", "").strip() == "":
        return env == "production"
    return _flag(environ, "MFA_REQUIRED")


def _public_base_url(environ: dict[str, str], env: str) -> str | None:
    value = environ.get("PUBLIC_BASE_URL", "").strip()
    if not value:
        return None if env == "production" else cast(str, _default("public_base_url"))
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment \
            or parts.username or parts.password:
        raise ConfigError("PUBLIC_BASE_URL must be the pages' address, such as https://referrals.example.com")
    return value.rstrip("/")


PREVIEW_TIMINGS = ("busy", "always", "never", "worker")


def _previews_after_answer(environ: dict[str, str]) -> str:
    value = environ.get("PREVIEWS_AFTER_ANSWER", "").strip().lower() or str(_default("previews_after_answer"))
    if value not in PREVIEW_TIMINGS:
        raise ConfigError(f"PREVIEWS_AFTER_ANSWER must be one of {', '.join(PREVIEW_TIMINGS)}, got {value!r}")
    return value


def _background_threads(environ: dict[str, str]) -> int | None:
    raw = environ.get("PREVIEW_BACKGROUND_THREADS", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) > 16:
        raise ConfigError(f"PREVIEW_BACKGROUND_THREADS must be a whole number from 0 to 16, got {raw!r}")
    return int(raw)


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


def _trusted_proxies(environ: dict[str, str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    raw = environ.get("TRUSTED_PROXIES", "")
    try:
        return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"TRUSTED_PROXIES must be a comma-separated list of addresses or CIDR ranges: {exc}") from exc


def _rate_limit(environ: dict[str, str], name: str, default: str) -> str:
    value = environ.get(name, "").strip() or default
    try:
        parse_many(value)
    except ValueError:
        raise ConfigError(f"{name} must be a limit such as '20 per 15 minutes', got {value!r}") from None
    return value


def _ratelimit_storage_url(environ: dict[str, str]) -> str:
    value = environ.get("RATELIMIT_STORAGE_URL", "").strip() or str(_default("ratelimit_storage_url"))
    scheme, separator, _ = value.partition("://")
    if not separator or scheme.lower() not in RATELIMIT_STORAGE_SCHEMES:
        raise ConfigError("RATELIMIT_STORAGE_URL must be memory:// or a Redis URL such as redis://127.0.0.1:6379/0")
    return value


def _dicom_port(environ: dict[str, str]) -> int:
    port = _int_default(environ, "DICOM_PORT", "dicom_port")
    if port > 65535:
        raise ConfigError("DICOM_PORT must be a TCP port number (1-65535)")
    return port


def _dicom_ae_title(environ: dict[str, str]) -> str:
    value = environ.get("DICOM_AE_TITLE", "").strip() or str(_default("dicom_ae_title"))
    if len(value) > 16 or "\\" in value or any(ord(ch) < 32 or ord(ch) > 126 for ch in value):
        raise ConfigError("DICOM_AE_TITLE must be at most 16 plain characters, without a backslash")
    return value


def _dicom_tls(environ: dict[str, str]) -> tuple[str | None, str | None]:
    cert = environ.get("DICOM_TLS_CERT", "").strip() or None
    key = environ.get("DICOM_TLS_KEY", "").strip() or None
    if (cert is None) != (key is None):
        raise ConfigError("DICOM_TLS_CERT and DICOM_TLS_KEY go together: set both for TLS, or neither")
    for name, path in (("DICOM_TLS_CERT", cert), ("DICOM_TLS_KEY", key)):
        if path is not None and not Path(path).is_file():
            raise ConfigError(f"{name} names no readable file: {path}")
    return cert, key


_DEFAULT_PORTS = {"http": 80, "https": 443}
_CORS_EXAMPLE = "such as https://viewer.example.org"


def _cors_origin(entry: str) -> str:
    """One allowed origin, written as the browser sends it in ``Origin``: ``scheme://host[:port]``."""
    if entry == "*" or "*" in entry:
        raise ConfigError("DICOMWEB_CORS_ORIGINS must list exact origins; '*' (any site) is refused, since every "
                          "DICOMweb call carries a user's token. Name each viewer's origin, " + _CORS_EXAMPLE)
    parts = urlsplit(entry)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname or port == -1 or parts.path \
            or parts.query or parts.fragment or parts.username or parts.password or "?" in entry or "#" in entry:
        raise ConfigError(f"DICOMWEB_CORS_ORIGINS: {entry!r} is not an origin; write scheme, host and port only, "
                          + _CORS_EXAMPLE)
    scheme, host = parts.scheme.lower(), parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" if port in (None, _DEFAULT_PORTS[scheme]) else f"{scheme}://{host}:{port}"


def _dicomweb_cors_origins(environ: dict[str, str]) -> tuple[str, ...]:
    raw = environ.get("DICOMWEB_CORS_ORIGINS", "")
    origins = [_cors_origin(part.strip()) for part in raw.split(",") if part.strip()]
    return tuple(dict.fromkeys(origins))


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


def _default(name: str) -> object:
    """The default written on ``Settings``' field ``name``: the one place each default lives."""
    for item in fields(Settings):
        if item.name == name:
            if item.default is not MISSING:
                return item.default
            if item.default_factory is not MISSING:
                return item.default_factory()
    raise KeyError(name)


def _int_default(environ: dict[str, str], variable: str, field_name: str) -> int:
    return _int_setting(environ, variable, cast(int, _default(field_name)))


def _required_in_production(environ: dict[str, str], name: str, env: str, fallback: str) -> str:
    value = environ.get(name, "").strip()
    if value:
        return value
    if env == "production":
        raise ConfigError(
            f"{name} is not set. In production the server does not fall back to the embedded development "
            f"{'database' if name == 'DATABASE_URL' else 'image folder'}: set {name}, "
            "or APP_ENV=development for a local instance."
        )
    return fallback


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

    database_url = _required_in_production(env_vars, "DATABASE_URL", env, f"sqlite:///{instance_path / 'referral.db'}")
    storage_url = _required_in_production(env_vars, "STORAGE_URL", env, f"file://{instance_path / 'objects'}")

    dicom_tls_cert, dicom_tls_key = _dicom_tls(env_vars)
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
        webhook_max_attempts=_int_default(env_vars, "WEBHOOK_MAX_ATTEMPTS", "webhook_max_attempts"),
        smtp_url=env_vars.get("SMTP_URL") or None,
        mail_from=env_vars.get("MAIL_FROM") or None,
        session_idle_minutes=_int_default(env_vars, "SESSION_IDLE_MINUTES", "session_idle_minutes"),
        log_format=_log_format(env_vars),
        metrics_allow=_metrics_allow(env_vars),
        trusted_proxies=_trusted_proxies(env_vars),
        prometheus_multiproc_dir=env_vars.get("PROMETHEUS_MULTIPROC_DIR") or None,
        storage_sweep_minutes=_int_default(env_vars, "STORAGE_SWEEP_MINUTES", "storage_sweep_minutes"),
        preview_concurrency=_int_default(env_vars, "PREVIEW_CONCURRENCY", "preview_concurrency"),
        previews_after_answer=_previews_after_answer(env_vars),
        preview_background_threads=_background_threads(env_vars),
        storage_orphan_grace_minutes=_int_default(env_vars, "STORAGE_ORPHAN_GRACE_MINUTES",
                                                  "storage_orphan_grace_minutes"),
        ratelimit_storage_url=_ratelimit_storage_url(env_vars),
        ratelimit_auth_failures=_rate_limit(env_vars, "RATELIMIT_AUTH_FAILURES", DEFAULT_RATELIMIT_AUTH_FAILURES),
        ratelimit_uploads=_rate_limit(env_vars, "RATELIMIT_UPLOADS", DEFAULT_RATELIMIT_UPLOADS),
        ratelimit_key_prefix=env_vars.get("RATELIMIT_KEY_PREFIX", "").strip() or str(_default("ratelimit_key_prefix")),
        public_base_url=_public_base_url(env_vars, env),
        mfa_required=_mfa_required(env_vars, env),
        api_token_days=_int_default(env_vars, "API_TOKEN_DAYS", "api_token_days"),
        api_token_cache_seconds=_int_default(env_vars, "API_TOKEN_CACHE_SECONDS", "api_token_cache_seconds"),
        case_image_answers=_int_default(env_vars, "CASE_IMAGE_ANSWERS", "case_image_answers"),
        password_link_hours=_int_default(env_vars, "PASSWORD_LINK_HOURS", "password_link_hours"),
        emergency_access_minutes=_int_default(env_vars, "EMERGENCY_ACCESS_MINUTES", "emergency_access_minutes"),
        dicom_host=env_vars.get("DICOM_HOST", "").strip() or str(_default("dicom_host")),
        dicom_port=_dicom_port(env_vars),
        dicom_ae_title=_dicom_ae_title(env_vars),
        tus_expiry_hours=_int_default(env_vars, "TUS_EXPIRY_HOURS", "tus_expiry_hours"),
        tus_part_bytes=_int_default(env_vars, "TUS_PART_BYTES", "tus_part_bytes"),
        dicomweb_cors_origins=_dicomweb_cors_origins(env_vars),
        dicom_tls_cert=dicom_tls_cert,
        dicom_tls_key=dicom_tls_key,
    )
