"""Intake with the previews left to the worker (``PREVIEWS_AFTER_ANSWER=worker``) against the default, and against
Orthanc: the same distinct DICOMs, 4 clients, taking turns in the same run.

- default: ``PREVIEWS_AFTER_ANSWER=busy``, multipart; the previews drawn by the web process (before the answer
  or, when its drawing slots are busy, just after it: waited for and counted, as in benchmark 1);
- worker, multipart and worker, raw: ``PREVIEWS_AFTER_ANSWER=worker``, the file as a multipart form or as a raw
  ``application/dicom`` body. No web process draws: once the rounds are over, ``flask worker --once`` draws
  every preview left pending and its CPU is printed apart, not counted (the worker runs on other machines
  where intake matters; docs/imaging.md).

Figures (``intake_worker_*``): CPU per image (gunicorn + PostgreSQL) and images/s of each, Orthanc's, and each
one's images/s over Orthanc's. The headline intake targets are benchmark 1's (the default set-up); these say how
far leaving the drawing to the worker takes the web tier.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from bench.common import BenchError, heading, line
from bench.context import Run
from bench.direct import _drain_with_worker
from bench.intake import Target, announce_sizes, checked_passes, distinct_files, orthanc_target, take_turns
from bench.intake_bodies import _targets
from bench.servers import Server, fresh_database, referral_server

# File size in MB: (files measured, rounds taking turns, warm-up files), full run and QUICK=1.
SIZES: dict[float, tuple[int, int, int]] = {4.0: (96, 8, 8), 0.5: (160, 8, 8)}
QUICK_SIZES: dict[float, tuple[int, int, int]] = {4.0: (32, 2, 4), 0.5: (48, 2, 4)}


def run(run: Run) -> None:
    heading("1c. Intake with the previews left to the worker, against the default and Orthanc")
    sizes = QUICK_SIZES if run.quick else SIZES
    batches = announce_sizes(sizes)
    worker: tuple[dict[str, str], str] | None = None
    with ExitStack() as stack:
        targets: list[Target] = []
        for mode in ("busy", "worker"):
            database_url = stack.enter_context(fresh_database(f"intake_{mode}"))
            server = stack.enter_context(referral_server(run.workdir, database_url, name=f"intake-{mode}",
                                                         extra_env={"PREVIEWS_AFTER_ANSWER": mode}))

            def pids(server: Server = server) -> list[int]:
                return [server.pid, *server.child.children()]
            made = _targets(server, database_url, "default" if mode == "busy" else "worker", batches, pids)
            if mode == "busy":
                targets.append(made[0])  # multipart only
            else:
                for target in made:
                    target.settle = None  # nothing drawn by the web tier: nothing to wait for
                targets.extend(made)
                worker = (server.env, database_url)
        orthanc = orthanc_target(stack, run, "orthanc-worker")
        targets.append(orthanc)
        for batch, (megabytes, (count, rounds, warm)) in enumerate(sizes.items()):
            files = distinct_files(count + warm, megabytes)
            for target in targets:
                target.warm(batch, files, range(count, count + warm))
            take_turns(targets, batch, files, count, rounds)
            del files
        if worker is None:
            raise BenchError("the worker set-up did not start")
        worker_cpu, drawn = _drain_with_worker(*worker)

    table: list[dict[str, Any]] = []
    for batch, megabytes in enumerate(sizes):
        passes = checked_passes(targets, batch, megabytes)
        theirs = passes[orthanc.name]
        line(f"{megabytes:g} MB, ms CPU per image (gunicorn + PostgreSQL)",
             f"Orthanc {theirs.cpu_ms_per_image:.1f}; {theirs.images_per_s:.1f} images/s")
        row: dict[str, Any] = {"nominal_mb": megabytes, "images": theirs.files,
                               "orthanc_cpu_ms_per_image": round(theirs.cpu_ms_per_image, 1),
                               "orthanc_images_per_s": round(theirs.images_per_s, 2)}
        for name, result in passes.items():
            if name == orthanc.name:
                continue
            ours = result.cpu_ms_per_image + result.database_cpu_ms_per_image
            key = name.replace(", ", "_")
            row[f"{key}_cpu_ms_per_image"] = round(ours, 1)
            row[f"{key}_images_per_s"] = round(result.images_per_s, 2)
            row[f"{key}_vs_orthanc_ratio"] = round(result.images_per_s / theirs.images_per_s, 3)
            line(f"   {name}", f"{result.cpu_ms_per_image:.1f} + {result.database_cpu_ms_per_image:.1f} = {ours:.1f}",
                 f"{result.images_per_s:.1f} images/s, {row[f'{key}_vs_orthanc_ratio']:.3f} of Orthanc's")
        table.append(row)
    line("previews drawn afterwards by `flask worker`", drawn, "images")
    line("", f"{worker_cpu * 1000 / max(drawn, 1):.1f}", "ms CPU per image, the worker's drawing (not counted)")
    run.record(intake_worker_table=table,
               intake_worker_drawing_cpu_ms_per_image=round(worker_cpu * 1000 / max(drawn, 1), 1))
