"""Server time of the model performance page with 100,000 prospectively scored levels in PostgreSQL.

A scratch PostgreSQL database is created and migrated and one library model (vancomycin, Goti 2018) loaded.
``--patients`` patients (default 2,000) with one course each and ``--levels`` levels (default 100,000) spread
over them are bulk-created, each level with its prospective score: subgroup bands drawn at random (age, sex,
weight, BMI, renal function, ICU or ward, renal replacement), a predictive distribution log-normal around the
predicted median (SD 0.35 of log concentration) and an observed level drawn from it, except in the renal band
"<15 mL/min" where the true clearance is 20 % lower (levels 25 % higher). The sequential tests are run over
every subgroup in scoring order (their stored state and alerts, as the services would leave them).

Timed, with the Django test client (settings as in production, DEBUG off, a curator signed in with a second
factor): the summary refresh (``performance.services.summary_refresh``, what the background task runs after a
new score: every subgroup's statistics with their bootstrap and exact intervals), ``--refreshes`` times; then
``--samples`` requests of the performance page (``/performance/versions/<id>/``) and of the model card, after
one warm-up request each. Prints the median and the 95th percentile, the SQL queries per page, and the load
average (the CPU may be shared). The scratch database is dropped at the end.

    python benchmarks/bench_performance_page.py [--patients 2000] [--levels 100000] [--samples 30]
        [--refreshes 3] [--postgres postgresql://postgres@127.0.0.1:5432] [--keep]
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from _scratch_services import PLAIN_STATIC_STORAGES, django_with_library, scratch_database, services_missing  # noqa: E402 (a sibling module)

BATCH = 5000
LOG_SD = 0.35
BANDS = {
    "age_band": ("18-39 y", "40-64 y", "65-79 y", ">=80 y"),
    "sex": ("female", "male"),
    "weight_band": ("40-59 kg", "60-79 kg", "80-99 kg", "100-119 kg"),
    "bmi_band": ("18.5-24.9", "25-29.9", "30-39.9"),
    "renal_band": (
        "<15 mL/min",
        "15-29 mL/min",
        "30-59 mL/min",
        "60-89 mL/min",
        "90-129 mL/min",
        ">=130 mL/min",
    ),
    "care_setting": ("ICU", "ward"),
    "renal_support": ("none", "dialysis", "CRRT"),
}


def scratch_environment(database_url: str) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "mipd_web.settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": "",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "testserver",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "LOG_LEVEL": "WARNING",
    }


def bulk_data(
    *, n_patients: int, n_levels: int, clinician: Any, version: Any, rng: np.random.Generator
) -> None:
    from scipy.special import ndtr

    from dosing.models import DrugLevel, TherapyCourse
    from patients.models import Patient
    from performance.models import ProspectiveScore

    patients = Patient.objects.bulk_create(
        [
            Patient(
                mrn=f"PERF-{i:06d}",
                mrn_key=f"PERF-{i:06d}",
                family_name=f"Family{i % 997}",
                given_name=f"Given{i % 331}",
                birth_date=dt.date(1930 + i % 70, 1 + i % 12, 1 + i % 28),
                sex="male" if i % 2 else "female",
                ward="ICU" if i % 3 == 0 else f"Ward {i % 20}",
                created_by=clinician,
            )
            for i in range(n_patients)
        ],
        batch_size=BATCH,
    )
    courses = TherapyCourse.objects.bulk_create(
        [
            TherapyCourse(
                patient=p,
                drug=version.drug,
                model_version=version,
                target={"metric": "auc24", "low": 400, "high": 600},
                indication="benchmark",
                opened_by=clinician,
            )
            for p in patients
        ],
        batch_size=BATCH,
    )
    now = dt.datetime.now(dt.UTC)
    course_of = rng.integers(0, len(courses), n_levels)
    median = np.exp(rng.normal(math.log(15.0), 0.3, n_levels))
    bands = {name: rng.integers(0, len(values), n_levels) for name, values in BANDS.items()}
    shift = np.where(bands["renal_band"] == 0, math.log(1.25), 0.0)  # CL 20 % lower in "<15 mL/min"
    observed = median * np.exp(shift + rng.normal(0.0, LOG_SD, n_levels))
    z50, z90 = 0.6744897501960817, 1.6448536269514722
    levels = [
        DrugLevel(
            course=courses[int(course_of[i])],
            sampled_at=now - dt.timedelta(minutes=n_levels - i),
            value=round(float(observed[i]), 3),
            unit="mg/L",
            value_model_unit=float(observed[i]),
            plausibility=DrugLevel.Plausibility.ACCEPTED,
            recorded_by=clinician,
        )
        for i in range(n_levels)
    ]
    levels = DrugLevel.objects.bulk_create(levels, batch_size=BATCH)
    pit = ndtr(np.log(observed / median) / LOG_SD)
    scores = []
    for i, level in enumerate(levels):
        m = float(median[i])
        o = float(observed[i])
        course = courses[int(course_of[i])]
        scores.append(
            ProspectiveScore(
                level=level,
                model_version=version,
                course=course,
                patient_id=course.patient_id,
                scored_at=level.sampled_at,
                sampled_at=level.sampled_at,
                basis="posterior" if i % 4 else "prior",
                accepted=True,
                output="conc",
                unit="mg/L",
                observed=o,
                predicted_median=m,
                pi50_low=m * math.exp(-z50 * LOG_SD),
                pi50_high=m * math.exp(z50 * LOG_SD),
                pi90_low=m * math.exp(-z90 * LOG_SD),
                pi90_high=m * math.exp(z90 * LOG_SD),
                error=o - m,
                relative_error=(o - m) / m,
                pit=float(pit[i]),
                renal_measure="CrCl (Cockcroft-Gault)",
                ancestry="",
                **{name: BANDS[name][int(bands[name][i])] for name in BANDS},
            )
        )
    ProspectiveScore.objects.bulk_create(scores, batch_size=BATCH)


def sequential_tests(version: Any) -> int:
    """Every subgroup's CUSUMs over its scores in scoring order, stored as the services leave them."""
    from django.utils import timezone

    from performance import sequential
    from performance.models import CusumTrack, PerformanceAlert, ProspectiveScore
    from performance.subgroups import DIMENSIONS

    rows = list(ProspectiveScore.objects.filter(model_version=version).order_by("scored_at", "pk").values())
    pits = np.array([r["pit"] for r in rows])
    alerts = 0
    for dimension in DIMENSIONS:
        column = np.array(["all" if dimension == "all" else r[dimension] for r in rows], dtype=object)
        for band in sorted({b for b in column if b and b != "not recorded"}):
            mask = column == band
            state, path = sequential.run(pits[mask])
            CusumTrack.objects.create(
                model_version=version,
                dimension=dimension,
                band=band,
                n_levels=state.n,
                bias_high=state.bias_high,
                bias_low=state.bias_low,
                dispersion=state.dispersion,
            )
            for k, test in enumerate(sequential.TESTS):
                crossed = np.flatnonzero(path[:, k] > sequential.THRESHOLD)
                if crossed.size:
                    alerts += 1
                    PerformanceAlert.objects.create(
                        model_version=version,
                        dimension=dimension,
                        band=band,
                        test=test,
                        statistic=float(path[crossed[0], k]),
                        threshold=sequential.THRESHOLD,
                        n_levels=int(crossed[0]) + 1,
                        raised_at=timezone.now(),
                    )
    return alerts


def time_page(client: Any, url: str, samples: int) -> tuple[list[float], int, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url)  # warm-up
    times = []
    for _ in range(samples):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - started)
    return times, len(queries.captured_queries), response.status_code


def measure(args: argparse.Namespace) -> None:
    clinician = django_with_library(("vancomycin-goti-2018.json",))
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import override_settings

    from audit.recorder import suspended
    from models_catalog.models import ModelVersion
    from performance.models import PerformanceAlert, ProspectiveScore
    from performance.services import summary_refresh
    from tests.auth import login

    version = ModelVersion.objects.published().get(model_id="vancomycin-goti-2018")
    rng = np.random.default_rng(args.seed)
    tic = time.perf_counter()
    with suspended():
        bulk_data(
            n_patients=args.patients, n_levels=args.levels, clinician=clinician, version=version, rng=rng
        )
        n_alerts = sequential_tests(version)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(
        f"bulk data: {time.perf_counter() - tic:.1f} s: {ProspectiveScore.objects.count():,} scored levels, "
        f"{args.patients:,} patients; {n_alerts} alert(s): "
        + ", ".join(f"{a.dimension} {a.band} {a.test}" for a in PerformanceAlert.objects.all())
    )
    refresh_s = []
    for _ in range(args.refreshes):
        started = time.perf_counter()
        summary = summary_refresh(model_version=version)
        refresh_s.append(time.perf_counter() - started)
    print(
        f"summary refresh ({len(summary.data['groups'])} subgroups, {summary.n_scores:,} levels): "
        f"median {np.median(refresh_s):.2f} s, max {max(refresh_s):.2f} s over {args.refreshes} runs"
    )
    curator = get_user_model().objects.get(username="demo-curator")
    client = Client()
    login(client, curator)
    pages = {
        "performance page": f"/performance/versions/{version.pk}/",
        "model card": f"/catalog/versions/{version.pk}/",
        "performance index": "/performance/",
    }
    print(
        f"\n{args.samples} requests per page after a warm-up; {os.cpu_count()} CPUs; load {os.getloadavg()}"
    )
    print(f"{'page':20} {'median ms':>10} {'p95 ms':>9} {'queries':>8} {'status':>7}")
    with override_settings(STORAGES=PLAIN_STATIC_STORAGES):
        for name, url in pages.items():
            times, n_queries, status = time_page(client, url, args.samples)
            ms = np.array(times) * 1000
            print(f"{name:20} {np.median(ms):10.1f} {np.percentile(ms, 95):9.1f} {n_queries:8d} {status:7d}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--levels", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--refreshes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database (its name is printed)")
    args = parser.parse_args()
    missing = services_missing(args.postgres, None)
    if missing:
        print(f"skipped: {missing}")
        return
    with scratch_database(args.postgres, "mipd_bench_perf", keep=args.keep) as url:
        os.environ.update(scratch_environment(url))
        measure(args)


if __name__ == "__main__":
    main()
