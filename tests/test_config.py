from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from referral.config import DEFAULT_MAX_UPLOAD_BYTES, PROJECT_ROOT, ConfigError, Settings, load_settings


def test_production_refuses_to_start_without_a_secret_key(tmp_path: Path):
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_settings({"INSTANCE_PATH": str(tmp_path)})
    with pytest.raises(ConfigError, match="at least 32"):
        load_settings({"SECRET_KEY": "short", "INSTANCE_PATH": str(tmp_path)})


def test_development_makes_its_own_secret_outside_the_repository_and_keeps_it(tmp_path: Path):
    first = load_settings({"APP_ENV": "development", "INSTANCE_PATH": str(tmp_path)})
    second = load_settings({"APP_ENV": "development", "INSTANCE_PATH": str(tmp_path)})
    assert first.secret_key == second.secret_key
    assert len(first.secret_key) >= 48
    assert (tmp_path / "dev-secret-key").stat().st_mode & 0o777 == 0o600


def test_embedded_defaults_are_sqlite_and_a_local_folder(tmp_path: Path):
    settings = load_settings({"APP_ENV": "development", "INSTANCE_PATH": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'referral.db'}"
    assert settings.storage_url == f"file://{tmp_path / 'objects'}"
    assert settings.max_upload_bytes == DEFAULT_MAX_UPLOAD_BYTES == 64 * 1024 * 1024


def test_the_usual_postgresql_url_is_driven_by_psycopg(tmp_path: Path):
    settings = load_settings({"APP_ENV": "test", "INSTANCE_PATH": str(tmp_path),
                              "DATABASE_URL": "postgresql://app@db.internal:5432/referral",
                              "STORAGE_URL": "s3://images/prod", "MAX_UPLOAD_BYTES": "1048576"})
    assert settings.database_url == "postgresql+psycopg://app@db.internal:5432/referral"
    assert settings.storage_url == "s3://images/prod"
    assert settings.max_upload_bytes == 1048576


def test_nonsense_settings_are_refused_with_their_name(tmp_path: Path):
    with pytest.raises(ConfigError, match="MAX_UPLOAD_BYTES"):
        load_settings({"APP_ENV": "test", "INSTANCE_PATH": str(tmp_path), "MAX_UPLOAD_BYTES": "lots"})
    with pytest.raises(ConfigError, match="APP_ENV"):
        load_settings({"APP_ENV": "staging", "INSTANCE_PATH": str(tmp_path)})


def test_the_web_session_idle_timeout_defaults_to_15_minutes_and_can_be_set(tmp_path: Path):
    base = {"APP_ENV": "test", "INSTANCE_PATH": str(tmp_path)}
    assert load_settings(base).to_flask_config()["SESSION_IDLE_MINUTES"] == 15
    assert load_settings({**base, "SESSION_IDLE_MINUTES": "5"}).session_idle_minutes == 5
    with pytest.raises(ConfigError, match="SESSION_IDLE_MINUTES"):
        load_settings({**base, "SESSION_IDLE_MINUTES": "soon"})


@pytest.mark.parametrize("missing", ["DATABASE_URL", "STORAGE_URL"])
def test_production_refuses_to_start_without_its_database_or_its_store(tmp_path: Path, missing: str):
    environ = {"SECRET_KEY": "k" * 40, "INSTANCE_PATH": str(tmp_path), "DATABASE_URL": "postgresql://db/referral",
               "STORAGE_URL": "s3://images/prod"}
    del environ[missing]
    with pytest.raises(ConfigError, match=missing):
        load_settings(environ)
    # Development and tests keep the embedded defaults.
    assert load_settings({**environ, "APP_ENV": "development"})


@pytest.mark.parametrize("missing", ["DATABASE_URL", "STORAGE_URL", "SECRET_KEY"])
def test_a_production_server_without_a_setting_exits_naming_it(tmp_path: Path, missing: str):
    environ = {key: value for key, value in os.environ.items()
               if key not in ("DATABASE_URL", "STORAGE_URL", "SECRET_KEY", "APP_ENV")}
    environ.update({"APP_ENV": "production", "SECRET_KEY": "k" * 40, "INSTANCE_PATH": str(tmp_path),
                    "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "STORAGE_URL": f"file://{tmp_path}/objects"})
    del environ[missing]
    finished = subprocess.run([sys.executable, "-c", "import wsgi"], cwd=PROJECT_ROOT, env=environ,
                              capture_output=True, text=True, timeout=60, check=False)
    assert finished.returncode == 2
    assert missing in finished.stderr
    assert "Traceback" not in finished.stderr
    assert not (tmp_path / "objects").exists()
    assert not (tmp_path / "x.db").exists()


def test_every_setting_default_is_written_once_as_its_fields_default(tmp_path: Path):
    settings = load_settings({"APP_ENV": "test", "INSTANCE_PATH": str(tmp_path)})
    for item in dataclasses.fields(Settings):
        if item.default is not dataclasses.MISSING:
            assert getattr(settings, item.name) == item.default, item.name


def test_set_up_settings_have_defaults_and_refuse_nonsense(tmp_path: Path):
    base = {"INSTANCE_PATH": str(tmp_path)}
    development = load_settings({**base, "APP_ENV": "development"})
    assert development.public_base_url == "http://127.0.0.1:5000"
    assert (development.api_token_days, development.password_link_hours) == (90, 72)
    production = load_settings({**base, "APP_ENV": "production", "SECRET_KEY": "k" * 40,
                                "DATABASE_URL": "sqlite:///x.db", "STORAGE_URL": "file:///tmp/x"})
    assert production.public_base_url is None
    chosen = load_settings({**base, "APP_ENV": "test", "PUBLIC_BASE_URL": "https://referrals.example.com/",
                            "API_TOKEN_DAYS": "30", "PASSWORD_LINK_HOURS": "24"})
    assert chosen.public_base_url == "https://referrals.example.com"
    assert (chosen.api_token_days, chosen.password_link_hours) == (30, 24)
    for name, value in (("PUBLIC_BASE_URL", "referrals.example.com"), ("API_TOKEN_DAYS", "0"),
                        ("PASSWORD_LINK_HOURS", "soon")):
        with pytest.raises(ConfigError, match=name):
            load_settings({**base, "APP_ENV": "test", name: value})
