"""Transactional outbox: a level saved while Redis is down is answered 201, its update kept pending delivery,
and handed to the broker by the dispatcher once Redis is back.

A real Redis server is started on 127.0.0.1:16140 (stopped at first) and the Celery app pointed at it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.utils import timezone
from rest_framework.test import APIClient

from dosing.models import BayesianUpdate, UpdateDispatch
from dosing.outbox import outbox_dispatch_pending
from mipd_web.celery import app as celery_app

pytestmark = [
    pytest.mark.services("postgresql", "redis"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(60),
]
PORT = 16140
BROKER_URL = f"redis://127.0.0.1:{PORT}/0"
COURSES = "/api/v1/courses/"


@pytest.fixture
def role_groups(transactional_db: None) -> None:
    from django.contrib.auth.models import Group

    from accounts.roles import Role

    for role in Role:
        Group.objects.get_or_create(name=role.value)


class RedisServer:
    """A redis-server of the test's own, without persistence, that can be stopped and started again."""

    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="mipd-outbox-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(PORT),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.directory,
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(port=PORT, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError(f"redis-server did not answer on port {PORT}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def queued_update_ids(self) -> list[int]:
        """The update ids of the task messages waiting in Celery's default queue (newest first: LPUSH)."""
        messages = redis.Redis(port=PORT).lrange("celery", 0, -1)
        ids = []
        for raw in messages:
            body = json.loads(raw)["body"]
            _args, kwargs, _ = json.loads(base64.b64decode(body))
            ids.append(kwargs["update_id"])
        return ids


def _forget_broker_connections() -> None:
    """The connection and producer pools are bound to the broker they were made for: drop them."""
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    previous = {key: celery_app.conf[key] for key in ("broker_url", "task_always_eager")}
    celery_app.conf.update(broker_url=BROKER_URL, task_always_eager=False)
    _forget_broker_connections()
    try:
        yield server
    finally:
        server.stop()
        celery_app.conf.update(previous)
        _forget_broker_connections()
        shutil.rmtree(server.directory, ignore_errors=True)


def post_dose_and_level(client: APIClient, course: Any) -> Any:
    dose = client.post(
        f"{COURSES}{course.public_id}/doses/",
        {
            "given_at": (timezone.now() - dt.timedelta(hours=3)).isoformat(),
            "amount_mg": 1000,
            "route": "iv_infusion",
            "infusion_duration_h": 1,
        },
        format="json",
    )
    assert dose.status_code == 201, dose.data
    return client.post(
        f"{COURSES}{course.public_id}/levels/",
        {"sampled_at": (timezone.now() - dt.timedelta(hours=1)).isoformat(), "value": 6.2, "unit": "mg/L"},
        format="json",
    )


def test_a_level_saved_while_redis_is_down_is_answered_201_and_delivered_when_it_returns(
    role_groups: None, redis_server: RedisServer, course: Any, clinician: Any
) -> None:
    client = APIClient()
    client.force_authenticate(clinician)

    started = time.monotonic()
    response = post_dose_and_level(client, course)
    elapsed_s = time.monotonic() - started

    assert response.status_code == 201, response.data
    assert elapsed_s < 15, f"a down broker held the request {elapsed_s:.1f} s"
    update = course.updates.order_by("-pk").first()
    assert (update.status, update.trigger) == (BayesianUpdate.Status.QUEUED, "new level")
    dispatch = UpdateDispatch.objects.get(update=update)
    assert dispatch.dispatched_at is None and dispatch.attempts == 1
    assert "16140" in dispatch.last_error
    UpdateDispatch.objects.exclude(pk=dispatch.pk).delete()  # the superseded earlier updates: not under test
    shown = client.get(f"{COURSES}{course.public_id}/updates/").data[0]
    assert (shown["status"], shown["delivery"]) == ("queued", "pending")

    assert outbox_dispatch_pending() == 0  # still down: kept, tried again
    assert UpdateDispatch.objects.get(pk=dispatch.pk).attempts == 2

    redis_server.start()
    assert outbox_dispatch_pending() == 1
    delivered = UpdateDispatch.objects.get(pk=dispatch.pk)
    assert delivered.dispatched_at is not None and delivered.last_error == ""
    assert redis_server.queued_update_ids() == [update.pk]
    assert outbox_dispatch_pending() == 0  # delivered once, never again
    assert redis_server.queued_update_ids() == [update.pk]
    shown = client.get(f"{COURSES}{course.public_id}/updates/").data[0]
    assert shown["delivery"] == "delivered"


def test_a_level_saved_while_redis_is_up_is_delivered_on_commit(
    role_groups: None, redis_server: RedisServer, course: Any, clinician: Any
) -> None:
    redis_server.start()
    client = APIClient()
    client.force_authenticate(clinician)

    response = post_dose_and_level(client, course)

    assert response.status_code == 201, response.data
    update = course.updates.order_by("-pk").first()
    assert update.trigger == "new level"
    assert UpdateDispatch.objects.get(update=update).dispatched_at is not None
    assert redis_server.queued_update_ids().count(update.pk) == 1  # with the dose's update before it
    dose_update = course.updates.get(trigger__startswith="dose ")
    assert UpdateDispatch.objects.get(update=dose_update).dispatched_at is not None
