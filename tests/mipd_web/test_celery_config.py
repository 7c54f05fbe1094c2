"""The Celery app: tasks acknowledged late, one at a time, killed well before Redis redelivers them."""

from django.conf import settings

from mipd_web.celery import app


def test_time_limits_stay_below_the_broker_visibility_timeout() -> None:
    visibility_timeout_s = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert app.conf.task_soft_time_limit < app.conf.task_time_limit < visibility_timeout_s


def test_tasks_are_acknowledged_late_and_prefetched_one_at_a_time() -> None:
    assert app.conf.task_acks_late is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.task_serializer == "json"
    assert app.conf.accept_content == ["json"]


def test_tasks_are_django_tasks_with_delay_on_commit() -> None:
    from health.tasks import ping_worker

    assert hasattr(ping_worker, "delay_on_commit")
    assert ping_worker.name in app.tasks


def test_a_lost_worker_requeues_and_redelivery_follows_the_limit_within_minutes() -> None:
    assert app.conf.task_reject_on_worker_lost is True
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    assert options["visibility_timeout"] == app.conf.task_time_limit + 60
    # kombu sweeps the unacknowledged messages every interval x throttle seconds: within the margin
    assert options["unacked_restore_interval"] * options["unacked_restore_throttle"] <= 60


def test_beat_runs_the_outbox_dispatcher_and_the_reaper() -> None:
    from dosing.tasks import dispatch_outbox, reap_updates

    tasks = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert {dispatch_outbox.name, reap_updates.name} <= tasks
