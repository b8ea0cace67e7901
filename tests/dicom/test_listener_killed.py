"""The listener process killed with SIGKILL while a sensor sends a series: every image it answered with success
is stored intact, and sending the series again after a restart files each image exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from pydicom import dcmread
from pynetdicom import AE

from referral.models import Image
from tests.support.dicom_net import LISTENER_AE, radiograph, register_device
from tests.support.faults import storage_check
from tests.support.s3server import free_port
from tests.support.world import Practice

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _start(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    with log.open("ab") as sink:
        process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "dicom-listener",
                                    "--port", str(port)], cwd=ROOT, env=env, stdout=sink,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while '"started"' not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail(f"the listener did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.1)
    return process, port


def _send(port: int, paths: list[Path], answers: dict[str, int]) -> None:
    """C-STORE each file, recording each SOP Instance UID's status; stops when the association is lost."""
    ae = AE(ae_title="SENSOR1")
    ae.add_requested_context(str(dcmread(paths[0], stop_before_pixels=True).SOPClassUID))
    assoc = ae.associate("127.0.0.1", port, ae_title=LISTENER_AE)
    assert assoc.is_established
    try:
        for path in paths:
            ds = dcmread(path)
            if not assoc.is_established:
                return
            status = assoc.send_c_store(ds)
            if "Status" not in status:
                return
            answers[str(ds.SOPInstanceUID)] = int(status.Status)
        assoc.release()
    finally:
        # An association the listener's death cut off leaves its socket to the client to close.
        transport = assoc.dul.socket
        if transport is not None and transport.socket is not None:
            transport.socket.close()


def _filed(app: Flask, referral_id: str) -> dict[str, str]:
    with app.app_context(), app.extensions["referral.sessionmaker"]() as session:
        rows = session.execute(sa.select(Image.sop_instance_uid, Image.id)
                               .where(Image.referral_id == uuid.UUID(referral_id))).all()
    return {str(uid): str(image_id) for uid, image_id in rows}


@pytest.mark.parametrize("backend", ["postgres-s3"])
def test_a_listener_killed_mid_series_loses_nothing_it_acknowledged(app: Flask, riverside: Practice,
                                                                     s3_bucket: str, tmp_path: Path, backend: str):
    register_device(riverside, "SENSOR1")
    referral = riverside.staff.post("/api/v1/referrals", {
        "patient_id": riverside.patient_id, "referring_provider_id": riverside.dentist_provider_id,
        "specialty": "endodontics", "reason": "Pain to cold", "teeth": ["19"], "urgency": "routine",
        "mode": "asynchronous"}).get_json()
    paths = [radiograph(tmp_path / f"{n}.dcm", referral["accession_number"], rows=512, columns=512)
             for n in range(40)]
    settings: Any = app.extensions["referral.settings"]
    env = {**os.environ, "APP_ENV": "production", "SECRET_KEY": os.urandom(32).hex(),
           "DATABASE_URL": settings.database_url, "STORAGE_URL": f"s3://{s3_bucket}/referral",
           "LOG_FORMAT": "json", "INSTANCE_PATH": str(tmp_path / "instance")}
    log = tmp_path / "listener.log"
    process, port = _start(env, log)
    answers: dict[str, int] = {}
    sender = threading.Thread(target=_send, args=(port, paths, answers))
    try:
        sender.start()
        deadline = time.monotonic() + 120
        while len(answers) < 3:
            assert time.monotonic() < deadline, f"no images were acknowledged:\n{log.read_text()[-2000:]}"
            assert sender.is_alive(), f"the series finished before the kill:\n{log.read_text()[-2000:]}"
            time.sleep(0.005)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        sender.join(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    acknowledged = {uid for uid, status in answers.items() if status == 0x0000}
    assert acknowledged, answers
    assert len(answers) < len(paths), "the kill came after the whole series"
    filed = _filed(app, referral["id"])
    assert acknowledged <= filed.keys(), "an image answered with success is missing"
    status, repaired = storage_check(app, "--repair", "--grace-minutes", "0")
    assert repaired["missing_objects"] == repaired["checksum_mismatches"] == 0, repaired["problems"]
    assert status == 0

    # The sensor sends the whole series again: each image is filed once.
    process, port = _start(env, tmp_path / "restarted.log")
    try:
        again: dict[str, int] = {}
        _send(port, paths, again)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    assert set(again.values()) == {0x0000}
    assert len(_filed(app, referral["id"])) == len(paths)
