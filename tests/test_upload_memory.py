"""The server's memory does not grow with the size of an upload: it streams to disk and to the store."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from referral import create_app
from referral.cli import upgrade_database
from referral.db import make_engine
from referral.services.organizations import create_platform_admin
from storage import LocalStorage
from tests.support import samples
from tests.support.settings import make_settings
from tests.support.world import PATIENT, organization_body, provider_body

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not found")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    database_url = f"sqlite:///{tmp_path / 'server.db'}"
    engine = make_engine(database_url)
    upgrade_database(engine)
    engine.dispose()
    app = create_app(make_settings(tmp_path, database_url), store=LocalStorage(tmp_path / "objects"))
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        _, admin_token = create_platform_admin(session, "operator@example.com")
    app.extensions["referral.engine"].dispose()

    port = _free_port()
    env = {**os.environ, "APP_ENV": "test", "DATABASE_URL": database_url,
           "STORAGE_URL": f"file://{tmp_path / 'objects'}", "MAX_UPLOAD_BYTES": str(128 * 1024 * 1024),
           "INSTANCE_PATH": str(tmp_path / "instance"), "UPLOAD_TMP_DIR": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "run", "--port", str(port), "--no-reload"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=10).status_code == 200:
                    break
            except requests.RequestException:
                pass  # still starting
            assert process.poll() is None, "the server exited during start-up"
            assert time.monotonic() < deadline, "the server did not start within 90 s"
            time.sleep(0.2)
    except BaseException:
        process.kill()
        process.wait(timeout=20)
        raise
    try:
        yield base, admin_token, process
    finally:
        process.terminate()
        process.wait(timeout=10)


def _setup_referral(base: str, admin_token: str) -> tuple[str, dict[str, str], str]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {admin_token}"
    org = session.post(f"{base}/api/v1/organizations", json=organization_body()).json()["id"]
    hygienist = session.post(f"{base}/api/v1/organizations/{org}/providers",
                             json=provider_body("hygiene", taxonomy="124Q00000X")).json()["id"]
    dentist = session.post(f"{base}/api/v1/organizations/{org}/providers", json=provider_body()).json()["id"]
    staff = session.post(f"{base}/api/v1/organizations/{org}/users",
                         json={"email": "staff@example.com", "role": "staff", "provider_id": hygienist}).json()
    headers = {"Authorization": f"Bearer {staff['token']}"}
    patient = requests.post(f"{base}/api/v1/patients", json=PATIENT, headers=headers, timeout=10).json()["id"]
    referral = requests.post(f"{base}/api/v1/referrals", headers=headers, timeout=10, json={
        "patient_id": patient, "referring_provider_id": dentist, "specialty": "endodontics",
        "reason": "pain", "teeth": ["19"], "urgency": "routine", "mode": "asynchronous"}).json()["id"]
    return referral, headers, hygienist


def _upload(base: str, referral: str, headers: dict[str, str], hygienist: str, path: Path) -> requests.Response:
    with path.open("rb") as fh:
        return requests.post(
            f"{base}/api/v1/referrals/{referral}/images", headers=headers, timeout=120,
            data={"kind": "periapical", "teeth": "19", "reason": "pain",
                  "captured_at": "2026-01-05T10:30:00+00:00", "captured_by_provider_id": hygienist},
            files={"file": ("large.dcm", fh, "application/dicom")},
        )


def test_uploading_a_60_mb_dicom_does_not_grow_server_memory_with_its_size(server, tmp_path: Path):
    base, admin_token, process = server
    referral, headers, hygienist = _setup_referral(base, admin_token)
    small = tmp_path / "small.dcm"
    small.write_bytes(samples.dicom_bytes())
    large = tmp_path / "large.dcm"
    size = samples.write_large_dicom(large, 60)
    assert size >= 60 * 1000 * 1000

    # warm up every code path (imports, first DICOM parse, first store write) on a small file
    assert _upload(base, referral, headers, hygienist, small).status_code == 201
    peak_before = _memory_kib(process.pid, "VmHWM")

    response = _upload(base, referral, headers, hygienist, large)

    assert response.status_code == 201, response.text
    assert response.json()["size"] == size
    growth_mib = (_memory_kib(process.pid, "VmHWM") - peak_before) / 1024
    assert growth_mib < 20, f"peak resident memory grew by {growth_mib:.1f} MiB for a {size // 2**20} MiB upload"
    downloaded = requests.get(f"{base}/api/v1/images/{response.json()['id']}/content", headers=headers,
                              timeout=120)
    assert downloaded.status_code == 200
    assert len(downloaded.content) == size
