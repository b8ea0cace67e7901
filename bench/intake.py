"""Intake throughput against Orthanc: the same distinct ~4 MB intra-oral radiographs, 4 concurrent clients,
uploaded to the referral server (gunicorn, PostgreSQL, local-folder storage) and to Orthanc's REST
``POST /instances``, one after the other in the same run."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field

from bench.common import MB, BenchError, cpu_by_process, cpu_used, heading, line
from bench.context import Run
from bench.dicoms import radiographs
from bench.servers import (
    WEB_CONCURRENCY,
    backend_pids,
    fresh_database,
    orthanc_server,
    platform_admin_token,
    referral_server,
)
from bench.world import Connection, MultipartUpload, make_practice

CLIENTS = 4
FILE_MB = 4.0
PER_REFERRAL = 8
WARM_UP = 8

# One upload by one client: (client number, connection, file number, bytes) -> error message or None.
Sender = Callable[[int, Connection, int, bytes], "str | None"]


@dataclass
class Pass:
    seconds: float
    files: int
    bytes: int
    errors: list[str] = field(default_factory=list)
    cpu_seconds: float = 0.0  # used by the server's processes meanwhile
    database_cpu_seconds: float = 0.0  # used by its PostgreSQL backends meanwhile

    @property
    def cpu_ms_per_image(self) -> float:
        return self.cpu_seconds * 1000 / self.files

    @property
    def database_cpu_ms_per_image(self) -> float:
        return self.database_cpu_seconds * 1000 / self.files

    @property
    def images_per_s(self) -> float:
        return self.files / self.seconds

    @property
    def mb_per_s(self) -> float:
        return self.bytes / MB / self.seconds


def _send_all(base: str, files: list[bytes], send: Sender, numbers: range,
              server_pids: Callable[[], list[int]] = list, database_pids: Callable[[], list[int]] = list) -> Pass:
    """Upload every file of ``numbers`` with CLIENTS threads taking the next file as they finish one."""
    lock = threading.Lock()
    pending = iter(numbers)
    errors: list[str] = []

    def client(client_number: int) -> None:
        connection = Connection(base)
        try:
            while True:
                with lock:
                    number = next(pending, None)
                if number is None:
                    return
                try:
                    problem = send(client_number, connection, number, files[number])
                except OSError as exc:
                    problem = f"file {number}: {type(exc).__name__}: {exc}"
                    connection.close()
                if problem:
                    with lock:
                        errors.append(problem)
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(n,), name=f"client-{n}") for n in range(CLIENTS)]
    cpu_before, database_before = cpu_by_process(server_pids()), cpu_by_process(database_pids())
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    cpu = cpu_used(cpu_before, cpu_by_process(server_pids()))
    database_cpu = cpu_used(database_before, cpu_by_process(database_pids()))
    return Pass(seconds, len(numbers), sum(len(files[n]) for n in numbers), errors, cpu, database_cpu)


@dataclass
class Target:
    """One server under test: how to send it a file, whose CPU to count, and what it has done so far."""

    name: str
    base: str
    send: Sender
    pids: Callable[[], list[int]]
    database_pids: Callable[[], list[int]] = list
    passes: list[Pass] = field(default_factory=list)

    def total(self) -> Pass:
        return Pass(
            seconds=sum(p.seconds for p in self.passes),
            files=sum(p.files for p in self.passes),
            bytes=sum(p.bytes for p in self.passes),
            errors=[error for p in self.passes for error in p.errors],
            cpu_seconds=sum(p.cpu_seconds for p in self.passes),
            database_cpu_seconds=sum(p.database_cpu_seconds for p in self.passes),
        )


def _ours(stack: ExitStack, run: Run, files: list[bytes]) -> Target:
    database_url = stack.enter_context(fresh_database("intake"))
    admin_token = platform_admin_token(database_url)
    server = stack.enter_context(referral_server(run.workdir, database_url, name="intake-server"))
    # one staff member per client, like four people of one office uploading at once
    practice = make_practice(server.base, admin_token, referrals=-(-len(files) // PER_REFERRAL), users=CLIENTS)
    form = MultipartUpload(practice)
    headers = [{**practice.headers_of(n), "Content-Type": form.content_type} for n in range(CLIENTS)]
    digests = [hashlib.sha256(data).hexdigest() for data in files]

    def send(client: int, connection: Connection, number: int, data: bytes) -> str | None:
        referral = practice.referral_ids[number // PER_REFERRAL]
        status, body = connection.request("POST", f"/api/v1/referrals/{referral}/images", headers[client],
                                          [form.prefix, data, form.suffix])
        if status != 201:
            return f"file {number}: HTTP {status} {body[:200]!r}"
        if json.loads(body)["sha256"] != digests[number]:
            return f"file {number}: the server's SHA-256 differs from the file's"
        return None

    return Target("referral server", server.base, send, lambda: [server.pid, *server.child.children()],
                  lambda: backend_pids(database_url))


def _orthanc(stack: ExitStack, run: Run) -> Target:
    server = stack.enter_context(orthanc_server(run.workdir))
    headers = {"Content-Type": "application/dicom"}

    def send(_client: int, connection: Connection, number: int, data: bytes) -> str | None:
        status, body = connection.request("POST", "/instances", headers, [data])
        if status != 200:
            return f"file {number}: HTTP {status} {body[:200]!r}"
        answer = json.loads(body)
        if answer.get("Status") != "Success":
            return f"file {number}: Orthanc answered {answer.get('Status')}"
        return None

    return Target("Orthanc", server.base, send, lambda: [server.pid])


def _orthanc_instances(base: str) -> int:
    connection = Connection(base)
    try:
        status, statistics = connection.json("GET", "/statistics", {})
    finally:
        connection.close()
    if status != 200:
        raise BenchError("Orthanc's /statistics did not answer")
    return int(statistics["CountInstances"])


def run(run: Run) -> None:
    heading("1. Intake throughput against Orthanc")
    count = 40 if run.quick else 160
    rounds = 2 if run.quick else 4
    files = list(radiographs(count + WARM_UP, FILE_MB, per_study=PER_REFERRAL))
    if len({hashlib.sha256(data).digest() for data in files}) != len(files):
        raise BenchError("the generated files are not all distinct")
    average_mb = sum(len(data) for data in files[:count]) / count / MB
    line("files (distinct intra-oral DICOM)", count)
    line("file size", average_mb, "MB")
    line("concurrent clients", CLIENTS)
    line("gunicorn WEB_CONCURRENCY x threads", f"{WEB_CONCURRENCY} x 4")
    line("rounds, taking turns", f"{rounds} of {count // rounds} files each, to each server")
    with ExitStack() as stack:
        targets = [_ours(stack, run, files), _orthanc(stack, run)]
        for target in targets:
            warm = _send_all(target.base, files, target.send, range(count, count + WARM_UP))
            if warm.errors:
                raise BenchError(f"warm-up uploads to {target.name} failed: {warm.errors[:3]}")
        # Both servers receive the same files, round by round, turn about, so that whatever else this
        # shared machine does meanwhile weighs on both alike; dirty pages are flushed before each turn.
        size = count // rounds
        for number in range(rounds):
            for target in targets:
                os.sync()
                batch = range(number * size, (number + 1) * size)
                target.passes.append(_send_all(target.base, files, target.send, batch, target.pids,
                                               target.database_pids))
        stored = _orthanc_instances(targets[1].base)
    ours, orthanc = (target.total() for target in targets)
    for target, total in zip(targets, (ours, orthanc), strict=True):
        if total.errors:
            raise BenchError(f"{len(total.errors)} uploads to the {target.name} failed: {total.errors[:3]}")
    if stored != rounds * size + WARM_UP:
        raise BenchError(f"Orthanc holds {stored} instances, {rounds * size + WARM_UP} were sent")
    line("referral server (PostgreSQL, local folder)", ours.images_per_s, "images/s")
    line("", ours.mb_per_s, "MB/s")
    line("", f"{ours.cpu_ms_per_image:.1f} + {ours.database_cpu_ms_per_image:.1f}",
         "ms CPU per image (gunicorn + PostgreSQL)")
    line("Orthanc (REST POST /instances)", orthanc.images_per_s, "images/s")
    line("", orthanc.mb_per_s, "MB/s")
    line("", orthanc.cpu_ms_per_image, "ms CPU per image")
    run.record(
        intake_files=ours.files,
        intake_file_mb=round(average_mb, 2),
        intake_clients=CLIENTS,
        intake_ours_images_per_s=round(ours.images_per_s, 2),
        intake_ours_mb_per_s=round(ours.mb_per_s, 1),
        intake_orthanc_images_per_s=round(orthanc.images_per_s, 2),
        intake_orthanc_mb_per_s=round(orthanc.mb_per_s, 1),
        intake_ours_cpu_ms_per_image=round(ours.cpu_ms_per_image, 1),
        intake_ours_database_cpu_ms_per_image=round(ours.database_cpu_ms_per_image, 1),
        intake_orthanc_cpu_ms_per_image=round(orthanc.cpu_ms_per_image, 1),
        intake_cpu_per_image_ratio=round(
            (ours.cpu_ms_per_image + ours.database_cpu_ms_per_image) / orthanc.cpu_ms_per_image, 2),
        intake_vs_orthanc_ratio=round(ours.images_per_s / orthanc.images_per_s, 3),
    )
    line("CPU per image, ours / Orthanc's", run.results["intake_cpu_per_image_ratio"])
    run.target("intake_vs_orthanc_ratio", ">=", 1.0)
