"""/healthz response time over HTTP, from a live gunicorn on PostgreSQL and Redis: the whole request.

A scratch PostgreSQL database is created and migrated, the model library loaded, and one vancomycin course
bulk-given ``--finished`` finished Bayesian updates (delivered), ``--queued`` queued and ``--running`` running
ones, and ``--pending`` outbox rows not yet handed to the broker, so that the queue and outbox reads of
/healthz meet a table of realistic size; beat's heartbeat is stamped (no beat runs). Then gunicorn (the
production server: ``mipd_web.wsgi``, ``--workers 2``, sync workers, DEBUG off) is started on 127.0.0.1 with
the scratch database and a spare Redis database (only pinged), and ``--requests`` GET /healthz are sent one
after the other, each on a new connection as a load balancer's probe does, first anonymously (the status
only), then with the monitoring token (every component), after ``--warmup`` requests each.

Prints the median, the 95th percentile and the maximum of the whole request as the client sees it (connect,
send, server, receive), the HTTP statuses, and the components' states once. The broker ping is cached for 5 s
per gunicorn worker: the maximum includes the requests that pinged. The target is under 100 ms. The scratch
database is dropped at the end.

    python benchmarks/bench_healthz.py [--requests 200] [--warmup 10] [--finished 100000] [--queued 20]
        [--running 5] [--pending 10] [--postgres postgresql://postgres@127.0.0.1:5432]
        [--redis redis://127.0.0.1:6379/13]
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent

from _scratch_services import (  # noqa: E402 (a sibling module)
    add_service_options,
    django_with_library,
    scratch_database,
    scratch_environment,
    skipped_without_services,
    stop,
)

HOST = "127.0.0.1"


def queue_data(args: argparse.Namespace, clinician: Any) -> None:
    """One course and its updates, bulk-created (past the audit trail: benchmark data, not under test)."""
    from django.db import connection
    from django.utils import timezone

    from dosing.models import BayesianUpdate, TherapyCourse, UpdateDispatch
    from health.services import beat_heartbeat_record
    from models_catalog.models import ModelVersion
    from patients import services as patients

    version = ModelVersion.objects.published().get(model_id="vancomycin-goti-2018")
    patient = patients.patient_create(
        mrn="BENCH-HEALTHZ",
        family_name="Bench",
        given_name="Healthz",
        birth_date=dt.date(1960, 1, 1),
        sex="female",
        user=clinician,
    )
    course = TherapyCourse._base_manager.create(
        patient=patient,
        drug=version.drug,
        model_version=version,
        target={"metric": "auc24", "low": 400, "high": 600},
        indication="benchmark",
        opened_by=clinician,
    )
    now = timezone.now()
    Status = BayesianUpdate.Status
    states = (
        [(Status.SUCCEEDED, now - dt.timedelta(minutes=args.finished - i)) for i in range(args.finished)]
        + [(Status.QUEUED, now - dt.timedelta(seconds=30)) for _ in range(args.queued)]
        + [(Status.RUNNING, now - dt.timedelta(seconds=20)) for _ in range(args.running)]
    )
    updates = BayesianUpdate._base_manager.bulk_create(
        (
            BayesianUpdate(
                course=course,
                status=status,
                trigger="benchmark",
                requested_by=clinician,
                model_version=version,
                started_at=None if status == Status.QUEUED else at,
                finished_at=at if status == Status.SUCCEEDED else None,
                attempts=0 if status == Status.QUEUED else 1,
            )
            for status, at in states
        ),
        batch_size=5000,
    )
    # requested_at is auto_now_add: set afterwards, for the ages /healthz computes, once the rows are in.
    now = timezone.now()
    running = BayesianUpdate._base_manager.filter(status=Status.RUNNING)
    running.update(started_at=now - dt.timedelta(seconds=20))
    for status, seconds in ((Status.QUEUED, 30), (Status.RUNNING, 25)):
        BayesianUpdate._base_manager.filter(status=status).update(
            requested_at=now - dt.timedelta(seconds=seconds)
        )
    delivered = updates[: len(updates) - args.pending]
    UpdateDispatch.objects.bulk_create(
        (UpdateDispatch(update=update, dispatched_at=now, attempts=1) for update in delivered),
        batch_size=5000,
    )
    UpdateDispatch.objects.bulk_create(UpdateDispatch(update=update) for update in updates[len(delivered) :])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # the planner sees the bulk-created rows
    beat_heartbeat_record(worker_hostname="benchmark")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def get(port: int, headers: dict[str, str]) -> tuple[float, int, bytes]:
    """One GET /healthz on a new connection: (seconds, HTTP status, body)."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.request("GET", "/healthz", headers={"Host": HOST, **headers})
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    return time.perf_counter() - started, response.status, body


def wait_until_serving(port: int, server: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited with {server.returncode}")
        try:
            get(port, {})
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"gunicorn did not answer on {HOST}:{port} within {timeout_s:g} s")


def measure(args: argparse.Namespace, port: int, token: str) -> None:
    print(
        f"GET /healthz on gunicorn (2 sync workers) at {HOST}:{port}, PostgreSQL and Redis on the loopback; "
        f"{args.finished:,} finished, {args.queued} queued, {args.running} running updates, {args.pending} "
        f"undelivered; {args.requests} requests per caller, each on a new connection, after {args.warmup} "
        f"warm-up requests; {os.cpu_count()} CPUs on this machine (shared), load average "
        f"{os.getloadavg()[0]:.2f}"
    )
    print(f"{'caller':12} {'median ms':>10} {'p95 ms':>8} {'max ms':>8}  HTTP statuses, body")
    for caller, headers in (("anonymous", {}), ("token", {"Authorization": f"Bearer {token}"})):
        for _ in range(args.warmup):
            get(port, headers)
        times, statuses, body = [], {}, b""
        for _ in range(args.requests):
            elapsed_s, status, body = get(port, headers)
            times.append(elapsed_s * 1000)
            statuses[status] = statuses.get(status, 0) + 1
        shown = json.loads(body)
        summary = (
            shown
            if caller == "anonymous"
            else {name: part["status"] if isinstance(part, dict) else part for name, part in shown.items()}
        )
        values = np.array(times)
        print(
            f"{caller:12} {np.median(values):10.1f} {np.percentile(values, 95):8.1f} {values.max():8.1f}  "
            f"{statuses}, {json.dumps(summary)}"
        )
        for name, part in shown.items():
            if isinstance(part, dict) and part["status"] != "ok":
                print(f"{'':12} {name}: {json.dumps(part)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="timed requests per caller (default 200)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed requests per caller first")
    parser.add_argument("--finished", type=int, default=100_000, help="finished updates in the table")
    parser.add_argument("--queued", type=int, default=20)
    parser.add_argument("--running", type=int, default=5)
    parser.add_argument("--pending", type=int, default=10, help="outbox rows not yet handed to the broker")
    add_service_options(parser)
    args = parser.parse_args()
    if skipped_without_services(args):
        return
    token = secrets.token_urlsafe(32)
    with scratch_database(args.postgres, "mipd_bench_healthz") as database_url:
        environment = scratch_environment(database_url, args.redis, allowed_host=HOST, HEALTHZ_TOKEN=token)
        os.environ.update(environment)
        server = None
        try:
            queue_data(args, django_with_library())
            from django.db import connections

            connections.close_all()
            port = free_port()
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "mipd_web.wsgi:application",
                    "--bind",
                    f"{HOST}:{port}",
                    "--workers",
                    "2",
                    "--log-level",
                    "warning",
                ],
                cwd=REPO_ROOT,
                env=environment,
            )
            wait_until_serving(port, server)
            measure(args, port, token)
        finally:
            stop(server)


if __name__ == "__main__":
    main()
