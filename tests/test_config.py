from __future__ import annotations

from pathlib import Path

import pytest

from referral.config import DEFAULT_MAX_UPLOAD_BYTES, ConfigError, load_settings


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
