"""``python -m bench [--quick] [--only NAME,...]``: run the benchmarks, print every figure with its ratio, and
write ``bench/results/latest.json`` and ``bench/results/YYYY-MM-DD.json``.

QUICK=1 in the environment is the same as ``--quick``: smaller inputs, the whole run in a few minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any

from bench import api, claims, direct, inbox, intake, intake_bodies, intake_worker, load, memory
from bench.common import ROOT, heading
from bench.context import Run
from bench.servers import WEB_CONCURRENCY, orthanc_version, postgres_available, postgres_version

RESULTS = ROOT / "bench" / "results"
BENCHMARKS: dict[str, Callable[[Run], None]] = {
    "intake": intake.run,
    "intake_bodies": intake_bodies.run,
    "intake_worker": intake_worker.run,
    "direct_intake": direct.run,
    "memory": memory.run,
    "api": api.run,
    "inbox": inbox.run,
    "claims": claims.run,
    "load_mixed": load.run,
}


def _cpu_model() -> str:
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                return text.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for text in Path("/proc/meminfo").read_text().splitlines():
            if text.startswith("MemTotal:"):
                return round(int(text.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _wrk_version() -> str | None:
    if shutil.which("wrk") is None:
        return None
    output = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=10, check=False)
    words = (output.stdout or output.stderr).split()
    return words[1] if len(words) > 1 else None


def machine() -> dict[str, Any]:
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgres": postgres_version(),
        "orthanc": orthanc_version(),
        "wrk": _wrk_version(),
        "gunicorn": metadata.version("gunicorn"),
        "web_concurrency": int(WEB_CONCURRENCY),
        "gunicorn_threads": int(os.environ.get("GUNICORN_THREADS", "4")),
        "load_average_at_start": [round(value, 2) for value in os.getloadavg()],
    }


def _stop_on_signal(signum: int, _frame: FrameType | None) -> None:
    # Turned into an exception so that every server's context manager stops it on the way out.
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", default=os.environ.get("QUICK", "") not in ("", "0"),
                        help="smaller inputs; a few minutes in all (also QUICK=1)")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    parser.add_argument("--keep", action="store_true", help="keep the working folder (server logs) afterwards")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()] or list(BENCHMARKS)
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    problem = postgres_available()
    if problem:
        print(f"error: {problem}; the benchmarks need it", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _stop_on_signal)

    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="referral-bench-"))
    run = Run(quick=args.quick, workdir=workdir)
    facts = machine()
    print(f"Benchmarks ({'quick' if args.quick else 'full'}) on {facts['cpu']}, {facts['cores']} cores, "
          f"{facts['memory_gib']} GiB; PostgreSQL {facts['postgres']}, Orthanc {facts['orthanc']}, "
          f"wrk {facts['wrk']}; load average {facts['load_average_at_start']}", flush=True)
    failures: dict[str, str] = {}
    try:
        for name in chosen:
            begun = time.monotonic()
            load_at_start = round(os.getloadavg()[0], 2)
            try:
                BENCHMARKS[name](run)
            except Exception as exc:  # one failed benchmark is reported; the others still run
                failures[name] = f"{type(exc).__name__}: {exc}"
                print(f"   FAILED: {failures[name]}", flush=True)
                traceback.print_exc(file=sys.stderr)
            run.results[f"{name}_benchmark_seconds"] = round(time.monotonic() - begun, 1)
            # the 1-minute load average when the benchmark started and when it ended: how shared the machine was
            run.results[f"{name}_load_average"] = [load_at_start, round(os.getloadavg()[0], 2)]
    except KeyboardInterrupt:
        # The servers and databases were stopped and dropped on the way out of each benchmark.
        print("\ninterrupted: every server started was stopped; no results written", file=sys.stderr)
        return 130
    finally:
        if args.keep:
            print(f"\nworking folder kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    facts["load_average_at_end"] = [round(value, 2) for value in os.getloadavg()]
    document = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": facts,
        "quick": args.quick,
        "benchmarks": chosen,
        "seconds": round(time.monotonic() - started, 1),
        "results": run.results,
        "targets": run.targets,
        "notes": run.notes,
        "failures": failures,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, indent=2, sort_keys=False) + "\n"
    (RESULTS / "latest.json").write_text(text)
    (RESULTS / f"{datetime.now(UTC).date().isoformat()}.json").write_text(text)

    heading(f"Summary ({document['seconds']:.0f} s)")
    for key, verdict in run.targets.items():
        print(f"   {key:<44} {run.results[key]!s:<10} target {verdict['target']:<8} "
              f"{'met' if verdict['met'] else 'NOT MET'}")
    for name, message in failures.items():
        print(f"   {name:<44} FAILED: {message}")
    print(f"\nwritten: {RESULTS / 'latest.json'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
