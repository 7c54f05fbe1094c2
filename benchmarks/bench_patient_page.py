"""Patient and course page server time with 10,000 patients and 100,000 levels in PostgreSQL.

A scratch PostgreSQL database is created and migrated, the model library loaded, and one course is recorded
through the services so that its Bayesian update (run in process) gives real results: the plot with its
credible bands, the recommendation and its candidates. Then ``--patients`` patients are bulk-created with
weight, height, three creatinine values, a consent (and a genotype for one in ten), one course each (two for
one in ten) on vancomycin (Goti 2018), doses every 12 h, ``--levels`` levels spread over the courses, one
Bayesian update per level plus the a-priori one, and a recommendation per course. The updates of the courses
that are timed carry the real results, each with its recommendation (the older ones superseded), as a course
recorded through the services does; the other courses carry none (they are never shown).

For ``--samples`` random patients, the requests of a clinician's morning round (``bench_morning_round.py``):
the patient page (``/patients/<id>/``), the page of its latest course (``/courses/<id>/``), its results
panel (``results/``), its status poll (``status.json``) and its recommendations in the API
(``/api/v1/courses/<id>/recommendations/``) are fetched with the Django test client (settings as in
production, DEBUG off), after one warm-up request each, with the audit trail on (each read is an entry,
chained at commit) and off (``audit.recorder.suspended``, for this comparison only), alternating.
Prints the median and the 95th percentile of the server time (the test client's
request, i.e. URL routing, views, queries and template rendering, without the network), of this process's
CPU time over it (the web server's share of the CPU; PostgreSQL's own is not counted) and the number of SQL
queries per page (``CaptureQueriesContext``); ``--profile N`` adds each page's N costliest functions
(cProfile, cumulative). The scratch database is dropped at the end.

    python benchmarks/bench_patient_page.py [--patients 10000] [--levels 100000] [--samples 50]
        [--postgres postgresql://postgres@127.0.0.1:5432] [--prefix mipd_bench_pages] [--keep] [--profile N]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import io
import os
import pstats
import secrets
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent

from _scratch_services import PLAIN_STATIC_STORAGES, django_with_library, scratch_database, services_missing  # noqa: E402 (a sibling module)

BATCH = 5000


def scratch_environment(database_url: str) -> dict[str, str]:
    """Production settings (DEBUG off) on the scratch database; Celery tasks run in process (no REDIS_URL)."""
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


def real_update(clinician: Any, version: Any, protocol: Any, now: dt.datetime) -> Any:
    """One course recorded through the services; its update runs in process and gives real results."""
    from django.db import transaction

    from dosing import services as dosing
    from patients import services as patients
    from patients.models import ConsentRecord

    first = now - dt.timedelta(hours=62)
    with transaction.atomic():
        patient = patients.patient_create(
            mrn="REAL-0001",
            family_name="Reference",
            given_name="Course",
            birth_date=dt.date(1961, 3, 4),
            sex="male",
            user=clinician,
        )
        for kind, value, unit in (
            ("weight", 84, "kg"),
            ("height", 176, "cm"),
            ("serum_creatinine", 1.1, "mg/dL"),
        ):
            patients.measurement_record(
                patient=patient, kind=kind, value=value, unit=unit, measured_at=first, user=clinician
            )
        patients.consent_record(
            patient=patient, scope=ConsentRecord.Scope.MODEL_BASED_DOSING, status="granted", user=clinician
        )
        course = dosing.course_open(
            patient=patient,
            no_organ_support_confirmed=True,  # no dialysis, CRRT or ECMO
            model_version=version,
            target_protocol=protocol,
            indication="bench",
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
        for after_h, value in ((47.5, 15.2), (50.0, 31.0)):
            dosing.level_record(
                course=course,
                sampled_at=first + dt.timedelta(hours=after_h),
                value=value,
                unit="mg/L",
                user=clinician,
            )
    update = course.updates.order_by("-pk").first()
    if update.status != update.Status.SUCCEEDED:
        raise SystemExit(f"the reference update did not succeed: {update.status} {update.error}")
    return update


def bulk_data(
    *,
    n_patients: int,
    n_levels: int,
    sampled_index: set[int],
    clinician: Any,
    version: Any,
    protocol: Any,
    reference: Any,
    now: dt.datetime,
    rng: np.random.Generator,
) -> set[int]:
    """Patients and their records with bulk_create (benchmark data: the services are not the point here).

    Returns the ids of the patients at ``sampled_index``, whose latest course carries the real results.
    """
    from dosing.models import BayesianUpdate, DoseAdministration, DrugLevel, Recommendation, TherapyCourse
    from patients.models import ConsentRecord, CovariateMeasurement, Genotype, Patient

    recommendation = reference.recommendation
    patients = Patient.objects.bulk_create(
        [
            Patient(
                mrn=f"BENCH-{i:06d}",
                mrn_key=f"BENCH-{i:06d}",
                family_name=f"Family{i % 997}",
                given_name=f"Given{i % 331}",
                birth_date=dt.date(1930 + i % 80, 1 + i % 12, 1 + i % 28),
                sex="male" if i % 2 else "female",
                ward=f"Ward {i % 20}",
                created_by=clinician,
            )
            for i in range(n_patients)
        ],
        batch_size=BATCH,
    )
    sampled = {patients[i].pk for i in sampled_index}
    measurements, consents, genotypes, courses = [], [], [], []
    for i, patient in enumerate(patients):
        start = now - dt.timedelta(days=int(rng.integers(3, 700)))
        for kind, value, unit, day in (
            ("weight", round(float(rng.normal(78, 15)), 1), "kg", 0),
            ("height", round(float(rng.normal(172, 9))), "cm", 0),
            ("serum_creatinine", round(float(rng.uniform(0.6, 1.6)), 2), "mg/dL", 0),
            ("serum_creatinine", round(float(rng.uniform(0.6, 1.6)), 2), "mg/dL", 1),
            ("serum_creatinine", round(float(rng.uniform(0.6, 1.6)), 2), "mg/dL", 2),
        ):
            measurements.append(
                CovariateMeasurement(
                    patient=patient,
                    kind=kind,
                    value=value,
                    unit=unit,
                    value_as_entered=value,
                    unit_as_entered=unit,
                    measured_at=start + dt.timedelta(days=day),
                    recorded_by=clinician,
                )
            )
        consents.append(
            ConsentRecord(
                patient=patient,
                scope=ConsentRecord.Scope.MODEL_BASED_DOSING,
                status=ConsentRecord.Status.GRANTED,
                recorded_by=clinician,
            )
        )
        if i % 10 == 0:
            genotypes.append(
                Genotype(
                    patient=patient,
                    gene="CYP2C19",
                    diplotype="*1/*2",
                    phenotype="Intermediate Metabolizer",
                    phenotype_source="benchmark row",
                    lab="bench",
                    reported_on=start.date(),
                    recorded_by=clinician,
                )
            )
        for _ in range(2 if i % 10 == 5 else 1):
            courses.append(
                TherapyCourse(
                    patient=patient,
                    drug=version.drug,
                    model_version=version,
                    target_protocol=protocol,
                    target=protocol.target,
                    indication="benchmark",
                    opened_by=clinician,
                )
            )
    CovariateMeasurement.objects.bulk_create(measurements, batch_size=BATCH)
    ConsentRecord.objects.bulk_create(consents, batch_size=BATCH)
    Genotype.objects.bulk_create(genotypes, batch_size=BATCH)
    courses = TherapyCourse.objects.bulk_create(courses, batch_size=BATCH)
    # Levels spread over the courses (at least one each), doses every 12 h covering them.
    per_course = rng.multinomial(n_levels - len(courses), np.ones(len(courses)) / len(courses)) + 1
    sampled_courses = {course.pk for course in courses if course.patient_id in sampled}
    doses, levels, updates = [], [], []
    for course, n in zip(courses, per_course, strict=True):
        first = now - dt.timedelta(hours=12 * int(n) + 14)
        n_doses = int(n) + 1
        for k in range(n_doses):
            doses.append(
                DoseAdministration(
                    course=course,
                    given_at=first + dt.timedelta(hours=12 * k),
                    amount_mg=1000.0,
                    route="iv_infusion",
                    infusion_duration_h=2.0,
                    recorded_by=clinician,
                )
            )
        for k in range(int(n)):
            value = round(float(rng.lognormal(np.log(15), 0.3)), 1)
            levels.append(
                DrugLevel(
                    course=course,
                    sampled_at=first + dt.timedelta(hours=12 * k + 11.5),
                    value=value,
                    unit="mg/L",
                    value_model_unit=value,
                    recorded_by=clinician,
                )
            )
        for k in range(int(n) + 1):
            sampled_course = course.pk in sampled_courses
            updates.append(
                BayesianUpdate(
                    course=course,
                    status=BayesianUpdate.Status.SUCCEEDED,
                    trigger="new level" if k else "course opened (a priori)",
                    requested_by=clinician,
                    model_version=version,
                    started_at=now,
                    finished_at=now,
                    origin=first,
                    # The timed courses carry real results on every update, as a recorded course does.
                    results=reference.results if sampled_course else {},
                    timings_s=reference.timings_s,
                    engine_version=reference.engine_version,
                )
            )
    DoseAdministration.objects.bulk_create(doses, batch_size=BATCH)
    DrugLevel.objects.bulk_create(levels, batch_size=BATCH)
    updates = BayesianUpdate.objects.bulk_create(updates, batch_size=1000)
    latest_by_course = {update.course_id: update for update in updates}  # the last one of each course
    # Each update of a timed course gave a recommendation, the older ones superseded (as the services do);
    # the other courses have only their latest one.
    recommended = [
        update
        for update in updates
        if update.course_id in sampled_courses or latest_by_course[update.course_id] is update
    ]
    Recommendation.objects.bulk_create(
        [
            Recommendation(
                course_id=update.course_id,
                update=update,
                status=Recommendation.Status.PENDING_REVIEW
                if latest_by_course[update.course_id] is update
                else Recommendation.Status.SUPERSEDED,
                basis=recommendation.basis,
                regimen=recommendation.regimen,
                predicted=recommendation.predicted,
                probability_of_target=recommendation.probability_of_target,
                rationale=recommendation.rationale,
                uncertainty_text=recommendation.uncertainty_text,
                warnings=recommendation.warnings,
                candidates=recommendation.candidates if update.course_id in sampled_courses else [],
            )
            for update in recommended
        ],
        batch_size=BATCH,
    )
    return sampled


def time_page(
    client: Any, url: str, repeats: int, profile: cProfile.Profile | None = None
) -> tuple[list[float], list[float], int, int]:
    """Server wall and CPU times (this process: the view, ORM and templates, not PostgreSQL's own)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url)  # warm-up: template loading, connection
    times, cpu = [], []
    for _ in range(repeats):
        with CaptureQueriesContext(connection) as queries:
            started, started_cpu = time.perf_counter(), time.process_time()
            if profile is not None:
                profile.enable()
            response = client.get(url)
            if profile is not None:
                profile.disable()
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
    return times, cpu, len(queries.captured_queries), response.status_code


def measure(args: argparse.Namespace) -> None:
    clinician = django_with_library()
    from django.db import connection
    from django.test import Client
    from django.test.utils import override_settings
    from django.utils import timezone

    from audit.recorder import suspended
    from dosing.models import BayesianUpdate, DrugLevel, TherapyCourse
    from models_catalog.models import ModelVersion, TargetProtocol
    from patients.models import Patient

    version = ModelVersion.objects.published().get(model_id="vancomycin-goti-2018")
    protocol = TargetProtocol.objects.filter(drug=version.drug, target__metric="auc24").first()
    now = timezone.now()
    tic = time.perf_counter()
    reference = real_update(clinician, version, protocol, now)
    print(f"reference update: {time.perf_counter() - tic:.1f} s ({len(str(reference.results)):,} characters)")
    rng = np.random.default_rng(args.seed)
    sampled_index = rng.choice(args.patients, size=min(args.samples, args.patients), replace=False)
    tic = time.perf_counter()
    with suspended():  # the bulk set-up is not what is measured; the page reads below are audited (or not)
        sampled = bulk_data(
            n_patients=args.patients,
            n_levels=args.levels,
            sampled_index={int(i) for i in sampled_index},
            clinician=clinician,
            version=version,
            protocol=protocol,
            reference=reference,
            now=now,
            rng=rng,
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(
        f"bulk data: {time.perf_counter() - tic:.1f} s: {Patient.objects.count():,} patients, "
        f"{TherapyCourse.objects.count():,} courses, {DrugLevel.objects.count():,} levels, "
        f"{BayesianUpdate.objects.count():,} updates"
    )
    client = Client()
    client.force_login(clinician)  # the demo clinician: no second factor, a hospital-wide care team
    pages = ("patient page", "course page", "results panel", "status poll", "API recommendations")
    profiles = {page: cProfile.Profile() for page in pages} if args.profile else {}
    results: dict[str, dict[str, list[float]]] = {
        f"{page}, audit {mode}": {} for page in pages for mode in ("on", "off")
    }
    bad: list[str] = []
    with override_settings(STORAGES=PLAIN_STATIC_STORAGES):
        for turn, patient_pk in enumerate(sorted(sampled)):
            patient = Patient.objects.get(pk=patient_pk)
            course = TherapyCourse.objects.filter(patient_id=patient_pk).order_by("-pk").first()
            urls = {
                "patient page": f"/patients/{patient.public_id}/",
                "course page": f"/courses/{course.public_id}/",
                "results panel": f"/courses/{course.public_id}/results/",
                "status poll": f"/courses/{course.public_id}/status.json",
                "API recommendations": f"/api/v1/courses/{course.public_id}/recommendations/",
            }
            # on and off alternate in order from one patient to the next: the shared CPU's load hits both
            modes = ("on", "off") if turn % 2 == 0 else ("off", "on")
            for page in pages:
                for mode in modes:
                    with contextlib.nullcontext() if mode == "on" else suspended():
                        profile = profiles.get(page) if mode == "on" else None
                        times, cpu, n_queries, status = time_page(client, urls[page], args.repeats, profile)
                    if status != 200:
                        bad.append(f"{urls[page]}: HTTP {status}")
                    results[f"{page}, audit {mode}"].setdefault("ms", []).extend(t * 1000 for t in times)
                    results[f"{page}, audit {mode}"].setdefault("cpu_ms", []).extend(t * 1000 for t in cpu)
                    results[f"{page}, audit {mode}"].setdefault("queries", []).append(n_queries)
    print(
        f"\n{len(sampled)} random patients, {args.repeats} request(s) each after a warm-up; "
        f"{os.cpu_count()} CPUs on this machine"
    )
    print(
        f"{'page':32} {'median ms':>10} {'p95 ms':>9} {'CPU median':>11} {'CPU p95':>8} "
        f"{'queries (min-max)':>18}"
    )
    for page, values in results.items():
        ms, cpu_ms = np.array(values["ms"]), np.array(values["cpu_ms"])
        queries = values["queries"]
        print(
            f"{page:32} {np.median(ms):10.1f} {np.percentile(ms, 95):9.1f} {np.median(cpu_ms):11.1f} "
            f"{np.percentile(cpu_ms, 95):8.1f} {f'{min(queries)}-{max(queries)}':>18}"
        )
    print(f"load average (1, 5, 15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for page in pages:
        on, off = (np.median(results[f"{page}, audit {mode}"]["ms"]) for mode in ("on", "off"))
        print(f"{page}: auditing adds {on - off:+.1f} ms to the median ({100 * (on - off) / off:+.0f} %)")
    for line in bad:
        print(f"FAILED {line}")
    for page, profile in profiles.items():
        print(f"\nprofile of {page} (audit on), the {args.profile} functions of most cumulative time:")
        stream = io.StringIO()
        pstats.Stats(profile, stream=stream).sort_stats("cumulative").print_stats(args.profile)
        print(stream.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--levels", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=50, help="random patients whose pages are timed")
    parser.add_argument("--repeats", type=int, default=1, help="timed requests per page after the warm-up")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432",
        help="PostgreSQL server URL without a database name; a scratch database is created and dropped",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch database (its name is printed)")
    parser.add_argument("--prefix", default="mipd_bench_pages", help="scratch database name prefix")
    parser.add_argument(
        "--profile", type=int, default=0, help="print the N functions of most cumulative time of each page"
    )
    args = parser.parse_args()
    missing = services_missing(args.postgres, None)
    if missing:
        print(f"skipped: {missing}")
        return
    with scratch_database(args.postgres, args.prefix, keep=args.keep) as url:
        os.environ.update(scratch_environment(url))
        measure(args)


if __name__ == "__main__":
    main()
