"""The harness of the fault tests: the worker side of a deployment in processes of its own (a prefork Celery
worker and beat, against the PostgreSQL test database and a Redis of the test's own), courses whose levels
queue updates through the API, and the checks that every update completed exactly once.

The worker holds every update's engine run open for ``ENGINE_DELAY_S`` (tests/faults/worker.py) and runs with
short limits (``TASK_TIME_LIMIT_S``, ``TASK_REDELIVERY_MARGIN_S``) so that a dead task is redelivered and a
stuck update reaped within seconds, not the production minutes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from dosing.models import BayesianUpdate, DrugLevel, Recommendation, TherapyCourse, UpdateDispatch
from mipd_web.celery import app as celery_app
from tests.faults.processes import REPO_ROOT, CeleryProcess, RedisServer, wait_for

Status = BayesianUpdate.Status
COURSES = "/api/v1/courses/"
# Every fault test: real PostgreSQL (the worker side shares the test database), transactions committed (the
# worker sees them), bounded in time.
FAULT_TEST_MARKS = [
    pytest.mark.faults,
    pytest.mark.services("postgresql"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(150),
]
ENGINE_DELAY_S = 1.0  # each update's engine run lasts at least this long (the engine itself takes seconds)
TASK_TIME_LIMIT_S = 20  # the hard limit of the test worker (production: 600 s)
REDELIVERY_MARGIN_S = 5  # visibility timeout and reaper limit: 25 s (production: 660 s)
FINISH_WITHIN_S = 60.0
# The web side (this process) and the worker side share their configuration, as in a deployment.
SHARED_SETTINGS: dict[str, Any] = {
    "TASK_TIME_LIMIT_S": TASK_TIME_LIMIT_S,
    "TASK_REDELIVERY_MARGIN_S": REDELIVERY_MARGIN_S,
    "HEALTHZ_BEAT_MAX_AGE_S": 30,  # beat sends its heartbeat every second; the worker may be busy for ~10 s
    "HEALTHZ_QUEUED_MAX_AGE_S": 30,
    "HEALTHZ_OUTBOX_MAX_AGE_S": 3,
    "HEALTHZ_TOKEN": "fault-tests-monitoring-token",
}


def _forget_broker_connections() -> None:
    """The connection and producer pools are bound to the broker they were made for: drop them."""
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@contextlib.contextmanager
def sending_to(server: RedisServer) -> Iterator[None]:
    """This process's Celery app (the web side: outbox delivery, /healthz) uses ``server`` as its broker."""
    previous = {key: celery_app.conf[key] for key in ("broker_url", "task_always_eager")}
    celery_app.conf.update(broker_url=server.url, task_always_eager=False)
    _forget_broker_connections()
    try:
        yield
    finally:
        celery_app.conf.update(previous)
        _forget_broker_connections()


def database_url() -> str:
    """The URL of the database this test process uses (the test database), for the processes it starts."""
    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@dataclass
class Stack:
    """The worker side of a deployment, in processes of its own; every process is stopped at the end."""

    directory: Path
    redis: RedisServer
    database_url: str
    processes: list[CeleryProcess] = field(default_factory=list)

    @property
    def marks(self) -> Path:
        return self.directory / "marks"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT),
            "PYTHONUNBUFFERED": "1",  # the logs are read when a test fails
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis.url,
            **{name: str(value) for name, value in SHARED_SETTINGS.items()},
            "BEAT_HEARTBEAT_EVERY_S": "1",
            "REAP_EVERY_S": "2",
            "OUTBOX_DISPATCH_EVERY_S": "1",
            "FAULTS_MARK_DIR": str(self.marks),
            "FAULTS_ENGINE_DELAY_S": str(ENGINE_DELAY_S),
        }

    def start_worker(self, name: str) -> CeleryProcess:
        worker = CeleryProcess.worker(name=name, env=self.env(), directory=self.directory)
        self.processes.append(worker)
        worker.start()
        # Start-up takes a few seconds, many more on a loaded machine (imports, Django set-up, the pool).
        wait_for(
            lambda: self.answers(name), timeout_s=60, what=f"worker {name} answering a ping\n{self.logs()}"
        )
        return worker

    def start_beat(self) -> CeleryProcess:
        beat = CeleryProcess.beat(env=self.env(), directory=self.directory)
        self.processes.append(beat)
        beat.start()
        return beat

    def answers(self, name: str) -> bool:
        try:
            replies = celery_app.control.inspect(timeout=0.5, destination=[f"{name}@faults"]).ping()
        except Exception:
            return False
        return bool(replies)

    def engine_runs(self, update_id: int, stage: str) -> list[int]:
        """The pids of the pool processes that reached ``stage`` (started, finished) of its engine run."""
        return sorted(int(path.name.rsplit("-", 1)[1]) for path in self.marks.glob(f"{stage}-{update_id}-*"))

    def wait_until_running(self, update_id: int, timeout_s: float = 30) -> int:
        """Wait until a pool process is inside the update's engine run; returns its pid."""
        wait_for(
            lambda: bool(self.engine_runs(update_id, "started")),
            timeout_s=timeout_s,
            what=f"update {update_id}'s engine run starting\n{self.logs()}",
            interval_s=0.02,
        )
        return self.engine_runs(update_id, "started")[-1]

    def logs(self) -> str:
        return "\n".join(process.log_tail() for process in self.processes)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


def api(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def open_courses(*, count: int, version: Any, user: Any) -> list[TherapyCourse]:
    """``count`` patients (weight, consent) in the ICU, each with a course on the published test model."""
    from dosing import services
    from patients import services as patient_services
    from patients.models import ConsentRecord

    courses = []
    for i in range(count):
        patient = patient_services.patient_create(
            mrn=f"FAULT-{i:03d}",
            family_name="Fault",
            given_name=f"Patient {i}",
            birth_date=dt.date(1960, 5, 17),
            sex="female",
            ward="ICU",
            user=user,
        )
        patient_services.measurement_record(
            patient=patient,
            kind="weight",
            value=60 + i,
            unit="kg",
            measured_at=timezone.now() - dt.timedelta(days=2),
            user=user,
        )
        patient_services.consent_record(
            patient=patient, scope=ConsentRecord.Scope.MODEL_BASED_DOSING, status="granted", user=user
        )
        courses.append(
            services.course_open(
                patient=patient,
                model_version=version,
                indication="test infection",
                target={"metric": "trough", "low": 5, "high": 10},
                user=user,
            )
        )
    return courses


def dose_body() -> dict[str, Any]:
    given_at = timezone.now() - dt.timedelta(hours=13)
    return {
        "given_at": given_at.isoformat(),
        "amount_mg": 1000,
        "route": "iv_infusion",
        "infusion_duration_h": 1,
    }


def level_body(value: float) -> dict[str, Any]:
    sampled_at = timezone.now() - dt.timedelta(hours=1, minutes=1)
    return {"sampled_at": sampled_at.isoformat(), "value": value, "unit": "mg/L"}


def post_dose(client: APIClient, course: TherapyCourse) -> None:
    response = client.post(f"{COURSES}{course.public_id}/doses/", dose_body(), format="json")
    assert response.status_code == 201, response.data


def post_level(client: APIClient, course: TherapyCourse, body: dict[str, Any], *, key: str = "") -> Any:
    """POST the level; with ``key``, as a retry-safe request (Idempotency-Key)."""
    extra = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(f"{COURSES}{course.public_id}/levels/", body, format="json", **extra)


def courses_with_levels(
    client: APIClient, *, count: int, with_level: int, version: Any, user: Any
) -> list[TherapyCourse]:
    """``count`` courses, each with a dose; the first ``with_level`` with a level too (its update queued)."""
    courses = open_courses(count=count, version=version, user=user)
    for course in courses:
        post_dose(client, course)
    for course in courses[:with_level]:
        assert post_level(client, course, level_body(6.2)).status_code == 201
    return courses


class UpdatesInFlight(NamedTuple):
    """Three courses with a dose each: the first's update running in the worker, the second's queued behind
    it, the third with no level yet."""

    running: TherapyCourse
    queued: TherapyCourse
    third: TherapyCourse
    cut_short: BayesianUpdate  # the running course's update, inside its engine run


def latest_update(course: TherapyCourse) -> BayesianUpdate:
    return course.updates.order_by("-pk").first()


def live_updates(courses: list[TherapyCourse]) -> list[BayesianUpdate]:
    """The updates that must complete: every one not superseded by newer data."""
    return list(
        BayesianUpdate.objects.filter(course__in=courses).exclude(status=Status.SUPERSEDED).order_by("pk")
    )


def wait_until_all_finished(
    courses: list[TherapyCourse], stack: Stack, timeout_s: float = FINISH_WITHIN_S
) -> None:
    def finished() -> bool:
        return all(update.is_finished for update in live_updates(courses))

    wait_for(
        finished,
        timeout_s=timeout_s,
        what=f"every update finished: {[(u.pk, u.status) for u in live_updates(courses)]}\n{stack.logs()}",
        interval_s=0.2,
    )


def assert_completed_exactly_once(courses: list[TherapyCourse], *, levels_per_course: int) -> None:
    """Every update not superseded succeeded once, with its results and its one recommendation; superseded
    ones hold nothing; the levels are there once each; nothing is owed to the broker any more."""
    states = [
        (u.course_id, u.pk, u.status, u.error) for u in BayesianUpdate.objects.filter(course__in=courses)
    ]
    for course in courses:
        assert DrugLevel.objects.filter(course=course).count() == levels_per_course
        updates = list(course.updates.order_by("pk"))
        assert updates, "the course queued no update"
        latest = updates[-1]
        assert latest.status == Status.SUCCEEDED, f"update {latest.pk} is not a success; all: {states}"
        for update in updates:
            assert update.is_finished, (update.pk, update.status)
            if update.status == Status.SUCCEEDED:
                assert update.error == ""
                assert update.results["recommendation"] and update.inputs_sha256
                assert update.started_at <= update.finished_at
                assert Recommendation.objects.filter(update=update).count() == 1
            else:  # superseded before it ran, or while it ran (results kept for the record only)
                assert update.status == Status.SUPERSEDED, (update.pk, update.status, update.error)
                assert not Recommendation.objects.filter(update=update).exists()
        pending = course.recommendations.filter(status=Recommendation.Status.PENDING_REVIEW)
        assert list(pending.values_list("update", flat=True)) == [latest.pk]
    assert not UpdateDispatch.objects.filter(update__course__in=courses, dispatched_at__isnull=True).exists()


def healthz(client: APIClient) -> tuple[int, dict[str, Any]]:
    """/healthz as monitoring reads it (the bearer token: every component), and how long it took."""
    started = time.monotonic()
    response = client.get("/healthz", HTTP_AUTHORIZATION=f"Bearer {SHARED_SETTINGS['HEALTHZ_TOKEN']}")
    return response.status_code, {**response.json(), "elapsed_s": round(time.monotonic() - started, 3)}


def wait_for_health(
    client: APIClient, expected: Callable[[int, dict[str, Any]], bool], *, what: str, timeout_s: float = 15
) -> dict[str, Any]:
    """Poll /healthz until it reports ``expected`` (the broker's state is cached 5 s); returns that answer.
    Every answer along the way must come within a second, whatever is down."""
    seen: list[tuple[int, dict[str, Any]]] = []

    def reported() -> bool:
        seen.append(healthz(client))
        assert seen[-1][1]["elapsed_s"] < 1.0, seen[-1]
        return expected(*seen[-1])

    try:
        wait_for(reported, timeout_s=timeout_s, what=f"/healthz reporting {what}", interval_s=0.5)
    except AssertionError as error:
        raise AssertionError(f"{error}; its last answer: {seen[-1] if seen else None}") from None
    return seen[-1][1]
