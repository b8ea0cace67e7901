"""wrk, the load generator for the read benchmarks: one run, its output parsed into numbers."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

from bench.common import BenchError

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass
class WrkResult:
    requests: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int


def _milliseconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise BenchError(f"cannot read wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(url: str, *, seconds: int, connections: int, headers: dict[str, str] | None = None,
            threads: int = 1) -> WrkResult:
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed (bench/setup.sh installs the Debian package 'wrk')")
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "30s"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, timeout=seconds + 60, check=False)
    text = output.stdout
    if output.returncode != 0:
        raise BenchError(f"wrk failed: {output.stderr.strip() or text[-500:]}")
    requests = re.search(r"(\d+) requests in", text)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p50 = re.search(r"^\s+50%\s+(\S+)", text, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", text, re.MULTILINE)
    if not (requests and rate and p50 and p99):
        raise BenchError(f"cannot read wrk's output:\n{text}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return WrkResult(
        requests=int(requests.group(1)),
        requests_per_s=float(rate.group(1)),
        p50_ms=_milliseconds(p50.group(1)),
        p99_ms=_milliseconds(p99.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
    )
