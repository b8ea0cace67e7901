"""Twenty 100-megapixel uploads at once leave the server answering and its memory growth under 1.5 GB.

The server runs the production way: gunicorn with ``infra/gunicorn.conf.py`` on PostgreSQL and S3 (moto's
server), with the compose deployment's ``WEB_CONCURRENCY`` of 4 and every other setting at its default (4
threads per worker, ``PREVIEW_CONCURRENCY`` 2, ``WORKER_MAX_RSS_MB`` 1024).

Every file is a PNG of a few hundred KB that declares 10000 x 10000 pixels. What the product does with such a
file depends on the pixel and decode budgets of ``referral/imaging/limits.py``:

- 8-bit grey is exactly ``MAX_PIXELS`` (100,000,000) and its estimated decode cost (1 byte x 1.4 per pixel,
  about 134 MiB) is within ``MAX_DECODE_BYTES`` (136 MiB): the file is accepted (201) and its preview is
  drawn from a full decode. These are the worst files the budget lets in; most of the twenty are these.
- RGB, the kind of file the hostile review sent (about 480 MB to draw), costs 4 bytes x 1.4 per pixel, far over
  the budget: it is refused with 422 and a message naming the memory limit, from its header, before any decoding.

While they are in flight, and until every preview is drawn, ``/healthz`` and a normal authenticated read of the
referral are asked every 0.2 s and must each be answered (within 10 s: a limit for a server that stopped
answering, not a speed target; how fast they are answered is a measurement, see docs/security.md); the total
resident memory of the gunicorn master and all its workers (``VmRSS`` from ``/proc``) is sampled throughout and
must not grow more than 1.5 GB over its level before the burst. Afterwards the server answers normally and the
referral lists exactly the accepted images.

An upload that finds both of its process's drawing slots busy is answered at once, its preview pending
(``PREVIEWS_AFTER_ANSWER=busy``, the default), and the process's drawing thread draws it afterwards, one
slot's worth at a time; so no request thread waits for a slot, and polls keep being answered while the
previews are drawn. The watch goes on until no image is pending. (Before previews could be drawn after the
answer, an upload waiting for a slot held its request thread, and one or two polls per run waited 1.5 to 7 s.)
"""

from __future__ import annotations

import os
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy.orm import Session

from referral.db import make_engine
from referral.imaging.limits import MAX_DECODE_BYTES, MAX_PIXELS
from referral.services.organizations import create_platform_admin
from tests.support.servers import start_gunicorn, stop_server
from tests.support.settings import truncate_postgres
from tests.support.world import PATIENT, organization_body, provider_body

pytestmark = pytest.mark.slow

SIDE = 10_000
ACCEPTED_UPLOADS = 16  # 8-bit grey, drawn in full
REFUSED_UPLOADS = 4  # RGB, refused from the header
GROWTH_LIMIT = 1_500_000_000  # bytes
POLL_EVERY = 0.2  # seconds
STALL_LIMIT = 10.0  # seconds: a poll not answered in this long means the server stopped answering
DRAWING_LIMIT = 240.0  # seconds after the last answer for every deferred preview to be drawn
# The compose deployment's worker count (infra/docker-compose.yml, docs/operations.md); the rest are defaults.
DEPLOYED = {"WEB_CONCURRENCY": "4"}
DEFAULTED = ("GUNICORN_THREADS", "GUNICORN_MAX_WORKERS", "PREVIEW_CONCURRENCY", "WORKER_MAX_RSS_MB",
             "GUNICORN_TIMEOUT", "GUNICORN_MAX_REQUESTS")


# --- the files ---------------------------------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">L", len(data)) + kind + data + struct.pack(">L", zlib.crc32(kind + data))


def _complete_grey_idat() -> bytes:
    """A complete, valid zlib stream of SIDE rows of SIDE black pixels (each row led by filter byte 0), built a
    band at a time so the test never holds the 100 MB it stands for."""
    compressor = zlib.compressobj(9)
    band = b"\x00" * ((SIDE + 1) * 500)
    parts = [compressor.compress(band) for _ in range(SIDE // 500)]
    parts.append(compressor.flush())
    return b"".join(parts)


def _png(color_type: int, idat: bytes, note: str) -> bytes:
    header = struct.pack(">LLBBBBB", SIDE, SIDE, 8, color_type, 0, 0, 0)
    # The note makes every file's bytes (and so its SHA-256) its own; it is ancillary and never shown.
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"tEXt", b"Comment\x00" + note.encode())
            + _chunk(b"IDAT", idat) + _chunk(b"IEND", b""))


def _files() -> list[tuple[str, bytes]]:
    grey = _complete_grey_idat()
    # An RGB file is refused from its header, so its data need not be whole; a short run of zeros will do.
    rgb = zlib.compress(b"\x00" * 4096)
    files = [(f"grey-{n}.png", _png(0, grey, f"grey {n}")) for n in range(ACCEPTED_UPLOADS)]
    files += [(f"rgb-{n}.png", _png(2, rgb, f"rgb {n}")) for n in range(REFUSED_UPLOADS)]
    return files


def test_the_files_are_the_ones_the_docstring_describes() -> None:
    """The budget arithmetic the load test relies on: grey at 10000 x 10000 fits, RGB does not."""
    assert SIDE * SIDE == MAX_PIXELS
    assert SIDE * SIDE * 1 * 1.4 <= MAX_DECODE_BYTES < SIDE * SIDE * 4 * 1.4


# --- the server and what is measured -----------------------------------------------------------------------


@dataclass
class Deployment:
    base: str
    master: int
    headers: dict[str, str]
    referral: str
    provider: str
    log: Path


@pytest.fixture
def deployment(tmp_path: Path, migrated_postgres: str, s3_bucket: str) -> Iterator[Deployment]:
    engine = make_engine(migrated_postgres)
    with Session(engine) as session:
        _, admin_token = create_platform_admin(session, "operator@example.com")
    engine.dispose()
    env = {key: value for key, value in os.environ.items() if key not in DEFAULTED}
    env.update(DEPLOYED)
    env.update({"APP_ENV": "production", "SECRET_KEY": os.urandom(32).hex(), "DATABASE_URL": migrated_postgres,
                "STORAGE_URL": f"s3://{s3_bucket}/referral", "INSTANCE_PATH": str(tmp_path / "instance"),
                "UPLOAD_TMP_DIR": str(tmp_path), "LOG_FORMAT": "json"})
    log = tmp_path / "gunicorn.log"
    base, process = start_gunicorn(env, log)
    try:
        admin = {"Authorization": f"Bearer {admin_token}"}
        org = requests.post(f"{base}/api/v1/organizations", json=organization_body(), headers=admin,
                            timeout=30).json()
        hygienist = requests.post(f"{base}/api/v1/organizations/{org['id']}/providers", headers=admin,
                                  timeout=30, json=provider_body("hygiene", taxonomy="124Q00000X")).json()["id"]
        staff = requests.post(f"{base}/api/v1/organizations/{org['id']}/users", headers=admin, timeout=30,
                              json={"email": "staff@example.com", "role": "staff", "provider_id": hygienist,
                                    "password": "a long enough password"}).json()
        headers = {"Authorization": f"Bearer {staff['token']}"}
        person: dict[str, Any] = dict(PATIENT)
        patient = requests.post(f"{base}/api/v1/patients", json=person, headers=headers, timeout=30).json()["id"]
        body: dict[str, Any] = {"patient_id": patient, "referring_provider_id": hygienist, "specialty": "endodontics",
                                "reason": "Pain to cold", "teeth": ["19"], "urgency": "routine",
                                "mode": "asynchronous"}
        referral = requests.post(f"{base}/api/v1/referrals", headers=headers, timeout=30, json=body).json()["id"]
        yield Deployment(base, process.pid, headers, referral, hygienist, log)
    finally:
        stop_server(process)
        truncate_postgres(migrated_postgres)


def _resident(pid: int) -> int:
    """VmRSS of one process in bytes; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(child) for child in children.read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def total_resident(master: int) -> int:
    """The master's resident memory plus that of every worker it has now (recycled workers included)."""
    return _resident(master) + sum(_resident(worker) for worker in _children(master))


@dataclass
class Watch:
    master: int
    peak: int = 0
    samples: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, total_resident(self.master))
            self.samples += 1
            time.sleep(0.02)


@dataclass
class Polls:
    base: str
    headers: dict[str, str]
    referral: str
    answers: list[tuple[str, int | str, float]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def _ask(self, name: str, url: str, headers: dict[str, str] | None = None) -> None:
        started = time.monotonic()
        try:
            status: int | str = requests.get(url, headers=headers, timeout=30).status_code
        except requests.RequestException as exc:
            status = type(exc).__name__
        self.answers.append((name, status, time.monotonic() - started))

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            self._ask("healthz", f"{self.base}/healthz")
            self._ask("referral", f"{self.base}/api/v1/referrals/{self.referral}", self.headers)
            self.stop.wait(max(0.0, POLL_EVERY - (time.monotonic() - started)))


def _upload(deployment: Deployment, name: str, data: bytes, start: threading.Barrier,
            results: dict[str, requests.Response | Exception]) -> None:
    start.wait()
    try:
        results[name] = requests.post(
            f"{deployment.base}/api/v1/referrals/{deployment.referral}/images", headers=deployment.headers,
            timeout=120, data={"kind": "panoramic", "reason": "Pain to cold",
                               "captured_at": "2026-01-05T10:30:00+00:00",
                               "captured_by_provider_id": deployment.provider},
            files={"file": (name, data, "image/png")})
    except requests.RequestException as exc:
        results[name] = exc


def _until_drawn(deployment: Deployment, results: dict[str, requests.Response | Exception],
                 limit: float) -> float | None:
    """Seconds until no accepted image is pending any more (None if some still are after ``limit``)."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        case = requests.get(f"{deployment.base}/api/v1/referrals/{deployment.referral}",
                            headers=deployment.headers, timeout=30)
        if case.status_code == 200 and all(image["preview_status"] != "pending" for image in case.json()["images"]):
            return time.monotonic() - started
        time.sleep(0.5)
    return None


def test_twenty_hundred_megapixel_uploads_at_once(deployment: Deployment) -> None:
    files = _files()
    assert len(files) == 20
    assert all(len(data) < 400_000 for _, data in files)

    # Every worker has answered a few requests by now; the baseline is taken once memory has settled.
    for _ in range(8):
        assert requests.get(f"{deployment.base}/api/v1/referrals/{deployment.referral}",
                            headers=deployment.headers, timeout=30).status_code == 200
    baseline = total_resident(deployment.master)
    assert baseline > 0

    watch = Watch(deployment.master, peak=baseline)
    polls = Polls(deployment.base, deployment.headers, deployment.referral)
    results: dict[str, requests.Response | Exception] = {}
    start = threading.Barrier(len(files))
    uploads = [threading.Thread(target=_upload, args=(deployment, name, data, start, results))
               for name, data in files]
    watcher = threading.Thread(target=watch.run)
    poller = threading.Thread(target=polls.run)
    watcher.start()
    poller.start()
    try:
        for thread in uploads:
            thread.start()
        for thread in uploads:
            thread.join(timeout=150)
        # The previews left for after the answers are drawn meanwhile: polls and memory are watched until then.
        drawn_within = _until_drawn(deployment, results, limit=DRAWING_LIMIT)
        time.sleep(1)  # a last round of polls and samples after the burst
    finally:
        polls.stop.set()
        watch.stop.set()
        poller.join(timeout=60)
        watcher.join(timeout=10)

    # Every upload was answered: the grey files accepted and drawn, the RGB ones refused by the budget.
    assert len(results) == len(files), "some uploads were never answered"
    for name, result in sorted(results.items()):
        assert isinstance(result, requests.Response), f"{name}: {result!r}"
        if name.startswith("grey"):
            assert result.status_code == 201, f"{name}: {result.status_code} {result.text[:300]}"
            assert result.json()["width"] == SIDE
            assert result.json()["height"] == SIDE
        else:
            assert result.status_code == 422, f"{name}: {result.status_code} {result.text[:300]}"
            assert "memory limit" in result.text, result.text[:300]

    growth = watch.peak - baseline
    assert watch.samples > 20
    assert growth < GROWTH_LIMIT, f"memory grew {growth / 2**20:.0f} MiB over a baseline of {baseline / 2**20:.0f}"

    # Health and a normal read were answered, and quickly, all through the burst (the wait for a free request
    # thread counts: it is what a client sees).
    assert len(polls.answers) >= 10
    for name, status, _ in polls.answers:
        assert status == 200, f"{name} answered {status}"
    stalled = [f"{name} {took:.2f} s" for name, _, took in polls.answers if took >= STALL_LIMIT]
    assert not stalled, f"polls went unanswered for {STALL_LIMIT} s or more: {', '.join(stalled)}"
    # Every accepted image got its preview, the deferred ones after their answer.
    assert drawn_within is not None, f"previews still pending {DRAWING_LIMIT} s after the burst"

    # Afterwards the server answers normally, and the referral holds exactly the accepted images.
    assert requests.get(f"{deployment.base}/readyz", timeout=10).status_code == 200
    case = requests.get(f"{deployment.base}/api/v1/referrals/{deployment.referral}", headers=deployment.headers,
                        timeout=10)
    assert case.status_code == 200
    accepted = {result.json()["id"] for result in results.values()
                if isinstance(result, requests.Response) and result.status_code == 201}
    assert {image["id"] for image in case.json()["images"]} == accepted
    preview = requests.get(f"{deployment.base}/api/v1/images/{sorted(accepted)[0]}/preview",
                           headers=deployment.headers, timeout=30)
    assert preview.status_code == 200
    assert preview.content[:3] == b"\xff\xd8\xff"
