"""Servers the tests really start: the app under the project's gunicorn configuration."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.support.s3server import free_port

ROOT = Path(__file__).resolve().parents[2]


def start_gunicorn(env: dict[str, str], log: Path) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "infra/gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT, env={**env, "BIND": f"127.0.0.1:{port}"}, stdout=sink, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopping it stops its workers too
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            try:
                if requests.get(f"{base}/readyz", timeout=10).status_code == 200:
                    return base, process
            except requests.RequestException:
                pass  # still starting (a busy machine can be slow to answer the first request)
            assert process.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, "the server did not become ready within 90 s"
            time.sleep(0.3)
    except BaseException:
        stop_server(process)
        raise


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the master and its workers; SIGKILL to the whole group if they are not gone in 30 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
