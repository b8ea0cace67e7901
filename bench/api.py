"""API overhead: requests/s of ``GET /api/v1/referrals/{id}`` (token checked, access scoped, read audited,
the case with its patient, images and events) against a bare Flask route returning a small JSON document,
both under the project's gunicorn configuration, driven by the same wrk settings in the same run."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field

from bench.common import BenchError, cpu_by_process, cpu_used, heading, line, median
from bench.context import Run
from bench.dicoms import RadiographFactory
from bench.servers import (
    WEB_CONCURRENCY,
    backend_pids,
    bare_flask_server,
    fresh_database,
    platform_admin_token,
    referral_server,
)
from bench.world import Connection, MultipartUpload, Practice, make_practice
from bench.wrk import WrkResult, run_wrk

CONNECTIONS = 8
IMAGES_ON_THE_CASE = 2


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


def _add_images(base: str, practice: Practice, referral: str) -> None:
    form = MultipartUpload(practice)
    factory = RadiographFactory(256, 256)
    connection = Connection(base)
    try:
        for number in range(IMAGES_ON_THE_CASE):
            status, body = connection.request(
                "POST", f"/api/v1/referrals/{referral}/images",
                {**practice.staff_headers, "Content-Type": form.content_type},
                [form.prefix, factory.make(number), form.suffix])
            if status != 201:
                raise BenchError(f"image upload: HTTP {status} {body[:200]!r}")
    finally:
        connection.close()


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
        practice = make_practice(server.base, admin_token, referrals=1)
        referral = practice.referral_ids[0]
        _add_images(server.base, practice, referral)
        ours = Side(f"{server.base}/api/v1/referrals/{referral}", lambda: [server.pid, *server.child.children()],
                    lambda: backend_pids(database_url))
        bare = Side(f"{bare_server.base}/api/v1/referrals/{referral}",
                    lambda: [bare_server.pid, *bare_server.child.children()])
        for side in (ours, bare):  # warm-up: every worker, thread and pooled connection
            run_wrk(side.url, seconds=2, connections=CONNECTIONS, headers=practice.staff_headers)
        for _ in range(rounds):
            for side in (ours, bare):
                side.measure(practice.staff_headers, seconds)
    line(f"GET /api/v1/referrals/{{id}} ({IMAGES_ON_THE_CASE} images)", ours.requests_per_s, "requests/s")
    line("   p50 / p99", f"{ours.p50_ms:.1f} / {ours.p99_ms:.1f}", "ms")
    line("   CPU per request: gunicorn / PostgreSQL",
         f"{ours.cpu_ms(ours.app_cpu):.2f} / {ours.cpu_ms(ours.database_cpu):.2f}", "ms")
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
    )
    run.target("api_vs_bare_flask_ratio", ">=", 0.4)
