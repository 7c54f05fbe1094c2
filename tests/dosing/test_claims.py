"""Exactly-once claims: a duplicate delivery writes nothing, a run that lost its claim cannot write, the same
task delivered again takes its claim over, and an update out of attempts fails with the reason."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from dosing import claims, services
from dosing.models import BayesianUpdate, DrugLevel, Recommendation
from dosing.tasks import run_bayesian_update

pytestmark = pytest.mark.django_db
Status = BayesianUpdate.Status
WRITTEN = (
    "status",
    "results",
    "error",
    "inputs_sha256",
    "timings_s",
    "finished_at",
    "attempts",
    "claim_token",
)


@pytest.fixture
def queued(dosed_course: Any, clinician: Any) -> BayesianUpdate:
    """The update asked for by a level, queued (on-commit delivery does not run in these tests)."""
    services.level_record(
        course=dosed_course,
        sampled_at=timezone.now() - dt.timedelta(hours=2),
        value=6.5,
        unit="mg/L",
        user=clinician,
    )
    update = dosed_course.updates.order_by("-pk").first()
    assert update.status == Status.QUEUED and update.attempts == 0
    return update


def written(update: BayesianUpdate) -> dict[str, Any]:
    return BayesianUpdate.objects.values(*WRITTEN).get(pk=update.pk)


def test_a_duplicate_delivery_writes_once(queued: BayesianUpdate) -> None:
    done = services.update_run(update_id=queued.pk, task_id="task-a")
    assert done is not None and done.status == Status.SUCCEEDED, done and done.error
    first = written(queued)

    assert services.update_run(update_id=queued.pk, task_id="task-b") is None  # the outbox sent it twice
    assert services.update_run(update_id=queued.pk, task_id="task-a") is None  # finished: even its own task

    assert written(queued) == first
    assert first["attempts"] == 1
    assert Recommendation.objects.filter(update=queued).count() == 1


def test_a_second_delivery_while_it_runs_does_nothing(queued: BayesianUpdate) -> None:
    running = claims.update_claim(update_id=queued.pk, task_id="task-a")
    assert running is not None and running.claim_token is not None

    assert services.update_run(update_id=queued.pk, task_id="task-b") is None

    row = BayesianUpdate.objects.get(pk=queued.pk)
    assert (row.status, row.task_id, row.claim_token, row.attempts) == (
        Status.RUNNING,
        "task-a",
        running.claim_token,
        1,
    )


def test_a_run_that_lost_its_claim_mid_run_cannot_write(
    queued: BayesianUpdate, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_recommend = services.recommend_case
    taken_over: list[BayesianUpdate] = []

    def redelivered_meanwhile(*args: Any, **kwargs: Any) -> Any:
        # While the engine runs, the worker is declared dead and the same task is handed out again.
        taken_over.append(claims.update_claim(update_id=queued.pk, task_id="task-a"))
        return real_recommend(*args, **kwargs)

    monkeypatch.setattr(services, "recommend_case", redelivered_meanwhile)
    services.update_run(update_id=queued.pk, task_id="task-a")

    row = BayesianUpdate.objects.get(pk=queued.pk)
    assert (row.status, row.results, row.error, row.finished_at) == (Status.RUNNING, {}, "", None)
    assert row.claim_token == taken_over[0].claim_token and row.attempts == 2
    assert not Recommendation.objects.filter(update=queued).exists()


def test_a_stale_token_cannot_finish_or_fail_the_update(queued: BayesianUpdate) -> None:
    stale = claims.update_claim(update_id=queued.pk, task_id="task-a")
    current = claims.update_claim(update_id=queued.pk, task_id="task-a")
    assert stale is not None and current is not None and stale.claim_token != current.claim_token

    services._finish(
        stale, recommended={"success": True}, results={"recommendation": {"x": 1}}, timings={"total_s": 1.0}
    )
    services._fail(stale, "a late failure of the replaced run")

    row = BayesianUpdate.objects.get(pk=queued.pk)
    assert (row.status, row.results, row.error) == (Status.RUNNING, {}, "")
    assert not Recommendation.objects.filter(update=queued).exists()
    assert claims.fenced(stale).count() == 0 and claims.fenced(current).count() == 1


def test_the_same_task_delivered_again_takes_its_claim_over(queued: BayesianUpdate) -> None:
    first = claims.update_claim(update_id=queued.pk, task_id="task-a")
    assert claims.update_claim(update_id=queued.pk, task_id="task-b") is None  # another task: no
    again = claims.update_claim(update_id=queued.pk, task_id="task-a")  # its worker died: yes

    assert first is not None and again is not None
    assert again.claim_token != first.claim_token
    assert (again.status, again.task_id, again.attempts) == (Status.RUNNING, "task-a", 2)
    done = services.update_run(update_id=queued.pk, task_id="task-a")
    assert done is not None and done.status == Status.SUCCEEDED and done.attempts == 3
    assert Recommendation.objects.filter(update=queued).count() == 1


def test_an_update_out_of_attempts_fails_with_the_reason(queued: BayesianUpdate, settings: Any) -> None:
    assert settings.UPDATE_MAX_ATTEMPTS == 5
    for attempt in range(1, 6):
        claimed = claims.update_claim(update_id=queued.pk, task_id="task-a")
        assert claimed is not None and claimed.attempts == attempt

    assert services.update_run(update_id=queued.pk, task_id="task-a") is None

    row = BayesianUpdate.objects.get(pk=queued.pk)
    assert (row.status, row.attempts, row.claim_token) == (Status.FAILED, 5, None)
    assert row.error.startswith("stopped after 5 attempts: the update was handed to a worker 5 times")
    assert row.finished_at is not None
    assert not Recommendation.objects.filter(update=queued).exists()


@pytest.mark.usefixtures("celery_eager")
def test_the_task_claims_with_its_own_id(queued: BayesianUpdate) -> None:
    run_bayesian_update.apply(kwargs={"update_id": queued.pk}, task_id="7f3c-task")
    row = BayesianUpdate.objects.get(pk=queued.pk)
    assert (row.status, row.task_id, row.attempts) == (Status.SUCCEEDED, "7f3c-task", 1)
    first = written(queued)
    run_bayesian_update.apply(kwargs={"update_id": queued.pk}, task_id="another-task")
    assert written(queued) == first


def test_a_level_is_saved_only_with_its_update(
    dosed_course: Any, clinician: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dosing import outbox

    def broken_outbox(**kwargs: Any) -> None:
        raise RuntimeError("the outbox row could not be written")

    monkeypatch.setattr(outbox, "outbox_add", broken_outbox)
    updates_before = dosed_course.updates.count()
    with pytest.raises(RuntimeError):
        services.level_record(
            course=dosed_course,
            sampled_at=timezone.now() - dt.timedelta(hours=2),
            value=6.5,
            unit="mg/L",
            user=clinician,
        )
    assert not DrugLevel.objects.filter(course=dosed_course).exists()
    assert dosed_course.updates.count() == updates_before
