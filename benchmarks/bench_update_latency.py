"""Bayesian update latency with a real worker: from "level saved" to "updated plot and recommendation shown".

A scratch PostgreSQL database is created and migrated, the model library loaded, and ``--courses`` ICU
patients on vancomycin (Goti 2018: weight, creatinine, 1 g every 12 h for 2.5 days) are recorded through the
services. A Celery worker (``celery -A mipd_web worker --pool solo``, one process, as in production) runs as
a subprocess on the same database and a spare Redis database. Then ``--updates`` times, round-robin over the
courses: one level is recorded (``level_record``: save, commit, enqueue), the course's status endpoint
(``/courses/<id>/status.json``, Django test client, as the page polls it) is polled every ``--poll-ms`` until
that update has finished, and the results panel the page then fetches (``/courses/<id>/results/``) is read.

Prints the median and the 95th percentile of: the save (``level_record``), the queue wait (commit to the
worker's claim), the engine time (``timings_s.total_s``: case, fit, posterior, regimen search, forecast,
results), the worker's own overhead (claim and store), the time until the poll saw the update finished, the
results panel GET, and the total (before the save to the results panel received). The page itself polls
every 1.5 s, which adds up to 1.5 s (0.75 s on average) to what a user sees. The scratch database is dropped
at the end; the Redis database is left as Celery leaves it (no results are stored).

``--averaging average`` (or ``select``) loads three adult vancomycin models whose hard domains fit these
patients (Goti 2018, Buelga 2005, Roberts 2011) and sets the drug's strategy, so that each update fits all
three and recommends from their mixture (``dosing.averaging``); ``--averaging pinned`` (the default) loads
the same three and fits the course's Goti model only: the two runs compare an update over three models with
an update over one.

    python benchmarks/bench_update_latency.py [--updates 50] [--courses 5] [--poll-ms 20]
        [--averaging pinned|select|average]
        [--postgres postgresql://postgres@127.0.0.1:5432] [--redis redis://127.0.0.1:6379/13]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent

from _scratch_services import (  # noqa: E402 (a sibling module)
    PLAIN_STATIC_STORAGES,
    add_service_options,
    django_with_library,
    scratch_database,
    scratch_environment,
    skipped_without_services,
    stop,
)

# Level sampling times (hours after the first dose): the trough before and a level after each of doses 2-6.
SAMPLE_TIMES_H = (11.5, 14.0, 23.5, 26.0, 35.5, 38.0, 47.5, 50.0, 59.5, 61.9)


def record_courses(n_courses: int, clinician: Any, now: dt.datetime) -> list[Any]:
    from django.db import transaction

    from dosing import services as dosing
    from models_catalog.models import ModelVersion, TargetProtocol
    from models_catalog.selectors import declared_measurement_kinds
    from patients import services as patients
    from patients.models import ConsentRecord

    version = ModelVersion.objects.published().get(model_id="vancomycin-goti-2018")
    protocol = TargetProtocol.objects.filter(drug=version.drug, target__metric="auc24").first()
    first = now - dt.timedelta(hours=62)
    measured_crcl = "crcl_measured_per_1_73m2" in declared_measurement_kinds()
    courses = []
    for i in range(n_courses):
        with transaction.atomic():
            patient = patients.patient_create(
                mrn=f"BENCH-{i:04d}",
                family_name=f"Bench-{i}",
                given_name="Patient",
                birth_date=dt.date(1960 + i % 30, 1 + i % 12, 1 + i % 28),
                sex="male" if i % 2 else "female",
                user=clinician,
            )
            for kind, value, unit in (
                ("weight", 70 + 3 * (i % 10), "kg"),
                ("height", 170, "cm"),
                ("serum_creatinine", 0.9 + 0.1 * (i % 5), "mg/dL"),
                # A measured 24-h urinary clearance, where a loaded model asks for one (Roberts 2011, one of
                # the averaged models): without such a model the kind is refused.
                *([("crcl_measured_per_1_73m2", 90 - 5 * (i % 5), "mL/min/1.73m2")] if measured_crcl else []),
            ):
                patients.measurement_record(
                    patient=patient, kind=kind, value=value, unit=unit, measured_at=first, user=clinician
                )
            patients.consent_record(
                patient=patient,
                scope=ConsentRecord.Scope.MODEL_BASED_DOSING,
                status="granted",
                user=clinician,
            )
            course = dosing.course_open(
                patient=patient,
                no_organ_support_confirmed=True,  # no dialysis, CRRT or ECMO
                model_version=version,
                target_protocol=protocol,
                indication="benchmark",
                user=clinician,
            )
            for k in range(6):
                dosing.dose_record(
                    course=course,
                    given_at=first + dt.timedelta(hours=12 * k),
                    amount_mg=1000,
                    route="iv_infusion",
                    infusion_duration_h=2,  # 1000 mg at the 600 mg/h vancomycin limit takes 1.67 h
                    user=clinician,
                )
        courses.append(course)
    return courses


def wait_until_idle(timeout_s: float) -> None:
    from dosing.models import BayesianUpdate

    deadline = time.monotonic() + timeout_s
    busy = (BayesianUpdate.Status.QUEUED, BayesianUpdate.Status.RUNNING)
    while BayesianUpdate.objects.filter(status__in=busy).exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"the worker did not finish the set-up updates within {timeout_s:g} s")
        time.sleep(0.2)


AVERAGED_MODELS = ("vancomycin-goti-2018.json", "vancomycin-buelga-2005.json", "vancomycin-roberts-2011.json")


def set_strategy(mode: str) -> None:
    from django.contrib.auth import get_user_model

    from dosing.averaging import strategy_set
    from models_catalog.models import Drug

    curator = get_user_model().objects.get(username="demo-curator")
    drug = Drug.objects.get(name="vancomycin")
    strategy_set(drug=drug, mode=mode, prior_weights={}, reason="benchmark", user=curator)


def measure(args: argparse.Namespace) -> None:
    clinician = django_with_library(AVERAGED_MODELS)
    if args.averaging != "pinned":
        set_strategy(args.averaging)
    from django.test import Client
    from django.test.utils import override_settings
    from django.utils import timezone

    from dosing import services as dosing
    from dosing.models import BayesianUpdate

    now = timezone.now()
    courses = record_courses(args.courses, clinician, now)
    wait_until_idle(args.timeout)
    client = Client()
    client.force_login(clinician)
    rng = np.random.default_rng(args.seed)
    rows: list[dict[str, float]] = []
    failures: list[str] = []
    fitted: list[int] = []  # models fitted per update
    with override_settings(STORAGES=PLAIN_STATIC_STORAGES):
        for k in range(args.updates):
            course = courses[k % len(courses)]
            round_ = k // len(courses)
            after_first_h = SAMPLE_TIMES_H[round_ % len(SAMPLE_TIMES_H)] - 0.1 * (
                round_ // len(SAMPLE_TIMES_H)
            )
            is_trough = round_ % 2 == 0
            value = float(rng.normal(14.0, 2.5) if is_trough else rng.normal(30.0, 4.0))
            status_url = f"/courses/{course.public_id}/status.json"
            results_url = f"/courses/{course.public_id}/results/"
            t_start = time.perf_counter()
            dosing.level_record(
                course=course,
                sampled_at=now - dt.timedelta(hours=62) + dt.timedelta(hours=after_first_h),
                value=round(value, 1),
                unit="mg/L",
                user=clinician,
            )
            t_saved = time.perf_counter()
            wall_saved = time.time()
            update = BayesianUpdate.objects.filter(course=course).order_by("-pk").first()
            deadline = t_saved + args.timeout
            while True:
                status = client.get(status_url).json()
                if status.get("update") == str(update.public_id) and status.get("finished"):
                    break
                if time.perf_counter() > deadline:
                    break
                time.sleep(args.poll_ms / 1000)
            t_seen = time.perf_counter()
            panel = client.get(results_url)
            t_visible = time.perf_counter()
            update.refresh_from_db()
            if update.status != BayesianUpdate.Status.SUCCEEDED or panel.status_code != 200:
                failures.append(
                    f"update {update.pk}: {update.status} {update.error[:200]} (panel {panel.status_code})"
                )
                continue
            total_engine = float(update.timings_s.get("total_s", float("nan")))
            fitted.append(len((update.results.get("averaging") or {}).get("models") or [None]))
            rows.append(
                {
                    "save": t_saved - t_start,
                    "queue wait": update.started_at.timestamp() - wall_saved,
                    "engine (total_s)": total_engine,
                    "worker overhead": (update.finished_at - update.started_at).total_seconds()
                    - total_engine,
                    "finished, seen by poll": t_seen - t_saved,
                    "results panel GET": t_visible - t_seen,
                    "total": t_visible - t_start,
                }
            )
            print(
                f"  update {k + 1:3d}/{args.updates} course {course.pk} "
                f"({course.levels.count()} levels): {1000 * (t_visible - t_start):7.0f} ms",
                flush=True,
            )
    models = sorted(set(fitted)) or [0]
    print(
        f"\n{len(rows)} updates on {len(courses)} courses (vancomycin, strategy {args.averaging}: "
        f"{'/'.join(map(str, models))} model(s) fitted per update, 2,000 posterior draws); "
        f"one worker (--pool solo), poll every {args.poll_ms:g} ms; {os.cpu_count()} CPUs on this machine"
    )
    if rows:
        print(f"{'step':22} {'median ms':>10} {'p95 ms':>9}")
        for step in rows[0]:
            values = np.array([row[step] for row in rows]) * 1000
            print(f"{step:22} {np.median(values):10.0f} {np.percentile(values, 95):9.0f}")
        print("The page polls every 1.5 s: add up to 1.5 s (0.75 s on average) for what a user sees.")
    for failure in failures:
        print(f"FAILED {failure}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=50, help="number of timed updates (default 50)")
    parser.add_argument("--courses", type=int, default=5, help="courses the levels go to, round-robin")
    parser.add_argument("--poll-ms", type=float, default=20.0, help="status poll interval of this script")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds allowed per update")
    parser.add_argument("--seed", type=int, default=1, help="seed of the level values")
    parser.add_argument(
        "--averaging",
        choices=("pinned", "select", "average"),
        default="pinned",
        help="the vancomycin strategy: the course's model only, or selection/averaging over three models",
    )
    add_service_options(parser)
    args = parser.parse_args()
    if skipped_without_services(args):
        return
    with scratch_database(args.postgres, "mipd_bench_latency") as database_url:
        environment = scratch_environment(database_url, args.redis)
        os.environ.update(environment)
        worker = None
        try:
            # The worker starts while this process migrates: it retries its broker connection, not the
            # database.
            worker = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "--quiet",
                    "-A",
                    "mipd_web",
                    "worker",
                    "--pool",
                    "solo",
                    "--loglevel",
                    "WARNING",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                ],
                cwd=REPO_ROOT,
                env=environment,
            )
            measure(args)
        finally:
            stop(worker)


if __name__ == "__main__":
    main()
