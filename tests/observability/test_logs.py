"""Structured logs: one JSON object per line, the request id on every line of a request, and nothing
outside the allow-list."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from referral.config import PROJECT_ROOT, ConfigError, load_settings
from referral.observability.hooks import REQUEST_ID_HEADER
from referral.observability.logs import configure_logging
from tests.support.observability import json_lines, sqlite_app
from tests.support.world import World

probe_log = logging.getLogger("referral.probe")


@pytest.fixture
def probed_app(tmp_path: Path, sqlite_template: Path) -> Iterator[Flask]:
    """An app with one extra route that logs a line, as any view or service would."""
    with sqlite_app(tmp_path, sqlite_template) as application:

        def probe(number: int) -> str:
            probe_log.warning("probe ran for %s", "a test")
            return "ok"

        application.add_url_rule("/probe/<int:number>", view_func=probe)
        yield application


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("json", stream=stream)
    yield stream
    configure_logging("json")


def test_every_line_of_a_request_is_json_and_carries_its_request_id(probed_app: Flask, capsys):
    response = probed_app.test_client().get("/probe/7?name=Jane", headers={REQUEST_ID_HEADER: "edge-7f3a9c21"})

    lines = json_lines(capsys.readouterr().err)
    probe = [line for line in lines if line["logger"] == "referral.probe"]
    access = [line for line in lines if line["logger"] == "referral.access"]
    assert response.status_code == 200
    assert response.headers[REQUEST_ID_HEADER] == "edge-7f3a9c21"
    assert len(probe) == 1
    assert len(access) == 1
    assert probe[0]["request_id"] == access[0]["request_id"] == "edge-7f3a9c21"
    assert probe[0]["message"] == "probe ran for a test"
    assert probe[0]["level"] == "WARNING"
    assert {"time", "level", "logger", "message", "request_id"} <= set(probe[0])
    line = access[0]
    assert line["method"] == "GET"
    assert line["route"] == "/probe/<int:number>"
    assert line["status"] == 200
    assert line["bytes"] == 2
    assert isinstance(line["duration_ms"], float)
    assert line["user_id"] is None
    # The access line names the route, never the concrete path or its query string.
    assert "Jane" not in json.dumps(lines)
    assert "/probe/7" not in json.dumps(lines)


def test_a_request_without_a_valid_id_gets_a_new_one(probed_app: Flask, capsys):
    client = probed_app.test_client()
    invalid = ["short", "has spaces in it", "x" * 129, "<script>alert(1)</script>", "naïve-unicode-id"]

    answered = [client.get("/probe/1", headers={REQUEST_ID_HEADER: value}).headers[REQUEST_ID_HEADER]
                for value in invalid]
    plain = [client.get("/probe/1").headers[REQUEST_ID_HEADER] for _ in range(2)]

    lines = json_lines(capsys.readouterr().err)
    assert len(set(answered + plain)) == len(answered + plain)
    for request_id in answered + plain:
        assert len(request_id) == 32
        assert int(request_id, 16) >= 0
    assert [line["request_id"] for line in lines if line["logger"] == "referral.access"] == answered + plain


def test_unmatched_paths_and_errors_are_logged_with_their_id_and_no_path(probed_app: Flask, capsys):
    response = probed_app.test_client().get("/patients/Jane-Doe")

    (line,) = [line for line in json_lines(capsys.readouterr().err) if line["logger"] == "referral.access"]
    assert response.status_code == 404
    assert line["request_id"] == response.headers[REQUEST_ID_HEADER]
    assert line["route"] is None
    assert line["message"] == "GET unmatched 404"
    assert "Jane" not in json.dumps(line)


def test_the_access_line_names_the_authenticated_user_by_id(world: World, capsys):
    capsys.readouterr()

    response = world.admin.get("/api/v1/organizations")

    (line,) = [line for line in json_lines(capsys.readouterr().err) if line["logger"] == "referral.access"]
    assert response.status_code == 200
    assert line["user_id"] == world.admin_id
    assert line["route"] == "/api/v1/organizations"
    assert line["request_id"] == response.headers[REQUEST_ID_HEADER]


def test_extra_fields_outside_the_allow_list_never_reach_the_output(log_stream: io.StringIO):
    log = logging.getLogger("referral.careless")

    log.warning("image stored", extra={"patient_name": "Jane Doe", "birth_date": "1980-01-01",
                                       "original_filename": "jane-doe.dcm", "image_id": "3f2a", "bytes": 1024})

    (line,) = json_lines(log_stream.getvalue())
    assert line["image_id"] == "3f2a"
    assert line["bytes"] == 1024
    assert line["redacted_fields"] == 3
    for value in ("patient_name", "birth_date", "original_filename", "Jane", "1980-01-01", "jane-doe"):
        assert value not in log_stream.getvalue()


def test_exception_text_is_left_out_of_the_line_but_the_traceback_kept(log_stream: io.StringIO):
    log = logging.getLogger("referral.failing")
    # A variable, because a traceback quotes the source line that raised.
    detail = "patient Jane Doe born 1980-01-01 not found"

    try:
        raise ValueError(detail)
    except ValueError:
        log.exception("lookup failed")

    (line,) = json_lines(log_stream.getvalue())
    assert line["message"] == "lookup failed"
    assert line["exc_type"] == "ValueError"
    assert "test_exception_text_is_left_out_of_the_line" in line["traceback"]
    assert "Jane" not in log_stream.getvalue()


def test_text_format_is_one_plain_line_with_the_request_id(tmp_path: Path, sqlite_template: Path, capsys):
    with sqlite_app(tmp_path, sqlite_template, log_format="text") as application:
        response = application.test_client().get("/api/v1/referrals")
    err = capsys.readouterr().err
    configure_logging("json")

    (line,) = [line for line in err.splitlines() if "referral.access" in line]
    assert f"INFO referral.access [{response.headers[REQUEST_ID_HEADER]}] GET /api/v1/referrals 401" in line


def test_log_format_and_metrics_allow_are_checked_settings(tmp_path: Path):
    base = {"APP_ENV": "test", "INSTANCE_PATH": str(tmp_path)}
    defaults = load_settings(base)
    assert defaults.log_format == "json"
    assert defaults.to_flask_config()["LOG_FORMAT"] == "json"
    assert {str(n) for n in defaults.metrics_allow} >= {"127.0.0.0/8", "10.0.0.0/8", "::1/128"}
    assert load_settings({**base, "LOG_FORMAT": "TEXT"}).log_format == "text"
    assert [str(n) for n in load_settings({**base, "METRICS_ALLOW": "10.1.2.0/24, 2001:db8::/32"}).metrics_allow] \
        == ["10.1.2.0/24", "2001:db8::/32"]
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        load_settings({**base, "LOG_FORMAT": "xml"})
    with pytest.raises(ConfigError, match="METRICS_ALLOW"):
        load_settings({**base, "METRICS_ALLOW": "10.0.0.0/33"})


GUNICORN_CHECK = """
import runpy
from gunicorn.config import Config
from gunicorn.glogging import Logger

namespace = runpy.run_path("infra/gunicorn.conf.py")
cfg = Config()
for name, value in namespace.items():
    if name in cfg.settings:
        cfg.set(name, value)
print(cfg.workers, cfg.accesslog, cfg.timeout)
log = Logger(cfg)
log.info("Booting worker with pid: %s", 4242)
log.error('Error handling request "%s"', "quoted")
"""


def test_the_gunicorn_config_writes_its_error_log_as_json_and_no_access_log():
    env = {name: value for name, value in os.environ.items() if name not in ("WEB_CONCURRENCY", "LOG_FORMAT")}
    env["GUNICORN_MAX_WORKERS"] = "2"
    result = subprocess.run([sys.executable, "-c", GUNICORN_CHECK], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=60, check=False)

    assert result.returncode == 0, result.stderr
    workers, accesslog, timeout = result.stdout.split()
    assert 1 <= int(workers) <= 2
    assert accesslog == "None"
    assert int(timeout) >= 300
    lines = json_lines(result.stderr)
    assert [(line["logger"], line["level"], line["message"]) for line in lines] == [
        ("gunicorn.error", "INFO", "Booting worker with pid: 4242"),
        ("gunicorn.error", "ERROR", 'Error handling request "quoted"'),
    ]
