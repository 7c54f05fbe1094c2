"""Transient errors (the database or the broker briefly away) are retried after 2, 4, 8 and 16 s by the same
task, which takes its own claim over; an estimation failure is stored with its message and never retried.

Celery runs the task eagerly here, so the waits are read from the retries it asks for; the last test runs a
real worker through Redis and measures them.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from celery.exceptions import Retry
from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from dosing import adapters, claims, services, transient
from dosing.models import BayesianUpdate, Recommendation, UpdateDispatch
from dosing.tasks import run_bayesian_update
from mipd_engine.errors import EngineError
from mipd_web.celery import app as celery_app

Status = BayesianUpdate.Status


@pytest.fixture
def eager_without_propagation() -> Iterator[None]:
    """Tasks in process, their failures kept in the result (as a worker does) so that retries run."""
    previous = {key: celery_app.conf[key] for key in ("task_always_eager", "task_eager_propagates")}
    celery_app.conf.update(task_always_eager=True, task_eager_propagates=False)
    try:
        yield
    finally:
        celery_app.conf.update(previous)


@pytest.fixture
def queued(dosed_course: Any, clinician: Any) -> BayesianUpdate:
    services.level_record(
        course=dosed_course,
        sampled_at=timezone.now() - dt.timedelta(hours=2),
        value=6.5,
        unit="mg/L",
        user=clinician,
    )
    return dosed_course.updates.order_by("-pk").first()


@pytest.fixture
def countdowns(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The wait of every retry Celery scheduled (the last call, past max_retries, re-raises the error)."""
    asked: list[float] = []
    real_retry = run_bayesian_update.retry

    def spy(*args: Any, **kwargs: Any) -> Any:
        try:
            return real_retry(*args, **kwargs)
        except Retry:
            asked.append(kwargs["countdown"])
            raise

    monkeypatch.setattr(run_bayesian_update, "retry", spy)
    return asked


def failing_first(monkeypatch: pytest.MonkeyPatch, error: Exception, times: int) -> list[float]:
    """``adapters.course_case`` (the first read after the claim) raises ``error`` ``times`` times."""
    real = adapters.course_case
    calls: list[float] = []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(time.monotonic())
        if len(calls) <= times:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(adapters, "course_case", flaky)
    return calls


def test_the_waits_are_2_4_8_16_s() -> None:
    assert transient.retry_delays_s() == [2, 4, 8, 16]
    assert (run_bayesian_update.max_retries, run_bayesian_update.retry_jitter) == (4, False)


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_without_propagation")
@pytest.mark.parametrize(
    "error",
    [
        OperationalError("server closed the connection unexpectedly"),
        InterfaceError("connection already closed"),
        BrokerOperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
        RedisConnectionError("Connection reset by peer"),
    ],
    ids=lambda error: type(error).__module__.split(".")[0] + "." + type(error).__name__,
)
def test_a_transient_error_is_retried_and_the_update_completes_once(
    queued: BayesianUpdate, countdowns: list[float], monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    failing_first(monkeypatch, error, times=2)

    result = run_bayesian_update.apply(kwargs={"update_id": queued.pk}, task_id="task-retried")

    assert result.state == "SUCCESS"
    assert countdowns == [2, 4]
    row = BayesianUpdate.objects.get(pk=queued.pk)
    assert row.status == Status.SUCCEEDED, row.error
    assert (row.task_id, row.attempts) == ("task-retried", 3)  # each retry took its own claim over
    assert Recommendation.objects.filter(update=queued).count() == 1


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_without_propagation")
def test_a_database_away_through_every_retry_fails_the_update_with_the_reason(
    queued: BayesianUpdate, countdowns: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    failing_first(monkeypatch, OperationalError("could not connect to server at 10.0.0.5"), times=99)

    result = run_bayesian_update.apply(kwargs={"update_id": queued.pk}, task_id="task-down")

    assert result.state == "FAILURE" and isinstance(result.result, OperationalError)
    assert countdowns == [2, 4, 8, 16]
    row = BayesianUpdate.objects.get(pk=queued.pk)
    assert (row.status, row.attempts, row.claim_token) == (Status.FAILED, 5, None)
    assert row.error.startswith(
        "stopped after 5 attempts (last: the database was unavailable (OperationalError)): "
    )
    assert "10.0.0.5" not in row.error


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_without_propagation")
def test_with_attempts_left_the_update_is_queued_again_through_the_outbox(
    queued: BayesianUpdate, countdowns: list[float], monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.UPDATE_MAX_ATTEMPTS = 8
    failing_first(monkeypatch, BrokerOperationalError("Connection refused"), times=99)
    UpdateDispatch.objects.filter(update=queued).update(dispatched_at=timezone.now())

    run_bayesian_update.apply(kwargs={"update_id": queued.pk}, task_id="task-broker")

    row = BayesianUpdate.objects.get(pk=queued.pk)
    assert (row.status, row.attempts, row.task_id, row.claim_token) == (Status.QUEUED, 5, "", None)
    dispatch = UpdateDispatch.objects.get(update=queued)
    assert dispatch.dispatched_at is None
    assert dispatch.last_error == "requeued: the broker was unavailable (OperationalError)"


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_without_propagation")
def test_a_database_away_before_the_claim_leaves_the_update_queued(
    queued: BayesianUpdate, countdowns: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(**kwargs: Any) -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(claims, "update_claim", down)
    result = run_bayesian_update.apply(kwargs={"update_id": queued.pk}, task_id="task-early")

    assert result.state == "FAILURE" and countdowns == [2, 4, 8, 16]
    row = BayesianUpdate.objects.get(pk=queued.pk)
    assert (row.status, row.attempts) == (Status.QUEUED, 0)  # the reaper sends it again


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_without_propagation")
def test_an_estimation_failure_is_stored_with_its_message_and_not_retried(
    queued: BayesianUpdate, countdowns: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def refuses(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        raise EngineError("the objective is not finite at the start values")

    monkeypatch.setattr(services, "recommend_case", refuses)

    result = run_bayesian_update.apply(kwargs={"update_id": queued.pk}, task_id="task-engine")

    assert result.state == "SUCCESS" and countdowns == [] and calls == [1]
    row = BayesianUpdate.objects.get(pk=queued.pk)
    assert (row.status, row.attempts) == (Status.FAILED, 1)
    assert row.error == "the engine refused the case: the objective is not finite at the start values"


@pytest.fixture
def role_groups(transactional_db: None) -> None:
    from django.contrib.auth.models import Group

    from accounts.roles import Role

    for role in Role:
        Group.objects.get_or_create(name=role.value)


@pytest.mark.services("postgresql", "redis")
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(120)
def test_a_real_worker_waits_2_then_4_s_between_tries(
    role_groups: None, queued: BayesianUpdate, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert connection.vendor == "postgresql" and not celery_app.conf.task_always_eager
    calls = failing_first(monkeypatch, OperationalError("terminating connection"), times=2)
    celery_app.control.purge()
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        run_bayesian_update.apply_async(kwargs={"update_id": queued.pk}, task_id="task-real")
        deadline = time.monotonic() + 60
        while not BayesianUpdate.objects.get(pk=queued.pk).is_finished and time.monotonic() < deadline:
            time.sleep(0.1)

    row = BayesianUpdate.objects.get(pk=queued.pk)
    assert row.status == Status.SUCCEEDED, row.error
    assert row.attempts == 3
    gaps = [calls[1] - calls[0], calls[2] - calls[1]]
    # The broker hands the retry out at its ETA; the worker's timer fires within about a second of it.
    assert 2.0 <= gaps[0] < 3.5 and 4.0 <= gaps[1] < 5.5, gaps
