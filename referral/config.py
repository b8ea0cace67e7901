"""Settings read from the environment in one place, with the embedded defaults.

Nothing else in the package reads ``os.environ``: ``create_app`` builds a ``Settings`` and puts its
values into ``app.config``.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ("development", "test", "production")
DEFAULT_MAX_UPLOAD_BYTES = 64 * 1024 * 1024


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
        raise ConfigError(f"{name} must be a whole number of bytes, got {raw!r}") from exc
    if value <= 0:
        raise ConfigError(f"{name} must be positive")
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
    )
