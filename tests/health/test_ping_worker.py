"""A heartbeat goes through Celery after the transaction commits: in process without REDIS_URL, through
Redis to a real worker with it."""

import socket
import time
from collections.abc import Iterator

import pytest
from celery.contrib.testing.worker import start_worker
from celery.worker import WorkController
from django.db import connection, transaction
from django.test import Client

from health.models import BeatHeartbeat, WorkerHeartbeat
from health.services import heartbeat_record, heartbeat_request
from mipd_web.celery import app as celery_app


@pytest.mark.django_db
@pytest.mark.usefixtures("celery_eager")
def test_the_task_runs_in_process_once_the_transaction_commits(django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        heartbeat = heartbeat_request()
        heartbeat.refresh_from_db()
        assert heartbeat.processed_at is None  # not before the commit
    assert len(callbacks) == 1
    heartbeat.refresh_from_db()
    assert heartbeat.processed_at is not None
    assert heartbeat.worker_hostname.startswith("eager@")


@pytest.mark.django_db
@pytest.mark.usefixtures("celery_eager")
def test_a_rolled_back_request_enqueues_nothing(django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                heartbeat_request()
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
    assert callbacks == []
    assert not WorkerHeartbeat.objects.exists()


@pytest.mark.django_db
def test_recording_twice_keeps_the_first_stamp() -> None:
    heartbeat = WorkerHeartbeat.objects.create()
    first = heartbeat_record(heartbeat_id=heartbeat.pk, worker_hostname="celery@one")
    second = heartbeat_record(heartbeat_id=heartbeat.pk, worker_hostname="celery@two")
    assert first is not None and second is not None
    assert second.worker_hostname == "celery@one"
    assert second.processed_at == first.processed_at


@pytest.mark.django_db
def test_recording_a_deleted_heartbeat_is_harmless() -> None:
    assert heartbeat_record(heartbeat_id=987654, worker_hostname="celery@one") is None


@pytest.fixture
def celery_worker() -> Iterator[WorkController]:
    """A real Celery worker in a thread, consuming from the Redis broker named by REDIS_URL."""
    assert not celery_app.conf.task_always_eager
    celery_app.control.purge()
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30) as worker:
        yield worker


def wait_until_processed(heartbeat_id: int, timeout_s: float = 30.0) -> WorkerHeartbeat:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        heartbeat = WorkerHeartbeat.objects.get(pk=heartbeat_id)
        if heartbeat.processed_at is not None:
            return heartbeat
        time.sleep(0.1)
    raise AssertionError(f"no worker processed heartbeat {heartbeat_id} within {timeout_s} s")


@pytest.mark.django_db(transaction=True)
@pytest.mark.services("postgresql", "redis")
@pytest.mark.timeout(120)
def test_a_real_worker_runs_the_task_through_redis(celery_worker: WorkController) -> None:
    assert connection.vendor == "postgresql"
    heartbeat = heartbeat_request()
    processed = wait_until_processed(heartbeat.pk)
    assert not processed.worker_hostname.startswith("eager@")
    # A worker started by the celery command reports its node name (celery@host); this embedded test worker
    # skips that set-up and reports the bare host name.
    assert processed.worker_hostname in {celery_worker.hostname, socket.gethostname()}


@pytest.mark.django_db(transaction=True)
@pytest.mark.services("postgresql", "redis")
@pytest.mark.timeout(120)
def test_healthz_sees_beat_s_heartbeat_run_by_a_real_worker(
    celery_worker: WorkController, client: Client, settings
) -> None:
    from health.tasks import beat_heartbeat

    settings.HEALTHZ_TOKEN = "monitoring-token"
    beat_heartbeat.apply_async(expires=settings.HEALTHZ_BEAT_MAX_AGE_S)  # as beat sends it
    deadline = time.monotonic() + 30
    while not BeatHeartbeat.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    beat = client.get("/healthz", HTTP_AUTHORIZATION="Bearer monitoring-token").json()["beat"]
    assert beat["status"] == "ok"
    assert beat["worker"] in {celery_worker.hostname, socket.gethostname()}
