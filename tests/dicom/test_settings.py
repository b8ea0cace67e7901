"""The DICOM listener's settings: defaults, and environments that cannot describe a listener."""

from __future__ import annotations

from pathlib import Path

import pytest

from referral import create_app
from referral.config import ConfigError, load_settings
from storage import Storage
from tests.support.settings import make_settings

BASE = {"APP_ENV": "test"}


def test_defaults():
    settings = load_settings(dict(BASE))
    assert (settings.dicom_port, settings.dicom_ae_title, settings.dicom_tls_cert, settings.dicom_tls_key) == \
        (11112, "REFERRAL", None, None)


def test_values_are_read(tmp_path: Path):
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("x")
    key.write_text("y")
    settings = load_settings({**BASE, "DICOM_PORT": "2762", "DICOM_AE_TITLE": "TELEDENT",
                              "DICOM_TLS_CERT": str(cert), "DICOM_TLS_KEY": str(key)})
    assert (settings.dicom_port, settings.dicom_ae_title) == (2762, "TELEDENT")
    assert (settings.dicom_tls_cert, settings.dicom_tls_key) == (str(cert), str(key))


@pytest.mark.parametrize(("environ", "message"), [
    ({"DICOM_PORT": "70000"}, "DICOM_PORT"),
    ({"DICOM_PORT": "eleven"}, "DICOM_PORT"),
    ({"DICOM_AE_TITLE": "A" * 17}, "DICOM_AE_TITLE"),
    ({"DICOM_AE_TITLE": "BAD\\AE"}, "DICOM_AE_TITLE"),
    ({"DICOM_TLS_CERT": "/nonexistent/cert.pem"}, "go together"),
    ({"DICOM_TLS_CERT": "/nonexistent/cert.pem", "DICOM_TLS_KEY": "/nonexistent/key.pem"}, "no readable file"),
])
def test_bad_values_are_refused(environ: dict[str, str], message: str):
    with pytest.raises(ConfigError, match=message):
        load_settings({**BASE, **environ})


def test_the_listener_refuses_to_start_with_a_certificate_it_cannot_load(tmp_path: Path, database_url: str,
                                                                         store: Storage):
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("not a certificate")
    key.write_text("not a key")
    app = create_app(make_settings(tmp_path, database_url, dicom_tls_cert=str(cert), dicom_tls_key=str(key)),
                     store=store)
    try:
        with app.app_context():
            result = app.test_cli_runner().invoke(args=["dicom-listener", "--port", "0"])
    finally:
        app.extensions["referral.engine"].dispose()
    assert result.exit_code == 1
    assert "could not be loaded" in result.output
