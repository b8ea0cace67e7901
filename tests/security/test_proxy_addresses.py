"""Behind a reverse proxy the client's own address is used for limits and audit, and a client cannot choose it.

The unit tests read X-Forwarded-For as the middleware does; the app tests send it through the test client from
a trusted and an untrusted peer; the last test puts Debian's nginx with the project's configuration in front of
gunicorn and talks to it from two loopback addresses.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy.orm import Session

from referral.config import DEFAULT_RATELIMIT_AUTH_FAILURES, ConfigError, Settings, load_settings
from referral.db import make_engine
from referral.http.proxy import client_address
from referral.services.organizations import create_platform_admin
from tests.support.s3server import free_port
from tests.support.servers import ROOT, start_gunicorn, stop_server
from tests.support.settings import make_settings, truncate_postgres
from tests.support.world import Client, Practice, World, organization_body

PROXY = "127.0.0.1"
AUTH_FAILURES = 20  # DEFAULT_RATELIMIT_AUTH_FAILURES: "20 per 15 minutes"
TRUSTED = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.0.0/16"))
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


@pytest.mark.parametrize(("peer", "header", "client"), [
    ("127.0.0.1", "203.0.113.9", "203.0.113.9"),                   # one proxy
    ("127.0.0.1", "203.0.113.9, 10.0.4.2", "203.0.113.9"),         # two proxies of ours
    ("127.0.0.1", "6.6.6.6, 203.0.113.9", "203.0.113.9"),          # the client wrote a hop of its own
    ("127.0.0.1", "not-an-address, 203.0.113.9", "203.0.113.9"),
    ("127.0.0.1", "203.0.113.9, junk", "127.0.0.1"),                # a hop no proxy of ours would write
    ("127.0.0.1", None, "127.0.0.1"),
    ("127.0.0.1", "10.0.0.5, 127.0.0.1", "10.0.0.5"),               # all trusted: the leftmost
    ("198.51.100.1", "203.0.113.9", "198.51.100.1"),                # not from a proxy: the header is ignored
    ("2001:db8::1", "203.0.113.9", "2001:db8::1"),
])
def test_the_client_is_the_first_untrusted_address_from_the_right(peer: str, header: str | None,
                                                                  client: str) -> None:
    assert client_address(peer, header, TRUSTED) == client


def test_with_no_trusted_proxies_the_header_is_never_read() -> None:
    assert client_address("127.0.0.1", "203.0.113.9", ()) == "127.0.0.1"


def test_trusted_proxies_are_read_from_the_environment_and_checked(tmp_path: Path) -> None:
    base = {"APP_ENV": "test", "SECRET_KEY": "x" * 40, "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite",
            "STORAGE_URL": f"file://{tmp_path}/store"}
    assert load_settings({**base}).trusted_proxies == ()
    assert load_settings({**base, "TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/16"}).trusted_proxies == TRUSTED
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        load_settings({**base, "TRUSTED_PROXIES": "10.0.0.0/99"})


@pytest.fixture
def app_settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, trusted_proxies=TRUSTED,
                         ratelimit_auth_failures=DEFAULT_RATELIMIT_AUTH_FAILURES)


def _through(client: Client, path: str, forwarded: str, peer: str = PROXY) -> Any:
    return client.get(path, headers={"X-Forwarded-For": forwarded}, environ_base={"REMOTE_ADDR": peer})


def _last_address(practice: Practice) -> str:
    return str(practice.org_admin.get("/api/v1/audit-events").get_json()["items"][0]["ip_address"])


def test_audit_rows_record_the_client_behind_the_proxy_not_a_forged_one(riverside: Practice) -> None:
    _through(riverside.staff, f"/api/v1/patients/{riverside.patient_id}", "6.6.6.6, 203.0.113.9")
    assert _last_address(riverside) == "203.0.113.9"

    # Straight from a client that is no proxy of ours: its header is its own invention.
    _through(riverside.staff, f"/api/v1/patients/{riverside.patient_id}", "203.0.113.9", peer="198.51.100.1")
    assert _last_address(riverside) == "198.51.100.1"


def test_one_client_guessing_tokens_behind_the_proxy_does_not_lock_out_the_others(world: World,
                                                                                   riverside: Practice) -> None:
    for n in range(AUTH_FAILURES):
        assert _through(world.as_token(f"guess-{n}"), "/api/v1/patients", "203.0.113.66").status_code == 401
    assert _through(riverside.staff, "/api/v1/patients", "203.0.113.66").status_code == 429
    # Another client reaches the app through the same proxy and is not affected.
    assert _through(riverside.staff, "/api/v1/patients", "198.51.100.20").status_code == 200
    # Nor can the guesser escape its count by writing another address in front of its own.
    assert _through(riverside.staff, "/api/v1/patients", "198.51.100.20, 203.0.113.66").status_code == 429


# --- Debian's nginx with the project's configuration in front of gunicorn ------------------------------------


def _nginx_config(directory: Path, listen: int, upstream: int) -> Path:
    site = (ROOT / "infra" / "nginx" / "referral.conf.template").read_text()
    site = site.replace("${LISTEN}", f"127.0.0.1:{listen}").replace("${UPSTREAM}", f"127.0.0.1:{upstream}")
    (directory / "referral.conf").write_text(site)
    temp = {name: directory / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir()
    main = directory / "nginx.conf"
    main.write_text(f"""
worker_processes 1;
daemon off;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
{"user root;" if os.geteuid() == 0 else ""}
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {temp["body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    include {directory}/referral.conf;
}}
""")
    return main


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert process.poll() is None, log.read_text() if log.exists() else "nginx exited"
            assert time.monotonic() < deadline, "nginx did not start listening within 30 s"
            time.sleep(0.1)


def _get(port: int, path: str, token: str, source: str, forwarded: str | None = None,
         body: dict[str, Any] | None = None) -> int:
    """A request (a POST when there is a body) from a chosen loopback address, the way a client on another
    machine would arrive."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if forwarded:
        headers["X-Forwarded-For"] = forwarded
    try:
        connection.request("POST" if body else "GET", path, headers=headers,
                           body=json.dumps(body) if body else None)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


@pytest.fixture
def behind_nginx(tmp_path: Path, migrated_postgres: str, s3_bucket: str) -> Iterator[tuple[int, int, str]]:
    if NGINX is None:
        pytest.fail("Debian's nginx is not installed (infra/system-deps.sh installs it)", pytrace=False)
    engine = make_engine(migrated_postgres)
    with Session(engine) as session:
        _, admin_token = create_platform_admin(session, "operator@example.com")
    engine.dispose()
    env = {**os.environ, "APP_ENV": "production", "SECRET_KEY": os.urandom(32).hex(),
           "DATABASE_URL": migrated_postgres, "STORAGE_URL": f"s3://{s3_bucket}/referral",
           "WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "2", "TRUSTED_PROXIES": PROXY,
           "INSTANCE_PATH": str(tmp_path / "instance"), "UPLOAD_TMP_DIR": str(tmp_path)}
    base, app_process = start_gunicorn(env, tmp_path / "gunicorn.log")
    app_port = int(base.rsplit(":", 1)[1])
    proxy_port = free_port()
    nginx = subprocess.Popen([NGINX, "-c", str(_nginx_config(tmp_path, proxy_port, app_port)), "-p", str(tmp_path),
                              "-e", str(tmp_path / "error.log")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_port(proxy_port, nginx, tmp_path / "error.log")
        yield proxy_port, app_port, admin_token
    finally:
        stop_server(nginx)
        stop_server(app_process)
        truncate_postgres(migrated_postgres)


@pytest.mark.slow
def test_behind_nginx_limits_count_each_client_and_forged_addresses_are_not_believed(
        behind_nginx: tuple[int, int, str]) -> None:
    proxy_port, app_port, admin_token = behind_nginx
    guesser, neighbour = "127.0.0.2", "127.0.0.3"

    for n in range(AUTH_FAILURES):
        # The guesser claims to be someone else each time; nginx appends its real address, which is what counts.
        assert _get(proxy_port, "/api/v1/patients", f"rfl_guess{n}", guesser, forwarded=f"192.0.2.{n}") == 401
    assert _get(proxy_port, "/api/v1/organizations", admin_token, guesser) == 429
    assert _get(proxy_port, "/api/v1/organizations", admin_token, neighbour) == 200
    # An audited change through the proxy, with a forged address in front of the real one.
    assert _get(proxy_port, "/api/v1/organizations", admin_token, neighbour, forwarded="192.0.2.200",
                body=organization_body("Through The Proxy Dental")) == 201
    # Straight to gunicorn, a forged header is ignored: the peer is no trusted proxy.
    assert _get(app_port, "/api/v1/organizations", admin_token, "127.0.0.4", forwarded="192.0.2.201",
                body=organization_body("Straight In Dental")) == 201

    audit = requests.get(f"http://127.0.0.1:{proxy_port}/api/v1/audit-events", timeout=10,
                         headers={"Authorization": f"Bearer {admin_token}"})
    assert audit.status_code == 200, audit.text
    addresses = {event["ip_address"] for event in audit.json()["items"] if event["action"] == "organization.create"}
    assert addresses == {neighbour, "127.0.0.4"}


@pytest.mark.slow
def test_behind_nginx_slow_clients_do_not_starve_the_others(behind_nginx: tuple[int, int, str]) -> None:
    proxy_port, _, admin_token = behind_nginx
    stalled: list[socket.socket] = []
    try:
        for n in range(50):
            # Headers that never end.
            slow = socket.create_connection(("127.0.0.1", proxy_port), timeout=5)
            slow.sendall(f"GET /api/v1/organizations HTTP/1.1\r\nHost: x\r\nX-Slow: {n}\r\n".encode())
            stalled.append(slow)
        for _ in range(10):
            # A body announced at 1 MB that arrives a few bytes at a time.
            slow = socket.create_connection(("127.0.0.1", proxy_port), timeout=5)
            slow.sendall(b"POST /api/v1/patients HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Authorization: Bearer " + admin_token.encode() + b"\r\nContent-Length: 1000000\r\n\r\n{")
            stalled.append(slow)

        # gunicorn has two threads; none of them is held by a slow client, so others are answered at once
        # (the timeouts below are generous bounds for a loaded machine, not measurements).
        for _ in range(3):
            health = requests.get(f"http://127.0.0.1:{proxy_port}/healthz", timeout=3)
            read = requests.get(f"http://127.0.0.1:{proxy_port}/api/v1/organizations", timeout=3,
                                headers={"Authorization": f"Bearer {admin_token}"})
            assert (health.status_code, read.status_code) == (200, 200)
    finally:
        for slow in stalled:
            slow.close()
