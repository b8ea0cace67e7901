"""Processes killed with SIGKILL at the worst moments, on PostgreSQL and S3: the app server in the middle of
an upload's body and again between writing an upload's objects and committing its row, and the webhook
worker between sending a delivery and recording it. After a restart every acknowledged image is served with
its SHA-256, nothing unacknowledged appears, the store holds no orphans once repaired, and the delivery is
sent again rather than lost."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from referral.db import make_engine
from referral.models import DeliveryStatus, WebhookDelivery
from referral.services import outbox
from referral.services.organizations import create_platform_admin
from tests.support import samples
from tests.support.faults import assert_nothing_lost_and_nothing_extra, image_keys, stored_images
from tests.support.s3server import free_port
from tests.support.webhooks import Receiver, emit, register
from tests.support.world import PATIENT, Practice, organization_body, provider_body

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
MiB = 1024 * 1024


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def _holds_file_in(pid: int, folder: Path) -> bool:
    """Whether the process has a file open in ``folder`` (the spool of an upload being received)."""
    try:
        targets = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return any(target.startswith(str(folder) + "/") for target in targets)


def _gone(pid: int) -> bool:
    """Dead: no longer listed, or a zombie whose parent has not reaped it (its files are closed either way)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return any(line.startswith("State:") and "Z" in line.split()[1] for line in status.splitlines())


@dataclass
class Server:
    """gunicorn with the project's configuration, in its own process group so SIGKILL takes it all."""

    env: dict[str, str]
    log: Path
    spool: Path
    base: str = ""
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        assert self.process is None or self.process.returncode is not None, "the previous server still runs"
        port = free_port()
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "infra/gunicorn.conf.py", "wsgi:app"],
                cwd=ROOT, env={**self.env, "BIND": f"127.0.0.1:{port}"}, stdout=sink, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{self.base}/readyz", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"the server did not become ready:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.2)

    def workers(self) -> list[int]:
        assert self.process is not None
        return _children(self.process.pid)

    def kill(self) -> None:
        """SIGKILL to the master and its workers at once: a crash, not a shutdown."""
        assert self.process is not None
        workers = self.workers()
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while not all(_gone(worker) for worker in workers):
            assert time.monotonic() < deadline, "a killed worker is still running"
            time.sleep(0.01)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=10)


@dataclass
class Case:
    headers: dict[str, str]
    referral_id: str
    hygienist_id: str


FORM = {"kind": "periapical", "teeth": "19", "reason": "Pain to cold",
        "captured_at": "2026-01-05T10:30:00+00:00"}


def _open_case(base: str, admin_token: str) -> Case:
    admin = {"Authorization": f"Bearer {admin_token}"}
    org = requests.post(f"{base}/api/v1/organizations", json=organization_body(), headers=admin, timeout=10).json()
    hygienist = requests.post(f"{base}/api/v1/organizations/{org['id']}/providers", headers=admin, timeout=10,
                              json=provider_body("hygiene", taxonomy="124Q00000X")).json()["id"]
    staff = requests.post(f"{base}/api/v1/organizations/{org['id']}/users", headers=admin, timeout=10,
                          json={"email": "staff@example.com", "role": "staff", "provider_id": hygienist}).json()
    headers = {"Authorization": f"Bearer {staff['token']}"}
    patient = requests.post(f"{base}/api/v1/patients", json=PATIENT, headers=headers, timeout=10).json()["id"]
    referral = requests.post(f"{base}/api/v1/referrals", headers=headers, timeout=10, json={
        "patient_id": patient, "referring_provider_id": hygienist, "specialty": "endodontics",
        "reason": "Pain to cold", "teeth": ["19"], "urgency": "routine", "mode": "asynchronous"}).json()["id"]
    return Case(headers, referral, hygienist)


def _post_image(base: str, case: Case, body: bytes | Any, content_type: str | None = None,
                headers: dict[str, str] | None = None) -> requests.Response:
    url = f"{base}/api/v1/referrals/{case.referral_id}/images"
    if content_type is not None:
        return requests.post(url, data=body, headers={**case.headers, "Content-Type": content_type}, timeout=120)
    return requests.post(url, headers={**case.headers, **(headers or {})}, timeout=120,
                         data={**FORM, "captured_by_provider_id": case.hygienist_id},
                         files={"file": ("pa.dcm", body, "application/dicom")})


class SlowMultipart:
    """A multipart/form-data body with a Content-Length, sent a MiB at a time from a file on disk.
    ``pause(sent)`` runs after each piece, so the test decides when, mid-body, to strike."""

    def __init__(self, fields: dict[str, str], path: Path, pause: Callable[[int], None]) -> None:
        self.boundary = "fault-" + uuid.uuid4().hex
        head = b"".join(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            for name, value in fields.items())
        head += (f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; filename="large.dcm"\r\n'
                 "Content-Type: application/dicom\r\n\r\n").encode()
        self._head, self._tail = head, f"\r\n--{self.boundary}--\r\n".encode()
        self._path, self._pause = path, pause

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return len(self._head) + self._path.stat().st_size + len(self._tail)

    def __iter__(self) -> Iterator[bytes]:
        yield self._head
        sent = len(self._head)
        with self._path.open("rb") as fh:
            while chunk := fh.read(MiB):
                yield chunk
                sent += len(chunk)
                self._pause(sent)
        yield self._tail


@pytest.fixture
def server(tmp_path: Path, migrated_postgres: str, s3_bucket: str) -> Iterator[tuple[Server, str]]:
    engine = make_engine(migrated_postgres)
    with Session(engine) as session:
        _, admin_token = create_platform_admin(session, "operator@example.com")
    engine.dispose()
    spool = tmp_path / "spool"
    spool.mkdir()
    env = {**os.environ, "APP_ENV": "production", "SECRET_KEY": os.urandom(32).hex(),
           "DATABASE_URL": migrated_postgres, "STORAGE_URL": f"s3://{s3_bucket}/referral",
           "WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "2", "LOG_FORMAT": "json",
           "INSTANCE_PATH": str(tmp_path / "instance"), "UPLOAD_TMP_DIR": str(spool)}
    running = Server(env=env, log=tmp_path / "server.log", spool=spool)
    try:
        running.start()
        yield running, admin_token
    finally:
        running.stop()


def test_a_server_killed_mid_upload_and_between_write_and_commit_loses_nothing_it_acknowledged(
        app: Flask, server: tuple[Server, str], s3_client: Any, s3_bucket: str, tmp_path: Path):
    running, admin_token = server
    case = _open_case(running.base, admin_token)
    small = samples.dicom_bytes()
    first = _post_image(running.base, case, small)
    assert first.status_code == 201, first.text
    acknowledged = {first.json()["id"]: hashlib.sha256(small).hexdigest()}
    large = tmp_path / "large.dcm"
    samples.write_large_dicom(large, 24)

    # 1. SIGKILL while the body is arriving: the worker is spooling it to an unnamed temporary file.
    def strike_mid_body(sent: int) -> None:
        if sent < 6 * MiB or running.process is None or running.process.poll() is not None:
            return
        deadline = time.monotonic() + 10
        while not any(_holds_file_in(worker, running.spool) for worker in running.workers()):
            assert time.monotonic() < deadline, "the server never started spooling the body"
            time.sleep(0.01)
        running.kill()

    body = SlowMultipart({**FORM, "captured_by_provider_id": case.hygienist_id}, large, strike_mid_body)
    with pytest.raises(requests.RequestException):
        _post_image(running.base, case, body, body.content_type)
    assert list(running.spool.iterdir()) == [], "a killed upload leaves nothing on the app host's disk"
    assert stored_images(app) == acknowledged
    assert len(image_keys(app)) == 3

    # 2. SIGKILL once the new original is in the bucket, before its previews and row are: an orphan is left,
    # unless the commit won the race, in which case the response was lost with the process. The client
    # sends an Idempotency-Key, so after the restart it can learn which.
    running.start()
    known = {f"referral/{key}" for key in image_keys(app)}
    retry_key = {"Idempotency-Key": "killed-between-write-and-commit"}
    killed_mid_store = False

    def send() -> None:
        with contextlib.suppress(requests.RequestException), large.open("rb") as fh:
            _post_image(running.base, case, fh, headers=retry_key)

    sender = threading.Thread(target=send)
    sender.start()
    deadline = time.monotonic() + 60
    while sender.is_alive() and time.monotonic() < deadline:
        listed = s3_client.list_objects_v2(Bucket=s3_bucket, Prefix="referral/images/").get("Contents", [])
        if {item["Key"] for item in listed} - known:
            running.kill()
            killed_mid_store = True
            break
        time.sleep(0.002)
    sender.join(timeout=60)
    assert killed_mid_store, "the upload finished before its original appeared in the bucket"
    committed = set(stored_images(app)) - set(acknowledged)
    assert committed or len(image_keys(app)) > 3, "neither a row nor the written original: the kill came too early"

    running.start()
    retried = _post_image(running.base, case, large.read_bytes(), headers=retry_key)
    # The key was claimed in the killed request's transaction: committed with its image, or gone with it.
    assert retried.status_code == 201, retried.text
    if committed:
        assert retried.headers["Idempotent-Replayed"] == "true"
        assert {retried.json()["id"]} == committed
    else:
        assert "Idempotent-Replayed" not in retried.headers
    acknowledged[retried.json()["id"]] = hashlib.sha256(large.read_bytes()).hexdigest()

    # 3. After its crashes the server serves what it acknowledged, and accepts new work.
    again = _post_image(running.base, case, samples.dicom_bytes(kvp=65.0))
    assert again.status_code == 201, again.text
    acknowledged[again.json()["id"]] = hashlib.sha256(samples.dicom_bytes(kvp=65.0)).hexdigest()

    def download(image_id: str) -> bytes:
        response = requests.get(f"{running.base}/api/v1/images/{image_id}/content", headers=case.headers,
                                timeout=60)
        assert response.status_code == 200
        return response.content

    listed = requests.get(f"{running.base}/api/v1/referrals/{case.referral_id}/images", headers=case.headers,
                          timeout=10).json()["items"]
    assert sorted(item["id"] for item in listed) == sorted(acknowledged)
    assert_nothing_lost_and_nothing_extra(app, acknowledged, download)


# --- the webhook worker -------------------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        # Long enough to kill the worker while it waits for the answer, after the receiver has the request.
        running.delay = 1.0
        yield running


def test_a_worker_killed_between_sending_and_recording_a_delivery_sends_it_again(
        app: Flask, riverside: Practice, receiver: Receiver, migrated_postgres: str, s3_bucket: str,
        tmp_path: Path):
    register(riverside, receiver.url)
    [event_id] = emit(app, [riverside.id])
    env = {**os.environ, "APP_ENV": "test", "DATABASE_URL": migrated_postgres,
           "STORAGE_URL": f"s3://{s3_bucket}/referral", "INSTANCE_PATH": str(tmp_path / "instance"),
           "WEBHOOK_ALLOW_PRIVATE": "1"}
    worker = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--interval", "0.2"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # A bound on waiting, not a timing assertion: a loaded machine starts the worker slowly.
        deadline = time.monotonic() + 120
        while not receiver.receipts:
            assert worker.poll() is None, "the worker exited"
            assert time.monotonic() < deadline, "the worker never sent the delivery"
            time.sleep(0.01)
        worker.kill()
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.wait(timeout=10)
    factory: sessionmaker[Session] = app.extensions["referral.sessionmaker"]
    with factory() as session:
        [row] = session.scalars(sa.select(WebhookDelivery)).all()
    # Sent, but the worker died before it could record that: still pending, claimed until its lease ends.
    assert (row.status, row.attempts) == (DeliveryStatus.PENDING, 1)
    assert row.next_attempt_at is not None

    summary = outbox.DeliverySummary()
    outbox.deliver_due(factory, now=row.next_attempt_at, allow_private=True, summary=summary)

    assert summary.delivered == 1
    assert [r.headers["x-referral-event-id"] for r in receiver.receipts] == [str(event_id)] * 2
    assert [r.json["id"] for r in receiver.receipts] == [str(event_id)] * 2
    with factory() as session:
        [row] = session.scalars(sa.select(WebhookDelivery)).all()
    assert (row.status, row.attempts) == (DeliveryStatus.DELIVERED, 2)
