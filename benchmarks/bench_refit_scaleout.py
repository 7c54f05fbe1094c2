"""Refit scale-out: ``--courses`` courses refitted with one Celery worker process, then with two.

A scratch PostgreSQL database is created and migrated, the model library loaded, and ``--courses`` ICU
patients on vancomycin (Goti 2018, a linear two-compartment library model: weight, creatinine, 1 g every
12 h for 2.5 days, a trough and a peak after the fifth dose) are recorded through the services. Their own
updates are not run (the set-up would take as long as the benchmark): they are marked superseded, and the
first refit computes every course from its doses and levels, as after an engine release.

Then, for each worker set-up in turn (``--workers 1 2``): Celery workers on the scratch database and a spare
Redis database start (``--mode concurrency``: one worker with ``--concurrency N``, prefork pool; ``--mode
processes``: N workers of concurrency 1), answer a ping, and ``dosing.refit.refit_queue`` queues one update
per course through the outbox, as ``manage.py refit_courses`` does; the script polls the database until
every update has finished. Wall time runs from the start of the queueing to the last ``finished_at``.
Prints per set-up: wall time, updates per second, the speed-up over the first set-up, the median and 95th
percentile of the engine time per update (``timings_s.total_s``) and how many updates failed. Workers run
with one BLAS/OpenMP thread each (the engine's arrays are small; N workers on N cores should not share
threads). The machine may be shared: the load average is printed before and after each run. On a shared
Linux machine with autogroup scheduling (``/proc/sys/kernel/sched_autogroup_enabled``), every process of one
session shares one CPU share against the other sessions' groups, so while others are busy a second worker
in the same session gains nothing; ``--mode processes --own-sessions`` starts each worker in a session of
its own, as a worker on its own machine or container would run.

    python benchmarks/bench_refit_scaleout.py [--courses 120] [--workers 1 2] [--mode concurrency]
        [--own-sessions]
        [--postgres postgresql://postgres@127.0.0.1:5432] [--redis redis://127.0.0.1:6379/13]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent

from _scratch_services import (  # noqa: E402 (a sibling module)
    add_service_options,
    django_with_library,
    scratch_database,
    scratch_environment,
    skipped_without_services,
)
from bench_update_latency import record_courses  # noqa: E402 (a sibling module)

# Levels after the fifth dose (hours after the first): a trough before the sixth and a level after it.
LEVELS_H = ((59.5, 14.0, 2.5), (61.9, 30.0, 4.0))
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def set_up(n_courses: int, seed: int) -> tuple[Any, list[Any]]:
    """The courses with their doses and two levels; their own updates never reach the broker."""
    clinician = django_with_library()
    from django.utils import timezone

    from dosing import outbox, services
    from dosing.models import BayesianUpdate, UpdateDispatch

    now = timezone.now()
    rng = np.random.default_rng(seed)
    # The set-up's updates stay in the database only: no worker runs yet, and none should run them later.
    with mock.patch.object(outbox, "outbox_deliver", lambda *, dispatch_id: False):
        courses = record_courses(n_courses, clinician, now)
        first = now - dt.timedelta(hours=62)
        for course in courses:
            for after_h, mean, sd in LEVELS_H:
                services.level_record(
                    course=course,
                    sampled_at=first + dt.timedelta(hours=after_h),
                    value=round(float(rng.normal(mean, sd)), 1),
                    unit="mg/L",
                    user=clinician,
                )
    BayesianUpdate.objects.filter(status=BayesianUpdate.Status.QUEUED).update(
        status=BayesianUpdate.Status.SUPERSEDED,
        finished_at=timezone.now(),
        error="benchmark set-up: not run",
    )
    UpdateDispatch.objects.filter(dispatched_at__isnull=True).update(
        dispatched_at=timezone.now(), last_error="benchmark set-up: not delivered"
    )
    return clinician, courses


def worker_command(concurrency: int, name: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "--quiet",
        "-A",
        "mipd_web",
        "worker",
        "--pool",
        "prefork",
        "--concurrency",
        str(concurrency),
        "--hostname",
        f"{name}@%h",
        "--loglevel",
        "WARNING",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]


@contextmanager
def workers(n: int, mode: str, environment: dict[str, str], timeout_s: float, own_sessions: bool) -> Any:
    """Start the workers of one set-up and wait until each answers a ping; stop them afterwards."""
    from mipd_web.celery import app

    if mode == "concurrency":
        commands = [worker_command(n, f"refit{n}")]
    else:
        commands = [worker_command(1, f"refit{n}-{k}") for k in range(n)]
    processes = [
        subprocess.Popen(
            command, cwd=REPO_ROOT, env={**environment, **ONE_THREAD}, start_new_session=own_sessions
        )
        for command in commands
    ]
    try:
        deadline = time.monotonic() + timeout_s
        while len(app.control.ping(timeout=1.0)) < len(processes):
            if time.monotonic() > deadline:
                raise SystemExit(f"the workers did not answer a ping within {timeout_s:g} s")
        yield processes
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def refit_once(clinician: Any, courses: list[Any], timeout_s: float) -> dict[str, Any]:
    from dosing.models import BayesianUpdate
    from dosing.refit import refit_queue

    drug = courses[0].drug
    started = time.time()
    queued = refit_queue(drug=drug, user=clinician)
    queued_s = time.time() - started
    if len(queued.update_ids) != len(courses):
        raise SystemExit(f"{len(queued.update_ids)} updates queued for {len(courses)} courses")
    deadline = time.monotonic() + timeout_s
    unfinished = (BayesianUpdate.Status.QUEUED, BayesianUpdate.Status.RUNNING)
    rows = BayesianUpdate.objects.filter(pk__in=queued.update_ids)
    while rows.filter(status__in=unfinished).exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"the refit did not finish within {timeout_s:g} s")
        time.sleep(0.2)
    finished = list(rows.values("status", "finished_at", "timings_s", "worker", "error"))
    wall_s = max(row["finished_at"].timestamp() for row in finished) - started
    engine = np.array([row["timings_s"]["total_s"] for row in finished if row["timings_s"].get("total_s")])
    failed = [row for row in finished if row["status"] != BayesianUpdate.Status.SUCCEEDED]
    return {
        "wall_s": wall_s,
        "queued_s": queued_s,
        "engine": engine,
        "failed": failed,
        "n": len(finished),
    }


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def measure(args: argparse.Namespace, environment: dict[str, str]) -> None:
    from mipd_web.celery import app

    app.control.purge()  # a spare database: whatever an earlier, interrupted run left queued goes
    clinician, courses = set_up(args.courses, args.seed)
    print(
        f"{len(courses)} vancomycin courses (Goti 2018, 6 doses and 2 levels each, 2,000 posterior draws); "
        f"{os.cpu_count()} CPUs on this machine; workers: {args.mode}"
        f"{', each in a session of its own' if args.own_sessions else ''}",
        flush=True,
    )
    results = []
    for n in args.workers:
        print(f"\n{n} worker process(es): load average before {load_average()}", flush=True)
        with workers(n, args.mode, environment, args.timeout, args.own_sessions):
            result = refit_once(clinician, courses, args.timeout)
        print(f"  load average after {load_average()}", flush=True)
        results.append((n, result))
    base = results[0][1]["wall_s"]
    print(
        f"\n{'workers':>7} {'wall s':>8} {'queue s':>8} {'updates/s':>9} {'speed-up':>8} "
        f"{'engine median s':>15} {'engine p95 s':>12} {'failed':>6}"
    )
    for n, result in results:
        engine = result["engine"]
        print(
            f"{n:7d} {result['wall_s']:8.1f} {result['queued_s']:8.1f} {result['n'] / result['wall_s']:9.2f} "
            f"{base / result['wall_s']:8.2f} {np.median(engine):15.2f} {np.percentile(engine, 95):12.2f} "
            f"{len(result['failed']):6d}"
        )
        for row in result["failed"][:3]:
            print(f"    FAILED {row['status']}: {row['error'][:200]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--courses", type=int, default=120, help="courses refitted (default 120)")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="worker processes per run (default 1 2)"
    )
    parser.add_argument(
        "--mode",
        choices=("concurrency", "processes"),
        default="concurrency",
        help="one worker with --concurrency N, or N workers of concurrency 1",
    )
    parser.add_argument(
        "--own-sessions",
        action="store_true",
        help="start each worker in a session of its own (a CPU share of its own under autogroup scheduling)",
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per refit")
    parser.add_argument("--seed", type=int, default=1, help="seed of the level values")
    add_service_options(parser)
    args = parser.parse_args()
    if skipped_without_services(args):
        return
    with scratch_database(args.postgres, "mipd_bench_refit") as database_url:
        environment = scratch_environment(database_url, args.redis)
        os.environ.update(environment)
        measure(args, environment)


if __name__ == "__main__":
    main()
