"""Direct-to-storage intake against Orthanc: the app tier's CPU per image when the bytes go straight to S3.

Each image takes the server's presigned path (docs/api.md, "Direct-to-storage uploads"): ``POST
/api/v1/referrals/{id}/images/uploads`` with the file's SHA-256 hands out a form, the client POSTs the form and the
file to moto's S3 server over HTTP, then ``POST complete_url`` has the server copy the object (S3 computing the
copy's SHA-256) and check the DICOM header of the copy in ranged reads, without downloading the pixels. Its
previews are left to the worker: once the rounds are over, ``flask worker --once`` draws them and its CPU is
printed apart. The same files go to Orthanc's ``POST /instances``, taking turns. Only the gunicorn processes'
CPU (master and workers) is counted for ours, not S3's (moto's is printed apart), nor PostgreSQL's (printed
apart too), nor the worker's: ``direct_intake_cpu_vs_orthanc_ratio`` is Orthanc's CPU per image over that.
"""

from __future__ import annotations

import hashlib
import json
import resource
import subprocess
import sys
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.common import ROOT, BenchError, cpu_by_process, cpu_used, heading, line
from bench.context import Run
from bench.intake import (
    CLIENTS,
    PER_REFERRAL,
    Pass,
    Sender,
    Target,
    distinct_files,
    orthanc_instances,
    orthanc_target,
    take_turns,
    total,
)
from bench.servers import (
    WEB_CONCURRENCY,
    S3Server,
    backend_pids,
    fresh_database,
    moto_server,
    pending_previews,
    platform_admin_token,
    referral_server,
)
from bench.world import CAPTURED_AT, Connection, Practice, make_practice

FILE_MB = 4.0
WARM_UP = 8


def _form_body(fields: dict[str, str], data: bytes) -> tuple[str, list[bytes | Path]]:
    """The multipart body a browser sends to a presigned POST: every field, then the file, last."""
    boundary = f"bench{uuid.uuid4().hex}"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
             for name, value in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="radiograph.dcm"\r\n'
                 "Content-Type: application/octet-stream\r\n\r\n")
    pieces: list[bytes | Path] = ["".join(parts).encode(), data, f"\r\n--{boundary}--\r\n".encode()]
    return f"multipart/form-data; boundary={boundary}", pieces


def _ours(stack: ExitStack, run: Run, s3: S3Server, files: int) -> tuple[Target, dict[str, str], str]:
    database_url = stack.enter_context(fresh_database("direct"))
    admin_token = platform_admin_token(database_url)
    server = stack.enter_context(referral_server(run.workdir, database_url, name="direct-server",
                                                 extra_env=s3.env()))
    practice: Practice = make_practice(server.base, admin_token, referrals=-(-files // PER_REFERRAL), users=CLIENTS)
    # one connection to the store per client thread, kept alive like the one to the server
    store_connections: dict[int, Connection] = {}
    lock = threading.Lock()
    digests: dict[int, str] = {}

    def sender(_batch: int, data_files: list[bytes]) -> Sender:
        if not digests:  # hashed once, outside the timed passes
            digests.update((number, hashlib.sha256(data).hexdigest()) for number, data in enumerate(data_files))

        def send(client: int, connection: Connection, number: int, data: bytes) -> str | None:
            with lock:
                to_store = store_connections.setdefault(client, Connection(s3.endpoint))
            headers = {**practice.headers_of(client), "Content-Type": "application/json"}
            referral = practice.referral_ids[number // PER_REFERRAL]
            declared = json.dumps({"sha256": digests[number]}).encode()
            status, body = connection.request("POST", f"/api/v1/referrals/{referral}/images/uploads", headers,
                                              [declared])
            if status != 201:
                return f"file {number}: start: HTTP {status} {body[:200]!r}"
            form: dict[str, Any] = json.loads(body)
            url = urlsplit(form["url"])
            if (url.hostname, url.port) != (to_store.host, to_store.port):
                return f"file {number}: the form is for {form['url']}, not the moto server"
            content_type, pieces = _form_body(form["fields"], data)
            status, body = to_store.request("POST", url.path or "/", {"Content-Type": content_type}, pieces)
            if status not in (200, 201, 204):
                return f"file {number}: S3 POST: HTTP {status} {body[:200]!r}"
            completion = json.dumps({
                "kind": "periapical", "teeth": ["19"], "reason": "Pain to cold", "captured_at": CAPTURED_AT,
                "captured_by_provider_id": practice.hygienist_id, "size": len(data), "sha256": digests[number],
            }).encode()
            status, body = connection.request("POST", form["complete_url"], headers, [completion])
            if status != 201:
                return f"file {number}: complete: HTTP {status} {body[:200]!r}"
            if json.loads(body)["sha256"] != digests[number]:
                return f"file {number}: the server's SHA-256 differs from the file's"
            return None
        return send

    def close_store_connections() -> None:
        for connection in store_connections.values():
            connection.close()

    stack.callback(close_store_connections)
    # Previews of direct uploads are the worker's (docs/imaging.md): nothing to wait for in the app tier's turn.
    target = Target("referral server, direct to S3", server.base, sender,
                    lambda: [server.pid, *server.child.children()], lambda: backend_pids(database_url), lambda: 0.0)
    return target, server.env, database_url


def _drain_with_worker(env: dict[str, str], database_url: str, timeout: float = 600.0) -> tuple[float, int]:
    """Run ``flask worker --once`` until no preview is pending: the CPU seconds its passes spent drawing (children's
    rusage, less each pass's start-up, measured by one more pass with nothing left to do) and the number of images
    it drew."""
    pending = pending_previews(database_url)

    def one_pass() -> float:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--once"], cwd=ROOT, env=env,
                       check=True, capture_output=True, timeout=timeout)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    started = time.monotonic()
    spent, passes = 0.0, 0
    while pending_previews(database_url):
        if time.monotonic() - started > timeout:
            raise BenchError(f"the worker left previews pending after {timeout:.0f} s")
        spent += one_pass()
        passes += 1
    idle = one_pass()
    return max(spent - passes * idle, 0.0), pending


def run(run: Run) -> None:
    heading("1a. Direct-to-storage intake (presigned S3 POST) against Orthanc: app tier CPU per image")
    count, rounds = (24, 2) if run.quick else (80, 4)
    files = distinct_files(count + WARM_UP, FILE_MB)
    line("files (distinct intra-oral DICOM)", count)
    line("file size", sum(len(data) for data in files[:count]) / count / 1e6, "MB")
    line("concurrent clients", CLIENTS)
    line("gunicorn WEB_CONCURRENCY x threads", f"{WEB_CONCURRENCY} x 4")
    line("rounds, taking turns", f"{rounds} of {count // rounds} files each, to each server")
    line("per image", "start (declaring the SHA-256) -> POST form and file to moto's S3 server -> complete")
    with ExitStack() as stack:
        s3 = stack.enter_context(moto_server(run.workdir))
        ours_target, worker_env, database_url = _ours(stack, run, s3, count + WARM_UP)
        targets = [ours_target, orthanc_target(stack, run, "direct-orthanc")]
        for target in targets:
            target.warm(0, files, range(count, count + WARM_UP))
        s3_before = cpu_by_process([s3.pid])
        take_turns(targets, 0, files, count, rounds)
        s3_cpu = cpu_used(s3_before, cpu_by_process([s3.pid]))
        stored = orthanc_instances(targets[1].base)
        worker_cpu, drawn = _drain_with_worker(worker_env, database_url)
    sent = (count // rounds) * rounds
    if stored != sent + WARM_UP:
        raise BenchError(f"Orthanc holds {stored} instances, {sent + WARM_UP} were sent")
    ours: Pass
    orthanc: Pass
    ours, orthanc = (total(target.passes[0]) for target in targets)
    for target, result in zip(targets, (ours, orthanc), strict=True):
        if result.errors:
            raise BenchError(f"{len(result.errors)} uploads to the {target.name} failed: {result.errors[:3]}")
    line("referral server, direct to S3", ours.images_per_s, "images/s (start, S3 POST, complete)")
    line("", ours.cpu_ms_per_image, "ms CPU per image, gunicorn (counted)")
    line("", ours.database_cpu_ms_per_image, "ms CPU per image, PostgreSQL (not counted)")
    line("", s3_cpu * 1000 / ours.files, "ms CPU per image, moto's S3 server (not counted)")
    line("previews drawn afterwards by `flask worker`", drawn, "images")
    line("", worker_cpu * 1000 / max(drawn, 1), "ms CPU per image, the worker's drawing (not the app tier)")
    line("Orthanc (REST POST /instances)", orthanc.images_per_s, "images/s")
    line("", orthanc.cpu_ms_per_image, "ms CPU per image")
    run.record(
        direct_intake_files=ours.files,
        direct_intake_file_mb=round(ours.file_mb, 2),
        direct_intake_ours_images_per_s=round(ours.images_per_s, 2),
        direct_intake_ours_cpu_ms_per_image=round(ours.cpu_ms_per_image, 1),
        direct_intake_ours_database_cpu_ms_per_image=round(ours.database_cpu_ms_per_image, 1),
        direct_intake_s3_cpu_ms_per_image=round(s3_cpu * 1000 / ours.files, 1),
        direct_intake_worker_cpu_ms_per_image=round(worker_cpu * 1000 / max(drawn, 1), 1),
        direct_intake_orthanc_images_per_s=round(orthanc.images_per_s, 2),
        direct_intake_orthanc_cpu_ms_per_image=round(orthanc.cpu_ms_per_image, 1),
        direct_intake_cpu_vs_orthanc_ratio=round(orthanc.cpu_ms_per_image / ours.cpu_ms_per_image, 3),
    )
    run.target("direct_intake_cpu_vs_orthanc_ratio", ">=", 1.0)
