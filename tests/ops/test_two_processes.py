"""Two app processes, started with the project's gunicorn configuration, share one state: PostgreSQL and S3.

Nothing lives on an app host's disk, so what one process accepted the other serves: the referral, the
image bytes (same SHA-256), the preview made at upload, and a browser session signed in through the other.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy.orm import Session

from referral.db import make_engine
from referral.services.organizations import create_platform_admin
from tests.support import samples
from tests.support.servers import start_gunicorn, stop_server
from tests.support.settings import truncate_postgres
from tests.support.world import PATIENT, organization_body, provider_body

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture
def two_servers(tmp_path: Path, migrated_postgres: str, s3_bucket: str) -> Iterator[tuple[str, str, str, Path]]:
    engine = make_engine(migrated_postgres)
    with Session(engine) as session:
        _, admin_token = create_platform_admin(session, "operator@example.com")
    engine.dispose()
    env = {
        **os.environ,
        "APP_ENV": "production",
        "SECRET_KEY": os.urandom(32).hex(),
        "DATABASE_URL": migrated_postgres,
        "STORAGE_URL": f"s3://{s3_bucket}/referral",
        "WEB_CONCURRENCY": "1",
        "GUNICORN_THREADS": "2",
        "LOG_FORMAT": "json",
        # The sign-in below is the password alone; two-step sign-in has its own tests (tests/web/test_mfa_*.py).
        "MFA_REQUIRED": "0",
    }
    processes = []
    try:
        servers = []
        for name in ("a", "b"):
            # Each host gets its own, separate folders: nothing may be shared through them.
            host_env = {**env, "INSTANCE_PATH": str(tmp_path / name / "instance"),
                        "UPLOAD_TMP_DIR": str(tmp_path / name)}
            (tmp_path / name).mkdir()
            base, process = start_gunicorn(host_env, tmp_path / f"{name}.log")
            processes.append(process)
            servers.append(base)
        yield servers[0], servers[1], admin_token, tmp_path
    finally:
        for process in processes:
            stop_server(process)
        truncate_postgres(migrated_postgres)


def test_what_one_process_accepts_the_other_serves(two_servers):
    a, b, admin_token, tmp_path = two_servers
    admin = {"Authorization": f"Bearer {admin_token}"}
    org = requests.post(f"{a}/api/v1/organizations", json=organization_body(), headers=admin, timeout=10).json()
    hygienist = requests.post(f"{b}/api/v1/organizations/{org['id']}/providers", headers=admin, timeout=10,
                              json=provider_body("hygiene", taxonomy="124Q00000X")).json()["id"]
    staff = requests.post(f"{a}/api/v1/organizations/{org['id']}/users", headers=admin, timeout=10,
                          json={"email": "staff@example.com", "role": "staff", "provider_id": hygienist,
                                "password": "a long enough password"}).json()
    headers = {"Authorization": f"Bearer {staff['token']}"}
    patient = requests.post(f"{b}/api/v1/patients", json=PATIENT, headers=headers, timeout=10).json()["id"]
    referral = requests.post(f"{a}/api/v1/referrals", headers=headers, timeout=10, json={
        "patient_id": patient, "referring_provider_id": hygienist, "specialty": "endodontics",
        "reason": "Pain to cold", "teeth": ["19"], "urgency": "routine", "mode": "asynchronous"}).json()["id"]
    radiograph = samples.dicom_bytes(teeth=(), rows=512, columns=512)

    uploaded = requests.post(
        f"{a}/api/v1/referrals/{referral}/images", headers=headers, timeout=60,
        data={"kind": "periapical", "teeth": "19", "reason": "Pain to cold",
              "captured_at": "2026-01-05T10:30:00+00:00", "captured_by_provider_id": hygienist},
        files={"file": ("pa.dcm", radiograph, "application/dicom")})
    assert uploaded.status_code == 201, uploaded.text
    image_id = uploaded.json()["id"]

    case = requests.get(f"{b}/api/v1/referrals/{referral}", headers=headers, timeout=10)
    content = requests.get(f"{b}/api/v1/images/{image_id}/content", headers=headers, timeout=30)
    preview = requests.get(f"{b}/api/v1/images/{image_id}/preview", headers=headers, timeout=30)

    assert case.status_code == 200
    assert [i["id"] for i in case.json()["images"]] == [image_id]
    assert content.status_code == 200
    assert hashlib.sha256(content.content).hexdigest() == uploaded.json()["sha256"] == \
        hashlib.sha256(radiograph).hexdigest()
    assert preview.status_code == 200
    assert preview.content[:3] == b"\xff\xd8\xff"

    # A browser session made through one process is honoured by the other. In production the cookies are
    # Secure, so this plain-HTTP client hands them on itself, as a browser behind TLS would.
    form = requests.get(f"{a}/login", timeout=10)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token
    signed_in = requests.post(
        f"{a}/login", timeout=10, allow_redirects=False,
        headers={"Cookie": f"referral_login_csrf={form.cookies['referral_login_csrf']}"},
        data={"email": "staff@example.com", "password": "a long enough password", "csrf_token": token.group(1)})
    assert signed_in.status_code == 303, signed_in.text
    page = requests.get(f"{b}/referrals/{referral}", timeout=10,
                        headers={"Cookie": f"referral_session={signed_in.cookies['referral_session']}"})
    assert page.status_code == 200
    assert "Doe, Jane" in page.text

    for name in ("a", "b"):
        lines = [line for line in (tmp_path / f"{name}.log").read_text().splitlines() if line.strip()]
        access = [json.loads(line) for line in lines if '"referral.access"' in line]
        assert access, f"process {name} wrote no access lines"
        assert all(entry["request_id"] for entry in access)
        text = "\n".join(lines)
        # The birth date as written (a bare "1980" could be part of a process id in gunicorn's own lines).
        for patient_data in ("Doe", "Jane", "1980-01-01", "19800101"):
            assert patient_data not in text, f"patient data in process {name}'s log"
