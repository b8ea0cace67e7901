"""What every benchmark shares: ports, child processes that are always stopped, statistics, printing."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import statistics
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MB = 1_000_000


class BenchError(RuntimeError):
    """A benchmark could not measure what it set out to measure."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Child:
    """A process started by a benchmark in its own process group, so that stopping it also stops whatever it
    forked (gunicorn's workers). Stopped by its own id, never by name."""

    def __init__(self, name: str, argv: Sequence[str], *, env: dict[str, str], log: Path,
                 cwd: Path = ROOT) -> None:
        self.name = name
        self.log = log
        with log.open("ab") as sink:
            self.process = subprocess.Popen(list(argv), cwd=cwd, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        self.pid = self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> None:
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def interrupt(self, timeout: float = 30.0) -> None:
        """SIGINT, for a child that writes its results when interrupted (py-spy), then stop()."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.stop()

    def children(self) -> list[int]:
        """Direct children (gunicorn's workers)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # the command name may hold spaces and parentheses: the fields start after the last ")"
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[1]) == self.pid:
                found.append(int(entry.name))
        return sorted(found)


def cpu_seconds(pids: Sequence[int]) -> float:
    """User plus system CPU time used so far by these processes (all their threads); gone ones count 0."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def cpu_by_process(pids: Sequence[int]) -> dict[int, float]:
    return {pid: cpu_seconds([pid]) for pid in pids}


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two snapshots; a process that appeared in between counts from zero."""
    return sum(used - before.get(pid, 0.0) for pid, used in after.items())


def http_status(host: str, port: int, path: str, timeout: float = 2.0) -> int | None:
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


def wait_until_ready(child: Child, port: int, path: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while http_status("127.0.0.1", port, path) != 200:
        if not child.alive():
            raise BenchError(f"{child.name} exited during start-up:\n{child.log_tail()}")
        if time.monotonic() > deadline:
            raise BenchError(f"{child.name} was not ready within {timeout:.0f} s:\n{child.log_tail()}")
        time.sleep(0.2)


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise BenchError(f"{field} not found for process {pid}")


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation), so p99 is a latency that was really observed."""
    if not values:
        raise BenchError("no samples")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-fraction * len(ordered) // 1))))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    if not values:
        raise BenchError("no samples")
    return statistics.median(values)


def heading(title: str) -> None:
    print(f"\n== {title}", flush=True)


def line(label: str, value: Any, unit: str = "") -> None:
    text = str(value)
    if isinstance(value, float):
        text = f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    print(f"   {label:<44} {text} {unit}".rstrip(), flush=True)


def ratio_line(key: str, value: float, target: str, met: bool) -> None:
    verdict = "met" if met else "NOT MET"
    print(f"   {key:<44} {value:.3f}   (target {target}: {verdict})", flush=True)
