"""A bounded load test on loopback: 50 concurrent clients mixing reads and uploads for a fixed time against
the server under its gunicorn configuration. Counts errors, checks afterwards that every acknowledged upload
is stored with the SHA-256 of the bytes sent (and that nothing unacknowledged was stored), and records the
latency percentiles, with a single client running the same mix first as the unloaded baseline."""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from bench.common import BenchError, heading, line, percentile
from bench.context import Run
from bench.dicoms import RadiographFactory
from bench.servers import WEB_CONCURRENCY, fresh_database, platform_admin_token, referral_server
from bench.world import Connection, MultipartUpload, Practice, make_practice

CLIENTS = 50
REFERRALS = 10
# What a client does next, by weight: mostly reads, as the offices and readers look at cases far more often
# than they add images.
MIX = (("read_case", 35), ("list", 20), ("thumbnail", 15), ("content", 10), ("upload", 20))
UPLOAD_SIDE = 512  # 512 x 512 16-bit pixels: about 0.5 MB per upload
MAX_REQUESTS_PER_CLIENT = 20_000


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    acknowledged: list[tuple[str, str]] = field(default_factory=list)  # (image id, SHA-256 of the bytes sent)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def all_latencies(self) -> list[float]:
        return [value for values in self.latencies.values() for value in values]

    def uploads(self) -> int:
        return len(self.latencies["upload"])


class Mix:
    """The shared state of one load phase: the cases, their first images, and the counter of new files."""

    def __init__(self, practice: Practice, images: list[str]) -> None:
        self.practice = practice
        self.images = images
        self.form = MultipartUpload(practice)
        self.factory = RadiographFactory(UPLOAD_SIDE, UPLOAD_SIDE)
        self.numbers = itertools.count(1000)
        self.numbers_lock = threading.Lock()
        self.operations = [name for name, weight in MIX for _ in range(weight)]

    def next_file(self) -> bytes:
        with self.numbers_lock:
            number = next(self.numbers)
        return self.factory.make(number)

    def one(self, user: int, connection: Connection, rng: random.Random, tally: Tally) -> None:
        operation = rng.choice(self.operations)
        practice = self.practice
        referral = rng.choice(practice.referral_ids)
        headers = practice.headers_of(user)
        body: list[bytes | Path] | None = None
        sent_digest = ""
        if operation == "read_case":
            method, path, expected = "GET", f"/api/v1/referrals/{referral}", 200
        elif operation == "list":
            method, path, expected = "GET", "/api/v1/referrals?view=sent&limit=25", 200
        elif operation == "thumbnail":
            method, path, expected = "GET", f"/api/v1/images/{rng.choice(self.images)}/thumbnail", 200
        elif operation == "content":
            method, path, expected = "GET", f"/api/v1/images/{rng.choice(self.images)}/content", 200
        else:
            data = self.next_file()
            sent_digest = hashlib.sha256(data).hexdigest()
            method, path, expected = "POST", f"/api/v1/referrals/{referral}/images", 201
            headers = {**headers, "Content-Type": self.form.content_type}
            body = [self.form.prefix, data, self.form.suffix]
        started = time.perf_counter()
        try:
            status, answer = connection.request(method, path, headers, body)
        except OSError as exc:
            connection.close()
            with tally.lock:
                tally.errors.append(f"{operation}: {type(exc).__name__}: {exc}")
            return
        elapsed = (time.perf_counter() - started) * 1000
        with tally.lock:
            tally.latencies[operation].append(elapsed)
            if status != expected:
                tally.errors.append(f"{operation}: HTTP {status} {answer[:160]!r}")
            elif operation == "upload":
                tally.acknowledged.append((json.loads(answer)["id"], sent_digest))


def _phase(base: str, mix: Mix, clients: int, seconds: float, seed: int) -> tuple[Tally, float]:
    tally = Tally()
    deadline = time.monotonic() + seconds

    def client(number: int) -> None:
        rng = random.Random(seed * 1000 + number)
        connection = Connection(base)
        try:
            for request in range(MAX_REQUESTS_PER_CLIENT):
                if time.monotonic() >= deadline:
                    return
                # Under load each client is one member of staff; the lone baseline client speaks for each
                # in turn, since no one person uploads at the pace of a client that never waits (the
                # per-user upload limit would rightly refuse it).
                user = (number + request * clients) % CLIENTS
                mix.one(user, connection, rng, tally)
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(n,), name=f"load-{n}") for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tally, time.perf_counter() - started


def _verify(base: str, practice: Practice, acknowledged: list[tuple[str, str]]) -> int:
    """How many acknowledged uploads are stored byte for byte (downloaded, hashed, compared)."""
    found = 0
    connection = Connection(base)
    try:
        for image_id, digest in acknowledged:
            status, content = connection.request("GET", f"/api/v1/images/{image_id}/content",
                                                 practice.staff_headers)
            if status == 200 and hashlib.sha256(content).hexdigest() == digest:
                found += 1
    finally:
        connection.close()
    return found


def _stored_images(database_url: str, organization_id: str) -> int:
    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://", 1)) as connection:
        row = connection.execute("SELECT count(*) FROM images WHERE organization_id = %s",
                                 (organization_id,)).fetchone()
    return int(row[0]) if row else 0


def run(run: Run) -> None:
    seconds = 20 if run.quick else 60
    baseline_seconds = 4 if run.quick else 10
    heading(f"6. Mixed load: {CLIENTS} clients for {seconds} s")
    line("mix", ", ".join(f"{name} {weight}%" for name, weight in MIX))
    line("gunicorn WEB_CONCURRENCY x threads", f"{WEB_CONCURRENCY} x 4")
    with fresh_database("load") as database_url:
        admin_token = platform_admin_token(database_url)
        with referral_server(run.workdir, database_url, name="load-server") as server:
            # each client is a member of the practice's staff with a token of their own
            practice = make_practice(server.base, admin_token, referrals=REFERRALS, users=CLIENTS)
            form = MultipartUpload(practice)
            first_images = []
            connection = Connection(server.base)
            factory = RadiographFactory(256, 256)
            try:
                for number, referral in enumerate(practice.referral_ids):
                    status, answer = connection.request(
                        "POST", f"/api/v1/referrals/{referral}/images",
                        {**practice.staff_headers, "Content-Type": form.content_type},
                        [form.prefix, factory.make(number), form.suffix])
                    if status != 201:
                        raise BenchError(f"seeding an image: HTTP {status} {answer[:200]!r}")
                    first_images.append(json.loads(answer)["id"])
            finally:
                connection.close()
            mix = Mix(practice, first_images)
            baseline, _ = _phase(server.base, mix, 1, baseline_seconds, seed=1)
            loaded, elapsed = _phase(server.base, mix, CLIENTS, seconds, seed=2)
            acknowledged = baseline.acknowledged + loaded.acknowledged
            verified = _verify(server.base, practice, acknowledged)
            stored = _stored_images(database_url, practice.organization_id) - len(first_images)
    latencies = loaded.all_latencies
    if not latencies:
        raise BenchError("no request completed under load")
    requests = len(latencies)
    errors = len(loaded.errors) + len(baseline.errors)
    lost = len(acknowledged) - verified
    baseline_p50 = percentile(baseline.all_latencies, 0.5)
    line("requests under load", requests)
    line("requests per second", requests / elapsed)
    line("errors (any non-2xx, refused or reset)", errors)
    for message in (baseline.errors + loaded.errors)[:5]:
        line("   e.g.", message)
    line("uploads acknowledged", len(acknowledged))
    line("   found afterwards with matching SHA-256", verified)
    line("   stored without an acknowledgement", max(0, stored - len(acknowledged)))
    line("latency p50 / p99, all requests", f"{percentile(latencies, 0.5):.1f} / {percentile(latencies, 0.99):.1f}",
         "ms")
    reads = [value for name, values in loaded.latencies.items() if name != "upload" for value in values]
    line("latency p50 / p99, reads", f"{percentile(reads, 0.5):.1f} / {percentile(reads, 0.99):.1f}", "ms")
    if loaded.uploads():
        uploads = loaded.latencies["upload"]
        line("latency p50 / p99, uploads", f"{percentile(uploads, 0.5):.1f} / {percentile(uploads, 0.99):.1f}",
             "ms")
    line("single client, same mix: p50", baseline_p50, "ms")
    run.record(
        load_mixed_clients=CLIENTS,
        load_mixed_duration_s=round(elapsed, 1),
        load_mixed_requests=requests,
        load_mixed_requests_per_s=round(requests / elapsed, 1),
        load_mixed_errors=errors,
        load_mixed_uploads_acknowledged=len(acknowledged),
        load_mixed_uploads_verified=verified,
        load_mixed_lost_uploads=lost,
        load_mixed_unacknowledged_stored=max(0, stored - len(acknowledged)),
        load_mixed_p50_ms=round(percentile(latencies, 0.5), 1),
        load_mixed_p99_ms=round(percentile(latencies, 0.99), 1),
        load_mixed_read_p99_ms=round(percentile(reads, 0.99), 1),
        load_mixed_upload_p99_ms=round(percentile(loaded.latencies["upload"], 0.99), 1) if loaded.uploads() else None,
        load_mixed_single_client_p50_ms=round(baseline_p50, 1),
        load_mixed_p50_vs_single_client_ratio=round(percentile(latencies, 0.5) / baseline_p50, 2),
    )
    line("p50 under load / p50 single client", run.results["load_mixed_p50_vs_single_client_ratio"])
    run.target("load_mixed_errors", "==", 0)
    run.target("load_mixed_lost_uploads", "==", 0)
