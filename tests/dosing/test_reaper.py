"""The reaper: an update running past its limit is queued again through the outbox once per attempt, and
failed with the reason once out of attempts; one delivered and unclaimed past its limit is sent again and
keeps its attempts (waiting in a long queue is no attempt); nothing else is touched."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from dosing import claims, services
from dosing.models import BayesianUpdate, UpdateDispatch
from dosing.outbox import outbox_pending_ids

pytestmark = pytest.mark.django_db
Status = BayesianUpdate.Status


def ago(seconds: float) -> dt.datetime:
    return timezone.now() - dt.timedelta(seconds=seconds)


@pytest.fixture
def update(course: Any, clinician: Any) -> BayesianUpdate:
    """The newest update of the course, queued and delivered to the broker just now."""
    update = services.update_request(course=course, user=clinician, trigger="test")
    UpdateDispatch.objects.filter(update=update).update(dispatched_at=timezone.now(), last_error="")
    return update


def running_since(update: BayesianUpdate, seconds: float, *, task_id: str = "task-a") -> BayesianUpdate:
    claimed = claims.update_claim(update_id=update.pk, task_id=task_id)
    assert claimed is not None
    BayesianUpdate.objects.filter(pk=update.pk).update(started_at=ago(seconds))
    return claimed


def state(update: BayesianUpdate) -> tuple[str, int, str, Any]:
    row = BayesianUpdate.objects.get(pk=update.pk)
    return row.status, row.attempts, row.task_id, row.claim_token


def test_an_update_running_past_its_limit_is_requeued_through_the_outbox_once(
    update: BayesianUpdate,
) -> None:
    limit_s = claims.stale_after().total_seconds()
    assert limit_s == 660  # TASK_TIME_LIMIT_S 600 + TASK_REDELIVERY_MARGIN_S 60
    dead = running_since(update, limit_s + 5)

    assert claims.updates_reap() == {"requeued": 1, "failed": 0}

    assert state(update) == (Status.QUEUED, 1, "", None)
    dispatch = UpdateDispatch.objects.get(update=update)
    assert dispatch.pk in outbox_pending_ids()
    assert dispatch.last_error == "requeued: its worker stopped (still running past the 600 s limit)"
    assert claims.fenced(dead).count() == 0  # the dead run, were it alive, can no longer write
    assert claims.updates_reap() == {"requeued": 0, "failed": 0}  # once per attempt

    # Delivered again and claimed by a new task: its own attempt, reaped again only when it is stuck too.
    UpdateDispatch.objects.filter(update=update).update(dispatched_at=timezone.now())
    running_since(update, 10, task_id="task-b")
    assert claims.updates_reap() == {"requeued": 0, "failed": 0}
    BayesianUpdate.objects.filter(pk=update.pk).update(started_at=ago(limit_s + 5))
    assert claims.updates_reap() == {"requeued": 1, "failed": 0}
    assert state(update)[:2] == (Status.QUEUED, 2)


NOT_CLAIMED = (
    "requeued: delivered, not claimed by a worker within 660 s (a long queue, or the broker lost it): sent "
    "again, no attempt counted"
)


def test_an_update_delivered_and_unclaimed_past_its_limit_is_sent_again_and_keeps_its_attempts(
    update: BayesianUpdate,
) -> None:
    UpdateDispatch.objects.filter(update=update).update(dispatched_at=ago(665))

    assert claims.updates_reap() == {"requeued": 1, "failed": 0}

    assert state(update) == (Status.QUEUED, 0, "", None)
    dispatch = UpdateDispatch.objects.get(update=update)
    assert dispatch.dispatched_at is None
    assert dispatch.last_error == NOT_CLAIMED
    assert claims.updates_reap() == {"requeued": 0, "failed": 0}  # pending delivery: the outbox's, not stuck


def test_an_update_waiting_behind_others_for_hours_is_never_failed_and_runs_as_its_first_attempt(
    update: BayesianUpdate, settings: Any
) -> None:
    """A busy round: the queue is longer than the limit many times over. Each reaper pass finds the update
    delivered and unclaimed and sends it again; none of that costs an attempt."""
    passes = settings.UPDATE_MAX_ATTEMPTS + 3
    for _ in range(passes):
        UpdateDispatch.objects.filter(update=update).update(dispatched_at=ago(665), last_error="")
        assert claims.updates_reap() == {"requeued": 1, "failed": 0}
        assert state(update)[:2] == (Status.QUEUED, 0)
    UpdateDispatch.objects.filter(update=update).update(dispatched_at=timezone.now())

    claimed = claims.update_claim(update_id=update.pk, task_id="task-a")  # a copy reaches a worker at last

    assert claimed is not None and (claimed.status, claimed.attempts) == (Status.RUNNING, 1)
    assert claims.update_claim(update_id=update.pk, task_id="task-b") is None  # the other copies: no-ops
    assert state(update)[:3] == (Status.RUNNING, 1, "task-a")


def test_updates_within_their_limit_or_waiting_for_the_broker_are_left_alone(
    course: Any, clinician: Any
) -> None:
    fresh_run, fresh_delivery, pending = (
        services.update_request(course=course, user=clinician, trigger=t) for t in ("run", "sent", "pending")
    )
    BayesianUpdate.objects.filter(pk__in=(fresh_run.pk, fresh_delivery.pk)).update(status=Status.QUEUED)
    running_since(fresh_run, 655)
    UpdateDispatch.objects.filter(update=fresh_delivery).update(dispatched_at=ago(655))
    UpdateDispatch.objects.filter(update=pending).update(created_at=ago(3600))  # Redis down for an hour
    before = list(BayesianUpdate.objects.values().order_by("pk"))

    assert claims.updates_reap() == {"requeued": 0, "failed": 0}

    assert list(BayesianUpdate.objects.values().order_by("pk")) == before


def test_out_of_attempts_a_stuck_update_fails_with_the_reason(course: Any, clinician: Any) -> None:
    dead_run, lost = (services.update_request(course=course, user=clinician, trigger=t) for t in "ab")
    BayesianUpdate.objects.filter(pk=dead_run.pk).update(
        status=Status.RUNNING, started_at=ago(700), attempts=5, task_id="task-a"
    )
    BayesianUpdate.objects.filter(pk=lost.pk).update(status=Status.QUEUED, attempts=4)
    UpdateDispatch.objects.filter(update=lost).update(dispatched_at=ago(700))

    assert claims.updates_reap() == {"requeued": 1, "failed": 1}

    dead_run.refresh_from_db()
    lost.refresh_from_db()
    assert (dead_run.status, dead_run.attempts, lost.status, lost.attempts) == (
        Status.FAILED,
        5,
        Status.QUEUED,  # waiting costs no attempt: its fifth is the claim's, when a copy reaches a worker
        4,
    )
    assert dead_run.error.startswith(
        "stopped after 5 attempts (last: its worker stopped (still running past the 600 s limit)): "
    )
    assert dead_run.finished_at is not None and lost.finished_at is None
    assert claims.updates_reap() == {"requeued": 0, "failed": 0}
    assert claims.update_claim(update_id=lost.pk, task_id="task-b").attempts == 5


def test_the_limit_follows_the_settings(update: BayesianUpdate, settings: Any) -> None:
    settings.TASK_TIME_LIMIT_S = 120
    settings.TASK_REDELIVERY_MARGIN_S = 15
    running_since(update, 130)
    assert claims.updates_reap() == {"requeued": 0, "failed": 0}
    BayesianUpdate.objects.filter(pk=update.pk).update(started_at=ago(136))
    assert claims.updates_reap() == {"requeued": 1, "failed": 0}
    assert UpdateDispatch.objects.get(update=update).last_error.endswith("past the 120 s limit)")


@pytest.mark.usefixtures("celery_eager")
def test_the_requeued_update_then_runs_once(
    dosed_course: Any, clinician: Any, django_capture_on_commit_callbacks: Any
) -> None:
    update = dosed_course.updates.order_by("-pk").first()
    running_since(update, 700)
    with django_capture_on_commit_callbacks(execute=True):
        assert claims.updates_reap() == {"requeued": 1, "failed": 0}  # delivered on commit, run in process

    row = BayesianUpdate.objects.get(pk=update.pk)
    assert (row.status, row.attempts) == (Status.SUCCEEDED, 2), row.error
    assert UpdateDispatch.objects.get(update=update).dispatched_at is not None
