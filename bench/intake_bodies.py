"""Intake by kind of body and store: the same distinct DICOMs, 4 clients, sent to the referral server as a
multipart form and as a raw ``application/dicom`` body (the fields in the query), to three servers that differ
only in where the bytes go, and to Orthanc's ``POST /instances``, all taking turns in the same run:

- local, linked: the spool folder (UPLOAD_TMP_DIR) beside the local-folder store, on its filesystem, so the
  spooled file becomes the stored original without a copy;
- local, copied: the spool folder on another filesystem (/dev/shm, a tmpfs), so the store copies the spooled
  bytes as before (the tmpfs spool makes the spooling itself a little cheaper than on disk: if anything this
  favours the copy);
- S3: moto's S3 server (its CPU printed, not counted).

Figures (``intake_bodies_*``): CPU per image of each variant (gunicorn + PostgreSQL) at 4 and 0.5 MB, Orthanc's,
and the ratios raw ÷ multipart and linked ÷ copied. Not a target of its own: it tells which of the two changes
of issue 19, item 3 helps.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.common import BenchError, cpu_by_process, cpu_used, heading, line
from bench.context import Run
from bench.intake import (
    CLIENTS,
    PER_REFERRAL,
    Sender,
    Target,
    announce_sizes,
    checked_passes,
    distinct_files,
    orthanc_target,
)
from bench.servers import (
    Server,
    backend_pids,
    fresh_database,
    moto_server,
    platform_admin_token,
    referral_server,
    wait_for_previews,
)
from bench.world import CAPTURED_AT, Connection, MultipartUpload, make_practice

# File size in MB: (files measured, rounds taking turns, warm-up files), full run and QUICK=1.
SIZES: dict[float, tuple[int, int, int]] = {4.0: (96, 8, 8), 0.5: (160, 8, 8)}
QUICK_SIZES: dict[float, tuple[int, int, int]] = {4.0: (32, 2, 4), 0.5: (48, 2, 4)}
BODIES = ("multipart", "raw")


def _targets(server: Server, database_url: str, store: str, batches: list[int],
             pids: Callable[[], list[int]]) -> list[Target]:
    """One target per kind of body on one server: each with a practice, referrals and CLIENTS staff members of
    its own for every batch (uploads are limited per user and minute)."""
    admin_token = platform_admin_token(database_url)
    per_batch = [-(-count // PER_REFERRAL) for count in batches]
    targets = []
    for body in BODIES:
        practice = make_practice(server.base, admin_token, referrals=sum(per_batch),
                                 users=CLIENTS * len(batches))
        form = MultipartUpload(practice)
        query = "?" + urlencode({"kind": "periapical", "teeth": "19", "reason": "Pain to cold",
                                 "captured_at": CAPTURED_AT, "captured_by_provider_id": practice.hygienist_id,
                                 "filename": "radiograph.dcm"})
        content_type = form.content_type if body == "multipart" else "application/dicom"
        headers = [{**practice.headers_of(n), "Content-Type": content_type}
                   for n in range(CLIENTS * len(batches))]
        digests: dict[int, list[str]] = {}

        def sender(batch: int, files: list[bytes], body: str = body, practice: Any = practice, form: Any = form,
                   query: str = query, headers: list[dict[str, str]] = headers,
                   digests: dict[int, list[str]] = digests) -> Sender:
            first_referral = sum(per_batch[:batch])
            if batch not in digests:  # hashed once, outside the timed passes
                digests[batch] = [hashlib.sha256(data).hexdigest() for data in files]
            expected = digests[batch]

            def send(client: int, connection: Connection, number: int, data: bytes) -> str | None:
                referral = practice.referral_ids[first_referral + number // PER_REFERRAL]
                path = f"/api/v1/referrals/{referral}/images"
                if body == "multipart":
                    status, answer = connection.request("POST", path, headers[batch * CLIENTS + client],
                                                        [form.prefix, data, form.suffix])
                else:
                    status, answer = connection.request("POST", path + query, headers[batch * CLIENTS + client],
                                                        [data])
                if status != 201:
                    return f"file {number}: HTTP {status} {answer[:200]!r}"
                if json.loads(answer)["sha256"] != expected[number]:
                    return f"file {number}: the server's SHA-256 differs from the file's"
                return None
            return send

        targets.append(Target(f"{store}, {body}", server.base, sender, pids, lambda: backend_pids(database_url),
                              lambda: wait_for_previews(database_url)))
    return targets


def _other_filesystem(than: Path) -> Path:
    shm = Path("/dev/shm")  # noqa: S108 - a folder of our own is made inside it (mkdtemp)
    if not shm.is_dir() or not os.access(shm, os.W_OK) or os.stat(shm).st_dev == os.stat(than).st_dev:
        raise BenchError("the copied variant needs a writable /dev/shm on another filesystem than the work folder")
    return shm


def run(run: Run) -> None:
    heading("1b. Intake by kind of body (multipart, raw) and store (local linked, local copied, S3)")
    sizes = QUICK_SIZES if run.quick else SIZES
    batches = announce_sizes(sizes)
    moto_cpu: list[float] = []
    with ExitStack() as stack:
        spool_elsewhere = stack.enter_context(_temporary_folder(_other_filesystem(run.workdir)))
        s3 = stack.enter_context(moto_server(run.workdir))
        targets: list[Target] = []
        for store, extra in (("local linked", {}), ("local copied", {"UPLOAD_TMP_DIR": str(spool_elsewhere)}),
                             ("S3", s3.env())):
            database_url = stack.enter_context(fresh_database("intake_bodies"))
            server = stack.enter_context(referral_server(run.workdir, database_url,
                                                         name=f"bodies-{store.replace(' ', '-')}",
                                                         extra_env=extra))

            def pids(server: Server = server) -> list[int]:
                return [server.pid, *server.child.children()]
            targets.extend(_targets(server, database_url, store, batches, pids))
        orthanc = orthanc_target(stack, run, "orthanc-bodies")
        targets.append(orthanc)
        for batch, (megabytes, (count, rounds, warm)) in enumerate(sizes.items()):
            files = distinct_files(count + warm, megabytes)
            for target in targets:
                target.warm(batch, files, range(count, count + warm))
            size = count // rounds
            for number in range(rounds):
                for target in targets:
                    os.sync()
                    before = cpu_by_process([s3.pid])
                    target.measure(batch, files, range(number * size, (number + 1) * size))
                    if target.name.startswith("S3"):
                        moto_cpu.append(cpu_used(before, cpu_by_process([s3.pid])))
            del files

    table: list[dict[str, Any]] = []
    for batch, megabytes in enumerate(sizes):
        passes = checked_passes(targets, batch, megabytes)
        theirs = passes[orthanc.name].cpu_ms_per_image
        line(f"{megabytes:g} MB, ms CPU per image (gunicorn + PostgreSQL)", f"Orthanc {theirs:.1f}")
        row: dict[str, Any] = {"nominal_mb": megabytes, "images": passes[orthanc.name].files,
                               "orthanc_cpu_ms_per_image": round(theirs, 1)}
        for name, result in passes.items():
            if name == orthanc.name:
                continue
            ours = result.cpu_ms_per_image + result.database_cpu_ms_per_image
            key = name.replace(", ", "_").replace(" ", "_")
            row[f"{key}_cpu_ms_per_image"] = round(ours, 1)
            row[f"{key}_images_per_s"] = round(result.images_per_s, 2)
            line(f"   {name}", f"{result.cpu_ms_per_image:.1f} + {result.database_cpu_ms_per_image:.1f} = {ours:.1f}",
                 f"Orthanc's / ours {theirs / ours:.3f}; {result.images_per_s:.1f} images/s")
        for store in ("local_linked", "local_copied", "S3"):
            row[f"{store}_raw_over_multipart"] = round(row[f"{store}_raw_cpu_ms_per_image"]
                                                       / row[f"{store}_multipart_cpu_ms_per_image"], 3)
        for body in BODIES:
            row[f"{body}_linked_over_copied"] = round(row[f"local_linked_{body}_cpu_ms_per_image"]
                                                      / row[f"local_copied_{body}_cpu_ms_per_image"], 3)
        line("   CPU raw ÷ multipart", ", ".join(f"{store} {row[f'{store}_raw_over_multipart']}"
                                                 for store in ("local_linked", "local_copied", "S3")))
        line("   CPU linked ÷ copied", ", ".join(f"{body} {row[f'{body}_linked_over_copied']}" for body in BODIES))
        table.append(row)
    line("moto's S3 server, not counted", f"{sum(moto_cpu):.1f}", "s CPU in all")
    run.record(intake_bodies_table=table)


@contextmanager
def _temporary_folder(parent: Path) -> Iterator[Path]:
    """A folder of its own under ``parent``, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="referral-bench-spool-", dir=parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
