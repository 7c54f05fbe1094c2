"""Bayesian updates through Redis to a real Celery worker: enqueued after commit, run once, superseded when a
newer request comes before they start, and failed with the reason when the record cannot become a case.

The worker runs in a thread of the test process (``celery.contrib.testing.worker.start_worker``, solo pool:
one task at a time, in the order the broker hands them out) against the PostgreSQL test database.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from celery.worker import WorkController
from celery.worker import state as worker_state
from django.db import connection, transaction
from django.utils import timezone

from dosing import services
from dosing.models import BayesianUpdate, Recommendation
from dosing.tasks import run_bayesian_update
from health.services import heartbeat_request
from mipd_web.celery import app as celery_app

pytestmark = [
    pytest.mark.services("postgresql", "redis"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("role_groups"),
    pytest.mark.timeout(120),
]
Status = BayesianUpdate.Status
WAIT_S = 60.0


@pytest.fixture
def role_groups(transactional_db: None) -> None:
    """The role groups: created by a migration, but a transactional test's flush empties the table."""
    from django.contrib.auth.models import Group

    from accounts.roles import Role

    for role in Role:
        Group.objects.get_or_create(name=role.value)


@pytest.fixture
def celery_worker(role_groups: None) -> Iterator[WorkController]:
    """A real Celery worker in a thread, consuming from the Redis broker named by REDIS_URL."""
    assert connection.vendor == "postgresql"
    assert not celery_app.conf.task_always_eager
    celery_app.control.purge()
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30) as worker:
        yield worker


def wait_until_finished(update_id: int, timeout_s: float = WAIT_S) -> BayesianUpdate:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        update = BayesianUpdate.objects.get(pk=update_id)
        if update.is_finished:
            return update
        time.sleep(0.1)
    raise AssertionError(f"update {update_id} is still {update.status} after {timeout_s} s")


def wait_until_the_worker_is_idle(timeout_s: float = WAIT_S) -> None:
    """A heartbeat sent now is processed after every task sent before it (one worker, solo pool, FIFO)."""
    heartbeat = heartbeat_request()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        heartbeat.refresh_from_db()
        if heartbeat.processed_at is not None:
            return
        time.sleep(0.1)
    raise AssertionError(f"the worker did not reach heartbeat {heartbeat.pk} within {timeout_s} s")


def record_doses(course: Any, user: Any, *, start: dt.datetime, count: int = 3) -> None:
    for i in range(count):
        services.dose_record(
            course=course,
            given_at=start + dt.timedelta(hours=12 * i),
            amount_mg=1000,
            route="iv_infusion",
            infusion_duration_h=1,
            user=user,
        )


def test_a_recorded_level_is_run_by_the_worker_after_commit(
    celery_worker: WorkController, course: Any, clinician: Any
) -> None:
    start = timezone.now() - dt.timedelta(hours=30)
    with transaction.atomic():
        record_doses(course, clinician, start=start)
    wait_until_the_worker_is_idle()
    with transaction.atomic():
        services.level_record(
            course=course, sampled_at=start + dt.timedelta(hours=23.5), value=6.2, unit="mg/L", user=clinician
        )
        pending = course.updates.get(status=Status.QUEUED)
        # A task sent now would reach the worker before the row is visible to it: finding nothing to claim,
        # it would do nothing, and the update would stay queued for ever.
        time.sleep(0.5)

    update = wait_until_finished(pending.pk)

    assert update.status == Status.SUCCEEDED, update.error
    assert update.trigger == "new level"
    assert update.worker and update.started_at is not None and update.finished_at >= update.started_at
    assert update.results["plot"]["band_kind"] == "credible"
    assert update.results["plot"]["observations"][0]["value"] == pytest.approx(6.2)
    assert update.inputs_sha256 and update.engine_version
    assert Recommendation.objects.get(update=update).status == Recommendation.Status.PENDING_REVIEW


def test_a_second_delivery_of_a_finished_update_changes_nothing(
    celery_worker: WorkController, course: Any, clinician: Any
) -> None:
    start = timezone.now() - dt.timedelta(hours=30)
    with transaction.atomic():
        record_doses(course, clinician, start=start)
        services.level_record(
            course=course, sampled_at=start + dt.timedelta(hours=23.5), value=6.2, unit="mg/L", user=clinician
        )
    first = wait_until_finished(course.updates.order_by("-pk").first().pk)
    assert first.status == Status.SUCCEEDED, first.error

    received = worker_state.total_count[run_bayesian_update.name]
    run_bayesian_update.delay(update_id=first.pk)  # delivered again through the broker to the worker
    wait_until_the_worker_is_idle()
    assert worker_state.total_count[run_bayesian_update.name] == received + 1
    run_bayesian_update(update_id=first.pk)  # and run again in this process
    assert services.update_run(update_id=first.pk) is None  # the service says it did nothing

    again = BayesianUpdate.objects.get(pk=first.pk)
    assert (again.status, again.results, again.error) == (first.status, first.results, first.error)
    assert (again.started_at, again.finished_at, again.worker) == (
        first.started_at,
        first.finished_at,
        first.worker,
    )
    assert Recommendation.objects.filter(update=first).count() == 1


def test_a_newer_request_supersedes_a_queued_update_which_never_runs(
    celery_worker: WorkController, patient: Any, published_version: Any, clinician: Any
) -> None:
    start = timezone.now() - dt.timedelta(hours=30)
    with transaction.atomic():  # every request is queued before the worker sees the first one
        course = services.course_open(
            patient=patient,
            model_version=published_version,
            indication="test infection",
            target={"metric": "trough", "low": 5, "high": 10},
            user=clinician,
        )
        record_doses(course, clinician, start=start)
        services.level_record(
            course=course, sampled_at=start + dt.timedelta(hours=23.5), value=6.2, unit="mg/L", user=clinician
        )
        first = course.updates.get(status=Status.QUEUED)
        second = services.update_request(course=course, user=clinician, trigger="requested again")

    done = wait_until_finished(second.pk)
    wait_until_the_worker_is_idle()  # the deliveries of the superseded updates have been handled too

    assert done.status == Status.SUCCEEDED, done.error
    first.refresh_from_db()
    assert first.trigger == "new level"
    assert first.status == Status.SUPERSEDED
    assert first.finished_at is not None
    assert (first.started_at, first.worker, first.results) == (None, "", {})
    updates = course.updates.all()
    assert len(updates) == 6  # opened, three doses, the level, the request
    assert [u.pk for u in updates if u.status != Status.SUPERSEDED] == [second.pk]
    assert [u.pk for u in updates if u.results] == [second.pk]
    assert [u.pk for u in updates if u.started_at] == [second.pk]
    assert list(Recommendation.objects.filter(course=course).values_list("update", flat=True)) == [second.pk]


def test_an_update_without_the_weight_fails_with_the_reason(
    celery_worker: WorkController, course: Any, clinician: Any
) -> None:
    from patients import services as patient_services

    start = timezone.now() - dt.timedelta(hours=30)
    with transaction.atomic():
        record_doses(course, clinician, start=start)
        services.level_record(
            course=course, sampled_at=start + dt.timedelta(hours=23.5), value=6.2, unit="mg/L", user=clinician
        )
        weight = course.patient.measurements.get(kind="weight")
        patient_services.measurement_mark_in_error(
            measurement=weight, reason="another patient's weight", user=clinician
        )
    latest = course.updates.order_by("-pk").first()
    assert latest.trigger == "measurement entered in error"

    failed = wait_until_finished(latest.pk)

    assert failed.status == Status.FAILED
    assert failed.error == "missing patient data: WT needs a weight measurement (in kg)"
    assert failed.finished_at is not None
    assert failed.results == {  # no figures: the stop, with what to do
        "stop": {
            "code": "missing_data",
            "message": "missing patient data: WT needs a weight measurement (in kg)",
            "action": "Record the missing data on the patient page; the update then runs again by itself",
        }
    }
    assert not Recommendation.objects.filter(update=failed).exists()
