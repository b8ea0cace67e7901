"""API overhead: requests/s of ``GET /api/v1/referrals/{id}`` (token checked, access scoped, read audited,
the case with its patient, images and events) against a bare Flask route returning a small JSON document,
both under the project's gunicorn configuration, driven by the same wrk settings in the same run; and the CPU
per read of cases with 2, 20 and 100 images, ours against the same-work floor (bench/floor_app.py)."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from bench.common import BenchError, cpu_by_process, cpu_used, heading, line, median
from bench.context import Run
from bench.dicoms import RadiographFactory
from bench.servers import (
    WEB_CONCURRENCY,
    backend_pids,
    bare_flask_server,
    floor_server,
    fresh_database,
    platform_admin_token,
    referral_server,
)
from bench.world import Connection, MultipartUpload, Practice, make_practice
from bench.wrk import WrkResult, run_wrk

CONNECTIONS = 8
IMAGES_ON_THE_CASE = 2
# The large case of read_growth_100_vs_2_images: CPU per read at this many images / at IMAGES_ON_THE_CASE.
IMAGES_ON_THE_LARGE_CASE = 100
# The read cost table: cases of these many images, read from ours and from the floor.
READ_TABLE_IMAGES = (IMAGES_ON_THE_CASE, 20, IMAGES_ON_THE_LARGE_CASE)


@dataclass
class Side:
    """One server of the comparison and what its rounds measured."""

    url: str
    app_pids: Callable[[], list[int]]
    database_pids: Callable[[], list[int]] = list
    rounds: list[WrkResult] = field(default_factory=list)
    app_cpu: float = 0.0
    database_cpu: float = 0.0

    def measure(self, headers: dict[str, str], seconds: int) -> None:
        before_app, before_database = cpu_by_process(self.app_pids()), cpu_by_process(self.database_pids())
        result = run_wrk(self.url, seconds=seconds, connections=CONNECTIONS, headers=headers)
        self.app_cpu += cpu_used(before_app, cpu_by_process(self.app_pids()))
        self.database_cpu += cpu_used(before_database, cpu_by_process(self.database_pids()))
        if result.non_2xx or result.socket_errors:
            raise BenchError(f"{self.url}: {result.non_2xx} non-2xx answers, {result.socket_errors} socket errors")
        self.rounds.append(result)

    @property
    def requests(self) -> int:
        return sum(result.requests for result in self.rounds)

    @property
    def requests_per_s(self) -> float:
        return self.requests / sum(result.requests / result.requests_per_s for result in self.rounds)

    @property
    def p50_ms(self) -> float:
        return median([result.p50_ms for result in self.rounds])

    @property
    def p99_ms(self) -> float:
        return max(result.p99_ms for result in self.rounds)

    def cpu_ms(self, seconds: float) -> float:
        return seconds * 1000 / max(1, self.requests)

    @property
    def total_cpu_ms(self) -> float:
        """CPU per request, app and PostgreSQL together."""
        return self.cpu_ms(self.app_cpu + self.database_cpu)


def _add_images(base: str, practice: Practice, referral: str, count: int = IMAGES_ON_THE_CASE, user: int = 0) -> None:
    """``count`` small radiographs on the case, sent by the practice's ``user``-th member of staff (uploads are
    limited per user and minute)."""
    form = MultipartUpload(practice)
    factory = RadiographFactory(256, 256)
    connection = Connection(base)
    try:
        for number in range(count):
            status, body = connection.request(
                "POST", f"/api/v1/referrals/{referral}/images",
                {**practice.headers_of(user), "Content-Type": form.content_type},
                [form.prefix, factory.make(number), form.suffix])
            if status != 201:
                raise BenchError(f"image upload: HTTP {status} {body[:200]!r}")
    finally:
        connection.close()


def _read_row(images: int, ours: Side, floor: Side) -> dict[str, Any]:
    """A row of the read cost table: CPU per read of a case with ``images`` images, ours and the floor's."""
    return {
        "images": images,
        "ours_cpu_ms_per_read": round(ours.cpu_ms(ours.app_cpu), 3),
        "ours_database_cpu_ms_per_read": round(ours.cpu_ms(ours.database_cpu), 3),
        "floor_cpu_ms_per_read": round(floor.cpu_ms(floor.app_cpu), 3),
        "floor_database_cpu_ms_per_read": round(floor.cpu_ms(floor.database_cpu), 3),
        "floor_vs_ours_cpu_ratio": round(floor.total_cpu_ms / ours.total_cpu_ms, 3),
    }


def run(run: Run) -> None:
    heading("3. API overhead against bare Flask")
    seconds, rounds = (3, 2) if run.quick else (5, 4)
    line("wrk", f"1 thread, {CONNECTIONS} connections; {rounds} rounds of {seconds} s per server, taking turns")
    line("gunicorn WEB_CONCURRENCY x threads", f"{WEB_CONCURRENCY} x 4")
    with ExitStack() as stack:
        database_url = stack.enter_context(fresh_database("api"))
        admin_token = platform_admin_token(database_url)
        server = stack.enter_context(referral_server(run.workdir, database_url, name="api-server"))
        bare_server = stack.enter_context(bare_flask_server(run.workdir))
        floor_server_ = stack.enter_context(floor_server(run.workdir, database_url))
        practice = make_practice(server.base, admin_token, referrals=len(READ_TABLE_IMAGES),
                                 users=len(READ_TABLE_IMAGES))
        cases = dict(zip(READ_TABLE_IMAGES, practice.referral_ids, strict=True))
        for user, (images, case) in enumerate(cases.items()):
            _add_images(server.base, practice, case, images, user)
        ours_by_images = {images: Side(f"{server.base}/api/v1/referrals/{case}",
                                       lambda: [server.pid, *server.child.children()],
                                       lambda: backend_pids(database_url)) for images, case in cases.items()}
        floor_by_images = {images: Side(f"{floor_server_.base}/api/v1/referrals/{case}",
                                        lambda: [floor_server_.pid, *floor_server_.child.children()],
                                        lambda: backend_pids(database_url)) for images, case in cases.items()}
        ours, ours_large = ours_by_images[IMAGES_ON_THE_CASE], ours_by_images[IMAGES_ON_THE_LARGE_CASE]
        floor = floor_by_images[IMAGES_ON_THE_CASE]
        bare = Side(f"{bare_server.base}/api/v1/referrals/{cases[IMAGES_ON_THE_CASE]}",
                    lambda: [bare_server.pid, *bare_server.child.children()])
        sides = (*ours_by_images.values(), *floor_by_images.values(), bare)
        for side in sides:  # warm-up: every worker, thread and pooled connection
            run_wrk(side.url, seconds=2, connections=CONNECTIONS, headers=practice.staff_headers)
        load_averages = []
        for _ in range(rounds):
            for side in sides:
                side.measure(practice.staff_headers, seconds)
                load_averages.append(os.getloadavg()[0])
    line(f"GET /api/v1/referrals/{{id}} ({IMAGES_ON_THE_CASE} images)", ours.requests_per_s, "requests/s")
    line("   p50 / p99", f"{ours.p50_ms:.1f} / {ours.p99_ms:.1f}", "ms")
    line("   CPU per request: gunicorn / PostgreSQL",
         f"{ours.cpu_ms(ours.app_cpu):.2f} / {ours.cpu_ms(ours.database_cpu):.2f}", "ms")
    line(f"   same read, {IMAGES_ON_THE_LARGE_CASE} images", ours_large.requests_per_s, "requests/s")
    line("   CPU per request: gunicorn / PostgreSQL",
         f"{ours_large.cpu_ms(ours_large.app_cpu):.2f} / {ours_large.cpu_ms(ours_large.database_cpu):.2f}", "ms")
    line("same-work floor (plain psycopg, one statement)", floor.requests_per_s, "requests/s")
    line("   CPU per request: gunicorn / PostgreSQL",
         f"{floor.cpu_ms(floor.app_cpu):.2f} / {floor.cpu_ms(floor.database_cpu):.2f}", "ms")
    table = [_read_row(images, ours_by_images[images], floor_by_images[images]) for images in READ_TABLE_IMAGES]
    line("read cost, CPU ms per read (gunicorn + PostgreSQL)", "")
    line("   images   ours               floor             floor / ours", "")
    for row in table:
        ours_cpu = f"{row['ours_cpu_ms_per_read']:>6.2f} + {row['ours_database_cpu_ms_per_read']:<6.2f}"
        floor_cpu = f"{row['floor_cpu_ms_per_read']:>6.2f} + {row['floor_database_cpu_ms_per_read']:<6.2f}"
        line(f"   {row['images']:>6}   {ours_cpu}    {floor_cpu}   {row['floor_vs_ours_cpu_ratio']:.3f}", "")
    line("bare Flask JSON route", bare.requests_per_s, "requests/s")
    line("   p50 / p99", f"{bare.p50_ms:.1f} / {bare.p99_ms:.1f}", "ms")
    line("   CPU per request: gunicorn", bare.cpu_ms(bare.app_cpu), "ms")
    run.record(
        api_requests_per_s=round(ours.requests_per_s, 1),
        api_p50_ms=round(ours.p50_ms, 2),
        api_p99_ms=round(ours.p99_ms, 2),
        api_cpu_ms_per_request=round(ours.cpu_ms(ours.app_cpu), 3),
        api_database_cpu_ms_per_request=round(ours.cpu_ms(ours.database_cpu), 3),
        bare_flask_requests_per_s=round(bare.requests_per_s, 1),
        bare_flask_p50_ms=round(bare.p50_ms, 2),
        bare_flask_p99_ms=round(bare.p99_ms, 2),
        bare_flask_cpu_ms_per_request=round(bare.cpu_ms(bare.app_cpu), 3),
        api_vs_bare_flask_ratio=round(ours.requests_per_s / bare.requests_per_s, 3),
        api_large_case_requests_per_s=round(ours_large.requests_per_s, 1),
        api_large_case_cpu_ms_per_request=round(ours_large.cpu_ms(ours_large.app_cpu), 3),
        api_large_case_database_cpu_ms_per_request=round(ours_large.cpu_ms(ours_large.database_cpu), 3),
        # app CPU per read of the 100-image case over the 2-image case, measured in the same alternating rounds
        read_growth_100_vs_2_images=round(ours_large.cpu_ms(ours_large.app_cpu) / ours.cpu_ms(ours.app_cpu), 3),
        api_load_average_during=round(max(load_averages), 2),
        floor_requests_per_s=round(floor.requests_per_s, 1),
        floor_cpu_ms_per_request=round(floor.cpu_ms(floor.app_cpu), 3),
        floor_database_cpu_ms_per_request=round(floor.cpu_ms(floor.database_cpu), 3),
        # CPU per read, app and PostgreSQL together: the floor's over ours (1.0 would be as cheap as the floor)
        read_vs_floor_cpu_ratio=round(floor.total_cpu_ms / ours.total_cpu_ms, 3),
        read_cost_table=table,
    )
    line("load average (1 min) during the rounds, highest", max(load_averages))
    run.target("api_vs_bare_flask_ratio", ">=", 0.2)
    run.target("read_growth_100_vs_2_images", "<=", 2.0)
    run.target("read_vs_floor_cpu_ratio", ">=", 0.5)
