"""Memory while uploading: the peak resident memory of the gunicorn worker that receives one 60 MB DICOM,
minus the same worker's resident memory when idle (after a small warm-up upload)."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path

from bench.common import MB, BenchError, heading, line, memory_kib
from bench.context import Run
from bench.dicoms import RadiographFactory, write_large_radiograph
from bench.servers import fresh_database, platform_admin_token, referral_server
from bench.world import Connection, MultipartUpload, make_practice

LARGE_MB = 60


def _reset_peak(pid: int) -> bool:
    """Linux resets VmHWM to the current resident size when "5" is written to clear_refs."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class _Sampler(threading.Thread):
    """Polls VmRSS every few milliseconds: the peak where clear_refs is not allowed, and a cross-check."""

    def __init__(self, pid: int) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.pid = pid
        self.peak_kib = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self.peak_kib = max(self.peak_kib, memory_kib(self.pid, "VmRSS"))
            except (OSError, BenchError):
                return
            time.sleep(0.005)

    def stop(self) -> int:
        self._stop_event.set()
        self.join(timeout=5)
        return self.peak_kib


def run(run: Run) -> None:
    heading("2. Memory while uploading one 60 MB DICOM")
    folder = run.folder("memory")
    large = folder / "large.dcm"
    size = write_large_radiograph(large, LARGE_MB)
    with large.open("rb") as source:
        digest = hashlib.file_digest(source, "sha256").hexdigest()
    small = RadiographFactory(256, 256).make(1)
    line("file", size / MB, "MB")
    line("gunicorn", "1 worker x 4 threads (the worker measured)")
    with fresh_database("memory") as database_url:
        admin_token = platform_admin_token(database_url)
        # One worker, so the process that receives the upload is known.
        with referral_server(run.workdir, database_url, name="memory-server",
                             extra_env={"WEB_CONCURRENCY": "1"}) as server:
            workers = server.child.children()
            if len(workers) != 1:
                raise BenchError(f"expected one gunicorn worker, found {len(workers)}")
            worker = workers[0]
            practice = make_practice(server.base, admin_token, referrals=1)
            form = MultipartUpload(practice)
            headers = {**practice.staff_headers, "Content-Type": form.content_type}
            path = f"/api/v1/referrals/{practice.referral_ids[0]}/images"
            connection = Connection(server.base)
            try:
                # Warm up every code path (imports, first DICOM parse, previews, first store write).
                for _ in range(2):
                    status, body = connection.request("POST", path, headers, [form.prefix, small, form.suffix])
                    if status != 201:
                        raise BenchError(f"warm-up upload: HTTP {status} {body[:200]!r}")
                time.sleep(0.5)
                idle_kib = memory_kib(worker, "VmRSS")
                exact = _reset_peak(worker)
                sampler = _Sampler(worker)
                sampler.start()
                started = time.perf_counter()
                status, body = connection.request("POST", path, headers, [form.prefix, large, form.suffix])
                seconds = time.perf_counter() - started
                sampled_peak_kib = sampler.stop()
            finally:
                connection.close()
            if status != 201:
                raise BenchError(f"60 MB upload: HTTP {status} {body[:200]!r}")
            answer = json.loads(body)
            if answer["size"] != size or answer["sha256"] != digest:
                raise BenchError("the stored image differs from the file sent")
            peak_kib = memory_kib(worker, "VmHWM") if exact else sampled_peak_kib
    growth_mib = max(0, peak_kib - idle_kib) / 1024
    line("idle resident memory of the worker", idle_kib / 1024, "MiB")
    line("peak resident memory during the upload", peak_kib / 1024, "MiB")
    line("peak measured by", "VmHWM after clear_refs" if exact else "VmRSS sampled every 5 ms")
    line("upload time", seconds, "s")
    run.record(
        upload_memory_file_mb=round(size / MB, 1),
        upload_memory_idle_mib=round(idle_kib / 1024, 1),
        upload_memory_peak_mib=round(peak_kib / 1024, 1),
        upload_memory_growth_mb=round(growth_mib, 1),
        upload_memory_growth_vs_file_ratio=round(growth_mib * 1024 * 1024 / size, 3),
        upload_memory_seconds=round(seconds, 2),
    )
    line("growth / file size", run.results["upload_memory_growth_vs_file_ratio"])
    run.target("upload_memory_growth_mb", "<=", 20)
