"""A morning round under load: clinicians adding levels, pharmacists signing, as in production, on loopback.

A scratch PostgreSQL database is created and migrated, the model library loaded, and ``--courses`` ICU
patients on vancomycin (Goti 2018: weight, creatinine, 1 g every 12 h for 2.5 days) recorded through the
services; their own updates are not run (the first level of the round computes each course). ``--clinicians``
clinicians and ``--pharmacists`` pharmacists (each with a TOTP authenticator) are created in a hospital-wide
care team, and each clinician gets ``--courses`` / ``--clinicians`` courses of their own (so that two
clinicians never race on one course). The static files are collected, then start on loopback:
gunicorn (``--web-workers`` sync workers, as the Dockerfile runs it), one Celery worker (prefork,
``--celery-concurrency`` processes, as docker-compose runs it) on a spare Redis database, and locust
(``_morning_round_locust.py``, headless, for ``--run-time`` seconds). What each simulated user does is
described there: clinicians through the pages and the API with their session, pharmacists with password,
TOTP and CSRF as the browser does (API tokens are refused for accounts with a second factor).

Prints, from locust's statistics: per endpoint the requests, failures, median, 95th and 99th percentile
and maximum (ms); the throughput (requests per second, all endpoints) and the error rate; the time from a
level's 201 to its recommendation listed (median, 95th percentile; polled every ``--poll-s``, which adds up
to that much); reviews refused because the recommendation changed meanwhile; and, from the database, the
updates by status with their queue wait (request to claim) and engine time. The load average is printed
before and after: the CPU may be shared. Everything is stopped and the scratch database dropped at the end.

    python benchmarks/bench_morning_round.py [--clinicians 50] [--pharmacists 5] [--courses 50]
        [--run-time 90] [--level-every-s 60] [--poll-s 0.5] [--web-workers 2] [--celery-concurrency 2]
        [--web-nice 0]
        [--postgres postgresql://postgres@127.0.0.1:5432] [--redis redis://127.0.0.1:6379/13]
        [--database NAME]

``--web-nice N`` runs gunicorn at niceness N, so that on a shared machine the Celery worker gets the CPU first
(docs/operations.md, "Sizing": what it buys the level-to-recommendation time and what it costs the pages).

With ``--database NAME`` the set-up is kept in that database (and its plan, passwords and key under
``var/bench-round/``) and the next run with the same name goes straight to the load: the set-up alone can
take minutes on a busy machine.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent

from _scratch_services import admin_execute, django_with_library, services_missing  # noqa: E402 (a sibling module)
from bench_update_latency import record_courses  # noqa: E402 (a sibling module)

LEVEL_NAME = "level saved -> recommendation visible"
STATIC_ROOT = REPO_ROOT / "var" / "bench-static"  # var/ is not versioned
STATE_DIR = REPO_ROOT / "var" / "bench-round"  # --database: the plan (passwords, keys) of a kept database


def secret_key(args: argparse.Namespace) -> str:
    """A kept database keeps its key (its audit chain is sealed with a key derived from it)."""
    if not args.database:
        return secrets.token_urlsafe(50)
    path = STATE_DIR / f"{args.database}.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50), encoding="utf-8")
    return path.read_text(encoding="utf-8")


def free_level_times(plan: dict[str, Any]) -> None:
    """A kept database: drop the sampling times an earlier run already used."""
    from django.utils.dateparse import parse_datetime

    from dosing.models import DrugLevel

    taken = {(str(c), t) for c, t in DrugLevel.objects.values_list("course__public_id", "sampled_at")}
    for clinician in plan["clinicians"]:
        for course in clinician["courses"]:
            course["level_times"] = [
                t for t in course["level_times"] if (course["course"], parse_datetime(t)) not in taken
            ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_environment(
    database_url: str, redis_url: str, port: int, static_root: str, secret_key: str
) -> dict[str, str]:
    """Production settings (DEBUG off) served over plain HTTP on loopback."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mipd_web.settings",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DEBUG": "0",
        "SECRET_KEY": secret_key,
        "ALLOWED_HOSTS": "127.0.0.1",
        "CSRF_TRUSTED_ORIGINS": f"http://127.0.0.1:{port}",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "STATIC_ROOT": static_root,
        "LOG_LEVEL": "WARNING",
    }


def level_times(first: dt.datetime) -> list[str]:
    """Free sampling times of one course: troughs 0.5 to 2 h before doses 2 to 6, oldest first."""
    times = [
        first + dt.timedelta(hours=12 * k - before) for k in range(1, 6) for before in (2.0, 1.5, 1.0, 0.5)
    ]
    return [moment.isoformat() for moment in sorted(times)]


def set_up(args: argparse.Namespace) -> dict[str, Any]:
    """Courses, clinicians, pharmacists and their authenticators; returns the plan locust reads."""
    opener = django_with_library(("vancomycin-goti-2018.json",))  # the one model the round uses
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.utils import timezone
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.roles import Role
    from dosing import outbox
    from dosing.models import BayesianUpdate, UpdateDispatch
    from patients.models import CareTeam

    now = timezone.now()
    with mock.patch.object(outbox, "outbox_deliver", lambda *, dispatch_id: False):
        courses = record_courses(args.courses, opener, now)  # opened by the demo clinician
    BayesianUpdate.objects.filter(status=BayesianUpdate.Status.QUEUED).update(
        status=BayesianUpdate.Status.SUPERSEDED, finished_at=timezone.now(), error="benchmark set-up: not run"
    )
    UpdateDispatch.objects.filter(dispatched_at__isnull=True).update(
        dispatched_at=timezone.now(), last_error="benchmark set-up: not delivered"
    )
    users = get_user_model().objects
    team = CareTeam.objects.create(name="benchmark: hospital-wide", wards=[], covers_all_wards=True)
    clinician_group = Group.objects.get_or_create(name=Role.CLINICIAN.value)[0]
    pharmacist_group = Group.objects.get_or_create(name=Role.PHARMACIST.value)[0]
    first = now - dt.timedelta(hours=62)
    plan: dict[str, Any] = {
        "n_clinicians": args.clinicians,
        "n_pharmacists": args.pharmacists,
        "level_every_s": args.level_every_s,
        "poll_s": args.poll_s,
        "visible_timeout_s": args.visible_timeout_s,
        "clinicians": [],
        "pharmacists": [],
    }
    for i in range(args.clinicians):
        password = secrets.token_urlsafe(16)
        user = users.create_user(
            username=f"round-clinician-{i:02d}", password=password, first_name="Clinician", last_name=f"{i}"
        )
        user.groups.add(clinician_group)
        team.members.add(user)
        mine = courses[i :: args.clinicians]
        plan["clinicians"].append(
            {
                "username": user.username,
                "password": password,
                "courses": [
                    {
                        "course": str(c.public_id),
                        "patient": str(c.patient.public_id),
                        "level_times": level_times(first),
                    }
                    for c in mine
                ],
            }
        )
    for i in range(args.pharmacists):
        password = secrets.token_urlsafe(16)
        user = users.create_user(
            username=f"round-pharmacist-{i}", password=password, first_name="Pharmacist", last_name=f"{i}"
        )
        user.groups.add(pharmacist_group)
        team.members.add(user)
        device = TOTPDevice.objects.create(user=user, name="benchmark authenticator", confirmed=True)
        plan["pharmacists"].append(
            {"username": user.username, "password": password, "totp_key_hex": device.key}
        )
    return plan


def wait_for_http(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} did not answer within {timeout_s:g} s")
        time.sleep(0.5)


def start(stack: ExitStack, command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = stack.enter_context(open(log, "wb"))
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)

    def stop() -> None:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    stack.callback(stop)
    return process


def print_stats(stats_csv: Path, run_time_s: float) -> None:
    rows = list(csv.DictReader(open(stats_csv, encoding="utf-8")))
    header = ("requests", "fails", "p50 ms", "p95 ms", "p99 ms", "max ms")
    print(f"\n{'type':7} {'endpoint':48} " + " ".join(f"{h:>8}" for h in header))
    http_requests = http_failures = 0
    for row in rows:
        if row["Name"] == "Aggregated":
            continue
        count, fails = int(row["Request Count"]), int(row["Failure Count"])
        if row["Type"] not in ("LATENCY", "OUTCOME"):
            http_requests += count
            http_failures += fails
        print(
            f"{row['Type']:7} {row['Name'][:48]:48} {count:8d} {fails:8d} {row['50%']:>8} {row['95%']:>8} "
            f"{row['99%']:>8} {float(row['Max Response Time']):8.0f}"
        )
    rate = http_failures / http_requests if http_requests else float("nan")
    print(
        f"\nHTTP: {http_requests} requests in {run_time_s:g} s = {http_requests / run_time_s:.1f} req/s; "
        f"{http_failures} failed ({100 * rate:.2f} %)"
    )
    level = next((row for row in rows if row["Name"] == LEVEL_NAME), None)
    if level:
        print(
            f"{LEVEL_NAME}: {level['Request Count']} levels, {level['Failure Count']} not visible in time or "
            f"failed; p50 {level['50%']} ms, p95 {level['95%']} ms, "
            f"max {float(level['Max Response Time']):.0f} ms"
        )


def print_failures(failures_csv: Path) -> None:
    if not failures_csv.exists():
        return
    for row in list(csv.DictReader(open(failures_csv, encoding="utf-8")))[:10]:
        print(f"  FAILED {row['Method']} {row['Name']} x{row['Occurrences']}: {row['Error'][:200]}")


def print_updates(since: dt.datetime) -> None:
    from django.db.models import Count

    from dosing.models import BayesianUpdate

    updates = BayesianUpdate.objects.filter(requested_at__gte=since)
    counts = dict(updates.values_list("status").annotate(n=Count("pk")).order_by())
    print(f"updates during the round: {counts}")
    done = updates.filter(started_at__isnull=False).values("requested_at", "started_at", "timings_s")
    waits = np.array([(row["started_at"] - row["requested_at"]).total_seconds() for row in done])
    engine = np.array([row["timings_s"]["total_s"] for row in done if row["timings_s"].get("total_s")])
    if waits.size:
        print(
            f"  queue wait (request to claim): p50 {np.median(waits):.2f} s, "
            f"p95 {np.percentile(waits, 95):.2f} s"
        )
    if engine.size:
        print(f"  engine (total_s): p50 {np.median(engine):.2f} s, p95 {np.percentile(engine, 95):.2f} s")


def measure(args: argparse.Namespace, database_url: str, workdir: Path) -> None:
    port = free_port()
    environment = server_environment(database_url, args.redis, port, str(STATIC_ROOT), secret_key(args))
    os.environ.update(environment)
    # Collected while the courses are recorded; kept between runs (collectstatic copies only what changed).
    collecting = subprocess.Popen(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=REPO_ROOT, env=environment
    )
    saved_plan = STATE_DIR / f"{args.database}.json" if args.database else None
    if saved_plan is not None and saved_plan.exists():
        import django

        django.setup()
        plan = json.loads(saved_plan.read_text(encoding="utf-8"))
        free_level_times(plan)
        print(f"reusing the database {args.database} and its plan ({saved_plan})")
    else:
        plan = set_up(args)
        if saved_plan is not None:
            saved_plan.parent.mkdir(parents=True, exist_ok=True)
            saved_plan.write_text(json.dumps(plan), encoding="utf-8")
    from django.utils import timezone

    from mipd_web.celery import app

    app.control.purge()  # a spare Redis database: whatever an interrupted run left queued goes
    plan_file = workdir / "plan.json"
    plan_file.write_text(json.dumps(plan), encoding="utf-8")
    if collecting.wait() != 0:
        raise SystemExit("collectstatic failed")
    base_url = f"http://127.0.0.1:{port}"
    with ExitStack() as stack:
        start(
            stack,
            [
                *(["nice", "-n", str(args.web_nice)] if args.web_nice else []),
                sys.executable,
                "-m",
                "gunicorn",
                "mipd_web.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(args.web_workers),
                "--timeout",
                "60",
            ],
            environment,
            workdir / "gunicorn.log",
        )
        start(
            stack,
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "mipd_web",
                "worker",
                "--loglevel",
                "WARNING",
                "--concurrency",
                str(args.celery_concurrency),
                "--without-gossip",
                "--without-mingle",
            ],
            environment,
            workdir / "celery.log",
        )
        wait_for_http(f"{base_url}/healthz", 120)
        deadline = time.monotonic() + 120
        while not app.control.ping(timeout=1.0):
            if time.monotonic() > deadline:
                raise SystemExit("the Celery worker did not answer a ping within 120 s")
        users = args.clinicians + args.pharmacists
        print(
            f"{args.clinicians} clinicians ({args.courses} vancomycin courses, a level every "
            f"~{args.level_every_s:g} s each), {args.pharmacists} pharmacists; gunicorn {args.web_workers} "
            f"sync workers (nice {args.web_nice}), Celery prefork "
            f"concurrency {args.celery_concurrency}; {os.cpu_count()} CPUs; load average before "
            f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}",
            flush=True,
        )
        round_started = timezone.now()
        locust = subprocess.run(
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(HERE / "_morning_round_locust.py"),
                "--headless",
                "--host",
                base_url,
                "--users",
                str(users),
                "--spawn-rate",
                str(args.spawn_rate),
                "--run-time",
                f"{args.run_time:g}s",
                "--stop-timeout",
                str(args.visible_timeout_s),
                "--csv",
                str(workdir / "round"),
                "--only-summary",
                "--loglevel",
                "WARNING",
                "--exit-code-on-error",
                "0",
            ],
            cwd=REPO_ROOT,
            env={**environment, "MIPD_ROUND_PLAN": str(plan_file)},
            capture_output=True,
            text=True,
            timeout=args.run_time + args.visible_timeout_s + 120,
            check=False,
        )
        print(f"load average after {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        if locust.returncode != 0:
            print(locust.stdout[-3000:], locust.stderr[-3000:])
            raise SystemExit(f"locust exited with {locust.returncode}")
    print_stats(workdir / "round_stats.csv", args.run_time)
    print_failures(workdir / "round_failures.csv")
    print_updates(round_started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clinicians", type=int, default=50, help="simulated clinicians (default 50)")
    parser.add_argument("--pharmacists", type=int, default=5, help="simulated pharmacists (default 5)")
    parser.add_argument("--courses", type=int, default=50, help="vancomycin courses, shared out (default 50)")
    parser.add_argument("--run-time", type=float, default=90.0, help="seconds of load (default 90)")
    parser.add_argument("--spawn-rate", type=float, default=10.0, help="users started per second")
    parser.add_argument(
        "--level-every-s", type=float, default=60.0, help="mean seconds between two levels of one clinician"
    )
    parser.add_argument("--poll-s", type=float, default=0.5, help="status poll interval after a level")
    parser.add_argument(
        "--visible-timeout-s", type=int, default=60, help="seconds a level's recommendation may take"
    )
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--celery-concurrency", type=int, default=2, help="Celery processes (default 2)")
    parser.add_argument(
        "--web-nice",
        type=int,
        default=0,
        help="run gunicorn at this niceness (0-19), so that the Celery worker gets the CPU first "
        "(default 0: equal priority)",
    )
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432",
        help="PostgreSQL server URL without a database name; a scratch database is created and dropped",
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13", help="a spare Redis database")
    parser.add_argument(
        "--database",
        default="",
        help="keep the set-up in this database (plan under var/bench-round/) and reuse it on the next run: "
        "on a busy machine the set-up alone can take minutes; drop it yourself when done",
    )
    args = parser.parse_args()
    missing = services_missing(args.postgres, args.redis)
    if missing:
        print(f"skipped: {missing}")
        return
    if args.courses < args.clinicians:
        parser.error("--courses must be at least --clinicians: each clinician has courses of their own")
    # A SIGTERM (e.g. from `timeout`) stops the servers and drops the database as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(f"stopped by signal {signum}"))
    database = args.database or f"mipd_bench_round_{os.getpid()}"
    if not (args.database and (STATE_DIR / f"{database}.json").exists()):
        admin_execute(args.postgres, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin_execute(args.postgres, f'CREATE DATABASE "{database}"')
    try:
        with tempfile.TemporaryDirectory(prefix="mipd-round-") as workdir:
            measure(args, f"{args.postgres}/{database}", Path(workdir))
    finally:
        from django.db import connections

        connections.close_all()
        if not args.database:
            admin_execute(args.postgres, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


if __name__ == "__main__":
    main()
