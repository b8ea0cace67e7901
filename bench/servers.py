"""The servers a benchmark measures, each started on a free loopback port and always stopped: the referral
server and a bare Flask app under the project's gunicorn configuration, Orthanc with a private configuration,
moto's S3 server for the direct-to-storage path, and fresh PostgreSQL databases that are dropped afterwards."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import psycopg
from sqlalchemy.orm import Session

from bench.common import BenchError, Child, free_port, http_status, wait_until_ready
from referral.cli import upgrade_database
from referral.config import normalize_database_url
from referral.db import make_engine
from referral.services.organizations import create_platform_admin

POSTGRES_SERVER = os.environ.get("BENCH_POSTGRES_SERVER", "postgresql://postgres@127.0.0.1:5432")
# One gunicorn process per core, each with the configuration's four threads for the time requests spend
# waiting on PostgreSQL and the disk. (Without WEB_CONCURRENCY the configuration takes 2 x cores + 1.)
# docs/benchmarks.md says what other counts gave.
WEB_CONCURRENCY = os.environ.get("BENCH_WEB_CONCURRENCY", str(os.cpu_count() or 2))
GUNICORN = [sys.executable, "-m", "gunicorn", "-c", "infra/gunicorn.conf.py"]


def postgres_available() -> str | None:
    """None when the PostgreSQL server answers, else why not."""
    try:
        with psycopg.connect(f"{POSTGRES_SERVER}/postgres", connect_timeout=5) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL at {POSTGRES_SERVER} is not reachable ({type(exc).__name__})"
    return None


def postgres_version() -> str:
    with psycopg.connect(f"{POSTGRES_SERVER}/postgres", connect_timeout=5) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "unknown"


@contextmanager
def fresh_database(purpose: str) -> Iterator[str]:
    """A new PostgreSQL database migrated to head, dropped at the end whatever happened."""
    name = f"bench_{purpose}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = normalize_database_url(f"{POSTGRES_SERVER}/{name}")
    try:
        engine = make_engine(url)
        try:
            upgrade_database(engine)
        finally:
            engine.dispose()
        yield url
    finally:
        with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def backend_pids(database_url: str) -> list[int]:
    """The PostgreSQL server processes serving connections to this database (the server's pool)."""
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(f"{POSTGRES_SERVER}/postgres", connect_timeout=5) as connection:
        rows = connection.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,)).fetchall()
    return [int(row[0]) for row in rows]


def platform_admin_token(database_url: str) -> str:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            _, token = create_platform_admin(session, f"operator-{uuid.uuid4().hex[:8]}@example.com")
    finally:
        engine.dispose()
    return token


@dataclass
class Server:
    base: str
    port: int
    child: Child
    env: dict[str, str] = field(default_factory=dict)  # the server's environment, for its commands (the worker)

    @property
    def pid(self) -> int:
        return self.child.pid


def _gunicorn_env(port: int, extra: dict[str, str]) -> dict[str, str]:
    # No AWS_* variable is inherited: a server that stores in S3 is pointed at moto by moto_env() only, so a
    # benchmark can never reach a real account.
    env = {key: value for key, value in os.environ.items()
           if key not in ("QUICK", "MAKEFLAGS", "MFLAGS") and not key.startswith("AWS_")}
    env.update({
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": WEB_CONCURRENCY,
        "LOG_FORMAT": "json",
        "PYTHONDONTWRITEBYTECODE": "1",
        # No worker recycling (infra/gunicorn.conf.py replaces a worker every ~2,000 requests by default): a
        # worker booting in the middle of a round would add its start-up to that round's CPU, one exiting would
        # take its CPU out, and under wrk both workers of a server were replaced every few seconds.
        "GUNICORN_MAX_REQUESTS": "0",
    })
    env.update(extra)
    return env


@contextmanager
def referral_server(workdir: Path, database_url: str, *, name: str = "referral",
                    extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    """``gunicorn -c infra/gunicorn.conf.py wsgi:app`` in production mode, PostgreSQL and local-folder storage."""
    port = free_port()
    folder = workdir / name
    (folder / "instance").mkdir(parents=True, exist_ok=True)
    (folder / "spool").mkdir(exist_ok=True)
    env = _gunicorn_env(port, {
        "APP_ENV": "production",
        "SECRET_KEY": os.urandom(32).hex(),
        "DATABASE_URL": database_url,
        "STORAGE_URL": f"file://{folder / 'objects'}",
        "INSTANCE_PATH": str(folder / "instance"),
        "UPLOAD_TMP_DIR": str(folder / "spool"),
        **(extra_env or {}),
    })
    child = Child(name, [*GUNICORN, "wsgi:app"], env=env, log=workdir / f"{name}.log")
    profiler: Child | None = None
    try:
        wait_until_ready(child, port, "/readyz")
        profiler = _profiler(child, name, workdir)
        yield Server(f"http://127.0.0.1:{port}", port, child, env)
    finally:
        if profiler is not None:
            profiler.interrupt()
        child.stop()


def _profiler(child: Child, name: str, workdir: Path) -> Child | None:
    """With BENCH_PROFILE=folder, py-spy samples the server's workers while the benchmark runs and writes
    collapsed stacks there (``<server>.txt``), for finding where a missed target's time goes.
    BENCH_PROFILE_MODE=gil samples only threads holding the GIL (Python's own CPU); =idle also samples
    waiting threads (where the wall-clock time goes)."""
    folder = os.environ.get("BENCH_PROFILE")
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not folder or not Path(spy).exists():
        return None
    Path(folder).mkdir(parents=True, exist_ok=True)
    output = Path(folder).resolve() / f"{name}.txt"
    mode = os.environ.get("BENCH_PROFILE_MODE", "")
    idle = {"gil": ["--gil"], "idle": ["--idle"]}.get(mode, [])
    return Child(f"py-spy {name}", [spy, "record", "--subprocesses", "--format", "raw", "--rate", "200", *idle,
                                    "--output", str(output), "--pid", str(child.pid)],
                 env=dict(os.environ), log=workdir / f"py-spy-{name}.log")


@contextmanager
def bare_flask_server(workdir: Path) -> Iterator[Server]:
    """The baseline: a Flask app with one JSON route, under the same gunicorn configuration."""
    port = free_port()
    env = _gunicorn_env(port, {})
    child = Child("bare-flask", [*GUNICORN, "bench.bare_app:app"], env=env, log=workdir / "bare-flask.log")
    try:
        wait_until_ready(child, port, "/healthz")
        yield Server(f"http://127.0.0.1:{port}", port, child)
    finally:
        child.stop()


@contextmanager
def floor_server(workdir: Path, database_url: str) -> Iterator[Server]:
    """The same-work floor of the case read (bench/floor_app.py), under the same gunicorn configuration."""
    port = free_port()
    env = _gunicorn_env(port, {"FLOOR_DATABASE_URL": database_url})
    child = Child("floor", [*GUNICORN, "bench.floor_app:app"], env=env, log=workdir / "floor.log")
    try:
        wait_until_ready(child, port, "/healthz")
        yield Server(f"http://127.0.0.1:{port}", port, child)
    finally:
        child.stop()


def pending_previews(database_url: str) -> int:
    """Images of this database whose previews are still to be drawn after their upload's answer."""
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, connect_timeout=5) as connection:
        row = connection.execute("SELECT count(*) FROM images WHERE preview_state = 'pending'").fetchone()
    return int(row[0]) if row else 0


def wait_for_previews(database_url: str, timeout: float = 300.0) -> float:
    """Wait until every preview deferred past its upload's answer (PREVIEWS_AFTER_ANSWER=busy, the default,
    when a process's drawing slots are all taken) is drawn, so that the CPU read afterwards includes it and
    none of it spills into the other server's turn. Returns the seconds waited."""
    started = time.monotonic()
    while pending_previews(database_url):
        if time.monotonic() - started > timeout:
            raise BenchError(f"previews still pending after {timeout:.0f} s")
        time.sleep(0.1)
    return time.monotonic() - started


S3_REGION = "us-east-1"
S3_BUCKET = "bench-images"
# The fake identity moto accepts (as in tests/support/s3server.py).
MOTO_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@dataclass
class S3Server:
    endpoint: str
    child: Child

    @property
    def pid(self) -> int:
        return self.child.pid

    def env(self) -> dict[str, str]:
        """What the referral server needs to store in this moto server's bucket (moto's fake identity)."""
        return {
            "STORAGE_URL": f"s3://{S3_BUCKET}/bench",
            **MOTO_CREDENTIALS,
            "AWS_DEFAULT_REGION": S3_REGION,
            "AWS_ENDPOINT_URL_S3": self.endpoint,
        }


@contextmanager
def moto_server(workdir: Path) -> Iterator[S3Server]:
    """moto's S3 server (``python -m moto.server``) in a process of its own on a free loopback port, with the
    bucket the referral server stores in, as the tests use it (tests/support/s3server.py) but out of process,
    so that its CPU is not counted as the referral server's."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    child = Child("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                  env=env, log=workdir / "moto.log")
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while http_status("127.0.0.1", port, "/moto-api/") is None:
            if not child.alive():
                raise BenchError(f"moto exited during start-up:\n{child.log_tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"moto was not ready within 60 s:\n{child.log_tail()}")
            time.sleep(0.2)
        client = boto3.session.Session().client("s3", endpoint_url=endpoint, region_name=S3_REGION,
                                                aws_access_key_id=MOTO_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                                                aws_secret_access_key=MOTO_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
        try:
            client.create_bucket(Bucket=S3_BUCKET)
        finally:
            client.close()
        yield S3Server(endpoint, child)
    finally:
        child.stop()


def orthanc_binary() -> str | None:
    return shutil.which("Orthanc") or next(
        (path for path in ("/usr/sbin/Orthanc", "/usr/bin/Orthanc") if Path(path).exists()), None)


@contextmanager
def orthanc_server(workdir: Path, name: str = "orthanc") -> Iterator[Server]:
    """Our own Orthanc: a temporary configuration and storage folder of its own (``name``, one per benchmark,
    so that each starts empty), a free loopback HTTP port, no DICOM listener, no plugins. A system service of
    the Debian package, if any runs, is neither used nor touched."""
    binary = orthanc_binary()
    if binary is None:
        raise BenchError("Orthanc is not installed (bench/setup.sh installs the Debian package 'orthanc')")
    folder = workdir / name
    (folder / "storage").mkdir(parents=True, exist_ok=True)
    (folder / "index").mkdir(exist_ok=True)
    port = free_port()
    config = {
        "Name": "bench",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "index"),
        "HttpServerEnabled": True,
        "HttpPort": port,
        "DicomServerEnabled": False,
        "DicomPort": free_port(),
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "SslEnabled": False,
        "Plugins": [],
        "StorageCompression": False,
        # Orthanc's default since 1.7.4, stated here because the comparison depends on it: every stored
        # file is fsync()ed, as the referral server's local-folder store does.
        "SyncStorageArea": True,
        "SaveJobs": False,
    }
    config_path = folder / "orthanc.json"
    config_path.write_text(json.dumps(config, indent=2))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(folder), "LANG": "C.UTF-8"}
    child = Child(name, [binary, str(config_path)], env=env, log=workdir / f"{name}.log", cwd=folder)
    try:
        wait_until_ready(child, port, "/system")
        yield Server(f"http://127.0.0.1:{port}", port, child)
    finally:
        child.stop()


def orthanc_version() -> str | None:
    binary = orthanc_binary()
    if binary is None:
        return None
    output = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10, check=False).stdout
    words = output.split("\n", 1)[0].split()  # "/usr/sbin/Orthanc 1.10.1"
    return words[-1] if words else None

