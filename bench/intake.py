"""Intake throughput and cost against Orthanc: the same distinct intra-oral radiographs, 4 concurrent clients,
uploaded to the referral server (gunicorn, PostgreSQL, local-folder storage) and to Orthanc's REST
``POST /instances``, taking turns in the same run, at 0.5, 4, 16 and 60 MB a file.

The 4 MB files give ``intake_vs_orthanc_ratio``, the 0.5 MB files ``intake_small_vs_orthanc_ratio`` (images/s,
ours over Orthanc's); every size gives a row of the cost table (CPU per image and per MB, read from /proc).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

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
    wait_for_previews,
)
from bench.world import Connection, MultipartUpload, make_practice

CLIENTS = 4
PER_REFERRAL = 8
HEADLINE_MB = 4.0
SMALL_MB = 0.5
# File size in MB: (files measured, rounds taking turns, warm-up files), full run and QUICK=1.
SIZES: dict[float, tuple[int, int, int]] = {0.5: (160, 4, 8), 4.0: (160, 4, 8), 16.0: (32, 4, 4), 60.0: (12, 3, 4)}
QUICK_SIZES: dict[float, tuple[int, int, int]] = {0.5: (40, 2, 8), 4.0: (40, 2, 8), 16.0: (8, 2, 4),
                                                  60.0: (4, 1, 4)}

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
    settle_seconds: float = 0.0  # after the last answer, until the previews drawn after their answer were done

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

    @property
    def file_mb(self) -> float:
        return self.bytes / MB / self.files


def send_all(base: str, files: list[bytes], send: Sender, numbers: range,
             server_pids: Callable[[], list[int]] = list, database_pids: Callable[[], list[int]] = list,
             settle: Callable[[], float] | None = None) -> Pass:
    """Upload every file of ``numbers`` with CLIENTS threads taking the next file as they finish one. The
    seconds are until the last answer; ``settle`` (waiting for work the server does after its answers) runs
    before the CPU is read, so that work is counted but not timed."""
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
    settle_seconds = settle() if settle is not None else 0.0
    cpu = cpu_used(cpu_before, cpu_by_process(server_pids()))
    database_cpu = cpu_used(database_before, cpu_by_process(database_pids()))
    return Pass(seconds, len(numbers), sum(len(files[n]) for n in numbers), errors, cpu, database_cpu,
                settle_seconds)


def total(passes: list[Pass]) -> Pass:
    return Pass(
        seconds=sum(p.seconds for p in passes),
        files=sum(p.files for p in passes),
        bytes=sum(p.bytes for p in passes),
        errors=[error for p in passes for error in p.errors],
        cpu_seconds=sum(p.cpu_seconds for p in passes),
        database_cpu_seconds=sum(p.database_cpu_seconds for p in passes),
        settle_seconds=sum(p.settle_seconds for p in passes),
    )


@dataclass
class Target:
    """One server under test: how to send it a file of a batch (one batch per file size), whose CPU to count,
    and what each batch measured."""

    name: str
    base: str
    sender: Callable[[int, list[bytes]], Sender]
    pids: Callable[[], list[int]]
    database_pids: Callable[[], list[int]] = list
    settle: Callable[[], float] | None = None
    passes: dict[int, list[Pass]] = field(default_factory=dict)

    def measure(self, batch: int, files: list[bytes], numbers: range) -> Pass:
        result = send_all(self.base, files, self.sender(batch, files), numbers, self.pids, self.database_pids,
                          self.settle)
        self.passes.setdefault(batch, []).append(result)
        return result

    def warm(self, batch: int, files: list[bytes], numbers: range) -> None:
        result = send_all(self.base, files, self.sender(batch, files), numbers, settle=self.settle)
        if result.errors:
            raise BenchError(f"warm-up uploads to {self.name} failed: {result.errors[:3]}")


def _ours(stack: ExitStack, run: Run, batches: list[int]) -> Target:
    """``batches`` holds the number of files (warm-up included) of each batch: each batch has referrals and
    CLIENTS members of staff of its own (uploads are limited per user and minute)."""
    database_url = stack.enter_context(fresh_database("intake"))
    admin_token = platform_admin_token(database_url)
    server = stack.enter_context(referral_server(run.workdir, database_url, name="intake-server"))
    per_batch = [-(-count // PER_REFERRAL) for count in batches]
    practice = make_practice(server.base, admin_token, referrals=sum(per_batch), users=CLIENTS * len(batches))
    form = MultipartUpload(practice)
    headers = [{**practice.headers_of(n), "Content-Type": form.content_type} for n in range(CLIENTS * len(batches))]

    digests: dict[int, list[str]] = {}

    def sender(batch: int, files: list[bytes]) -> Sender:
        first_referral = sum(per_batch[:batch])
        if batch not in digests:  # hashed once, outside the timed passes
            digests[batch] = [hashlib.sha256(data).hexdigest() for data in files]
        expected = digests[batch]

        def send(client: int, connection: Connection, number: int, data: bytes) -> str | None:
            referral = practice.referral_ids[first_referral + number // PER_REFERRAL]
            status, body = connection.request("POST", f"/api/v1/referrals/{referral}/images",
                                              headers[batch * CLIENTS + client], [form.prefix, data, form.suffix])
            if status != 201:
                return f"file {number}: HTTP {status} {body[:200]!r}"
            if json.loads(body)["sha256"] != expected[number]:
                return f"file {number}: the server's SHA-256 differs from the file's"
            return None
        return send

    return Target("referral server", server.base, sender, lambda: [server.pid, *server.child.children()],
                  lambda: backend_pids(database_url), lambda: wait_for_previews(database_url))


def orthanc_target(stack: ExitStack, run: Run, name: str = "orthanc") -> Target:
    server = stack.enter_context(orthanc_server(run.workdir, name))
    headers = {"Content-Type": "application/dicom"}

    def send(_client: int, connection: Connection, number: int, data: bytes) -> str | None:
        status, body = connection.request("POST", "/instances", headers, [data])
        if status != 200:
            return f"file {number}: HTTP {status} {body[:200]!r}"
        answer = json.loads(body)
        if answer.get("Status") != "Success":
            return f"file {number}: Orthanc answered {answer.get('Status')}"
        return None

    return Target("Orthanc", server.base, lambda _batch, _files: send, lambda: [server.pid])


def orthanc_instances(base: str) -> int:
    connection = Connection(base)
    try:
        status, statistics = connection.json("GET", "/statistics", {})
    finally:
        connection.close()
    if status != 200:
        raise BenchError("Orthanc's /statistics did not answer")
    return int(statistics["CountInstances"])


def distinct_files(count: int, megabytes: float) -> list[bytes]:
    files = list(radiographs(count, megabytes, per_study=PER_REFERRAL))
    if len({hashlib.sha256(data).digest() for data in files}) != len(files):
        raise BenchError("the generated files are not all distinct")
    return files


def take_turns(targets: list[Target], batch: int, files: list[bytes], count: int, rounds: int) -> None:
    """Both servers receive the same files, round by round, turn about, so that whatever else this shared
    machine does meanwhile weighs on both alike; dirty pages are flushed before each turn."""
    size = count // rounds
    for number in range(rounds):
        for target in targets:
            os.sync()
            target.measure(batch, files, range(number * size, (number + 1) * size))


def announce_sizes(sizes: dict[float, tuple[int, int, int]]) -> list[int]:
    """Print the files each size sends; the number of files of each batch (one batch a size), warm-up included."""
    line("files per size (distinct intra-oral DICOM)",
         ", ".join(f"{mb:g} MB: {count} in {rounds} rounds" for mb, (count, rounds, _) in sizes.items()))
    return [count + warm for count, _, warm in sizes.values()]


def checked_passes(targets: list[Target], batch: int, megabytes: float) -> dict[str, Pass]:
    """Each target's passes of a batch in one, by the target's name; any failed upload ends the benchmark."""
    passes = {target.name: total(target.passes[batch]) for target in targets}
    for name, result in passes.items():
        if result.errors:
            raise BenchError(f"{len(result.errors)} {megabytes:g} MB uploads to {name} failed: {result.errors[:3]}")
    return passes


def cost_row(megabytes: float, ours: Pass, orthanc: Pass) -> dict[str, Any]:
    ours_ms = ours.cpu_ms_per_image + ours.database_cpu_ms_per_image
    return {
        "file_mb": round(ours.file_mb, 2),
        "nominal_mb": megabytes,
        "images": ours.files,
        "ours_images_per_s": round(ours.images_per_s, 2),
        "ours_cpu_ms_per_image": round(ours.cpu_ms_per_image, 1),
        "ours_database_cpu_ms_per_image": round(ours.database_cpu_ms_per_image, 1),
        "ours_cpu_ms_per_mb": round(ours_ms / ours.file_mb, 2),
        "orthanc_images_per_s": round(orthanc.images_per_s, 2),
        "orthanc_cpu_ms_per_image": round(orthanc.cpu_ms_per_image, 1),
        "orthanc_cpu_ms_per_mb": round(orthanc.cpu_ms_per_image / orthanc.file_mb, 2),
    }


def run(run: Run) -> None:
    heading("1. Intake throughput and cost against Orthanc")
    sizes = QUICK_SIZES if run.quick else SIZES
    line("concurrent clients", CLIENTS)
    line("gunicorn WEB_CONCURRENCY x threads", f"{WEB_CONCURRENCY} x 4")
    line("files per size (distinct intra-oral DICOM)",
         ", ".join(f"{mb:g} MB: {count} in {rounds} rounds" for mb, (count, rounds, _) in sizes.items()))
    sent_to_orthanc = 0
    with ExitStack() as stack:
        targets = [_ours(stack, run, [count + warm for count, _, warm in sizes.values()]), orthanc_target(stack, run)]
        for batch, (megabytes, (count, rounds, warm)) in enumerate(sizes.items()):
            files = distinct_files(count + warm, megabytes)
            for target in targets:
                target.warm(batch, files, range(count, count + warm))
            take_turns(targets, batch, files, count, rounds)
            sent_to_orthanc += (count // rounds) * rounds + warm
            del files
        stored = orthanc_instances(targets[1].base)
    if stored != sent_to_orthanc:
        raise BenchError(f"Orthanc holds {stored} instances, {sent_to_orthanc} were sent")
    totals: dict[float, tuple[Pass, Pass]] = {}
    for batch, megabytes in enumerate(sizes):
        ours, orthanc = (total(target.passes[batch]) for target in targets)
        for target, result in zip(targets, (ours, orthanc), strict=True):
            if result.errors:
                raise BenchError(f"{len(result.errors)} {megabytes:g} MB uploads to the {target.name} failed: "
                                 f"{result.errors[:3]}")
        totals[megabytes] = (ours, orthanc)

    ours, orthanc = totals[HEADLINE_MB]
    line(f"{HEADLINE_MB:g} MB files: referral server (PostgreSQL, local folder)", ours.images_per_s, "images/s")
    line("", ours.mb_per_s, "MB/s")
    line("", f"{ours.cpu_ms_per_image:.1f} + {ours.database_cpu_ms_per_image:.1f}",
         "ms CPU per image (gunicorn + PostgreSQL)")
    line("Orthanc (REST POST /instances)", orthanc.images_per_s, "images/s")
    line("", orthanc.mb_per_s, "MB/s")
    line("", orthanc.cpu_ms_per_image, "ms CPU per image")
    small, small_orthanc = totals[SMALL_MB]
    line(f"{SMALL_MB:g} MB files: referral server", small.images_per_s, "images/s")
    line("Orthanc", small_orthanc.images_per_s, "images/s")
    table = [cost_row(megabytes, *pair) for megabytes, pair in totals.items()]
    line("cost per image and per MB", "ours = gunicorn + PostgreSQL CPU; Orthanc's own CPU")
    line("   MB    images   ours ms/image   ours ms/MB   Orthanc ms/image   Orthanc ms/MB", "")
    for row in table:
        ours_image = row["ours_cpu_ms_per_image"] + row["ours_database_cpu_ms_per_image"]
        line(f"   {row['file_mb']:<6g}{row['images']:>6}   {ours_image:>13.1f}   {row['ours_cpu_ms_per_mb']:>10.2f}"
             f"   {row['orthanc_cpu_ms_per_image']:>16.1f}   {row['orthanc_cpu_ms_per_mb']:>13.2f}", "")
    line("waited after the answers for previews drawn after them",
         f"{sum(pair[0].settle_seconds for pair in totals.values()):.1f}", "s (CPU counted, time not)")
    run.record(
        intake_files=ours.files,
        intake_file_mb=round(ours.file_mb, 2),
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
        intake_small_files=small.files,
        intake_small_file_mb=round(small.file_mb, 2),
        intake_small_ours_images_per_s=round(small.images_per_s, 2),
        intake_small_orthanc_images_per_s=round(small_orthanc.images_per_s, 2),
        intake_small_vs_orthanc_ratio=round(small.images_per_s / small_orthanc.images_per_s, 3),
        intake_cost_table=table,
    )
    line(f"CPU per {HEADLINE_MB:g} MB image, ours / Orthanc's", run.results["intake_cpu_per_image_ratio"])
    run.target("intake_vs_orthanc_ratio", ">=", 0.7)
    run.target("intake_small_vs_orthanc_ratio", ">=", 0.5)
