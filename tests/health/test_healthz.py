"""/healthz: the database, the broker, beat, the update queue and the outbox; anonymous callers see the status
only, the monitoring token and staff the details; 200 when ok or degraded, 503 when failing."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from django.db import OperationalError, connections
from django.test import Client
from django.utils import timezone

from health.models import BeatHeartbeat
from health.selectors import EAGER_DETAIL, broker_ping, broker_status
from health.tasks import beat_heartbeat
from mipd_web.celery import app as celery_app

TOKEN = "monitoring-token-0123456789abcdef"
COMPONENTS = {"status", "database", "broker", "beat", "updates", "outbox"}


@pytest.fixture
def token(settings: Any) -> dict[str, str]:
    settings.HEALTHZ_TOKEN = TOKEN
    return {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


def details(client: Client, token: dict[str, str]) -> dict[str, Any]:
    response = client.get("/healthz", **token)
    body = response.json()
    assert set(body) == COMPONENTS
    return body


def ago(seconds: float) -> dt.datetime:
    return timezone.now() - dt.timedelta(seconds=seconds)


@pytest.mark.django_db
@pytest.mark.usefixtures("celery_eager")
def test_anonymous_callers_see_the_status_only(client: Client, token: dict[str, str]) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    assert response.json() == {"status": "ok"}
    for wrong in ("Bearer wrong-token", f"Token {TOKEN}", f"Bearer {TOKEN}x", "Bearer "):
        assert client.get("/healthz", HTTP_AUTHORIZATION=wrong).json() == {"status": "ok"}


@pytest.mark.django_db
@pytest.mark.usefixtures("celery_eager")
def test_without_a_configured_token_no_bearer_header_opens_the_details(client: Client, settings: Any) -> None:
    settings.HEALTHZ_TOKEN = ""
    assert client.get("/healthz", HTTP_AUTHORIZATION="Bearer ").json() == {"status": "ok"}


@pytest.mark.django_db
@pytest.mark.usefixtures("celery_eager")
def test_the_token_shows_every_component_in_the_embedded_default(
    client: Client, token: dict[str, str]
) -> None:
    body = details(client, token)
    assert body["status"] == "ok"
    assert body["database"]["status"] == "ok"
    assert body["database"]["detail"] == connections["default"].vendor
    assert body["broker"] == {"status": "ok", "detail": EAGER_DETAIL}
    assert body["beat"] == {"status": "ok", "detail": f"not needed: {EAGER_DETAIL}"}
    assert body["updates"]["status"] == "ok" and body["updates"]["stuck"] == 0
    assert body["outbox"] == {
        "status": "ok",
        "detail": "0 pending delivery",
        "pending": 0,
        "oldest_pending_s": None,
        "max_age_s": 90,
    }


@pytest.mark.django_db
@pytest.mark.usefixtures("celery_eager")
def test_staff_signed_in_with_the_second_factor_see_the_details(client: Client) -> None:
    from accounts.roles import Role
    from tests.auth import login
    from tests.factories import UserFactory

    clinician = UserFactory(username="ward-clinician", roles=[Role.CLINICIAN])
    login(client, clinician)
    assert client.get("/healthz").json() == {"status": "ok"}  # not staff

    staff = UserFactory(username="it-staff", is_staff=True)
    client.force_login(staff)  # password only: the second factor not given yet
    assert client.get("/healthz").json() == {"status": "ok"}
    login(client, staff)
    assert set(client.get("/healthz").json()) == COMPONENTS


@pytest.mark.django_db
@pytest.mark.usefixtures("celery_eager")
def test_it_answers_503_when_the_database_is_down(
    client: Client, token: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OperationalError("connection to server at 10.0.0.5 refused, password=secret")

    monkeypatch.setattr(connections["default"], "cursor", refuse)
    anonymous = client.get("/healthz")
    assert (anonymous.status_code, anonymous.json()) == (503, {"status": "failing"})
    response = client.get("/healthz", **token)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "failing"
    assert body["database"] == {"status": "failing", "detail": "OperationalError: database unavailable"}
    unknown = {"status": "unknown", "detail": "unknown: the database is unavailable"}
    assert body["beat"] == body["updates"] == body["outbox"] == unknown
    assert "secret" not in response.content.decode() and "10.0.0.5" not in response.content.decode()


@pytest.mark.django_db
@pytest.mark.usefixtures("unreachable_broker")
@pytest.mark.timeout(60)
def test_an_unreachable_broker_is_degraded_and_pinged_once_per_5_s(
    client: Client, token: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from health import selectors

    pings: list[str] = []
    real_ping = selectors._ping
    monkeypatch.setattr(selectors, "_ping", lambda url: pings.append(url) or real_ping(url))
    now = [1000.0]
    monkeypatch.setattr(broker_ping, "clock", lambda: now[0])

    response = client.get("/healthz", **token)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["broker"] == {
        "status": "degraded",
        "detail": "ConnectionError: broker unavailable",
        "checked_s_ago": 0.0,
    }
    now[0] += 4.9
    assert client.get("/healthz", **token).json()["broker"]["checked_s_ago"] == 4.9
    assert len(pings) == 1
    now[0] += 0.1
    client.get("/healthz", **token)
    assert len(pings) == 2


@pytest.mark.django_db
@pytest.mark.timeout(30)
def test_a_broker_that_does_not_answer_costs_half_a_second_at_most(monkeypatch: pytest.MonkeyPatch) -> None:
    # 10.255.255.1 is not routed: the connection hangs (or is refused at once where there is no route).
    monkeypatch.setitem(celery_app.conf, "task_always_eager", False)
    monkeypatch.setitem(celery_app.conf, "broker_url", "redis://10.255.255.1:6379/0")
    started = time.perf_counter()
    status = broker_status()
    elapsed_s = time.perf_counter() - started
    assert status.status == "degraded"
    assert elapsed_s < 0.8, f"the ping took {elapsed_s:.2f} s"


@pytest.mark.django_db
@pytest.mark.usefixtures("unreachable_broker")
def test_beat_is_degraded_without_a_fresh_heartbeat(
    client: Client, token: dict[str, str], settings: Any, celery_eager: None
) -> None:
    celery_app.conf.task_always_eager = False  # beat is needed as soon as a broker is
    assert details(client, token)["beat"] == {
        "status": "degraded",
        "detail": "no heartbeat yet: is beat running?",
        "max_age_s": 180,
    }
    celery_app.conf.task_always_eager = True
    beat_heartbeat.apply()  # what a worker does with beat's message
    celery_app.conf.task_always_eager = False
    beat = details(client, token)["beat"]
    assert beat["status"] == "ok" and beat["age_s"] < 5 and beat["worker"].startswith("eager@")

    BeatHeartbeat.objects.update(beat_at=ago(181))
    beat = details(client, token)["beat"]
    assert beat["status"] == "degraded"
    assert beat["detail"] == "no heartbeat for 181 s: beat stopped, or no worker ran its tasks"
    settings.HEALTHZ_BEAT_MAX_AGE_S = 300
    assert details(client, token)["beat"]["status"] == "ok"


@pytest.mark.django_db
@pytest.mark.usefixtures("celery_eager")
def test_updates_are_degraded_when_stuck_or_waiting_too_long(
    client: Client, token: dict[str, str], course: Any, settings: Any
) -> None:
    from dosing.models import BayesianUpdate, UpdateDispatch

    Status = BayesianUpdate.Status
    update = course.updates.get()
    UpdateDispatch.objects.update(dispatched_at=timezone.now())
    BayesianUpdate.objects.filter(pk=update.pk).update(requested_at=ago(100))
    body = details(client, token)
    assert body["status"] == "ok"
    assert body["updates"]["detail"] == "1 queued, 0 running"
    assert 100 <= body["updates"]["oldest_queued_s"] < 105

    BayesianUpdate.objects.filter(pk=update.pk).update(requested_at=ago(125))
    updates = details(client, token)["updates"]
    assert updates["status"] == "degraded"
    assert updates["detail"].startswith("the oldest has waited 12")
    settings.HEALTHZ_QUEUED_MAX_AGE_S = 200
    assert details(client, token)["updates"]["status"] == "ok"

    BayesianUpdate.objects.filter(pk=update.pk).update(status=Status.RUNNING, started_at=ago(665))
    body = details(client, token)
    assert body["status"] == "degraded"
    assert (body["updates"]["stuck"], body["updates"]["running"], body["updates"]["queued"]) == (1, 1, 0)
    assert body["updates"]["detail"] == "1 stuck past the time limit (the reaper requeues them)"
    assert body["updates"]["oldest_queued_s"] is None


@pytest.mark.django_db
@pytest.mark.usefixtures("celery_eager")
def test_the_outbox_is_degraded_when_a_delivery_is_overdue(
    client: Client, token: dict[str, str], course: Any
) -> None:
    from dosing.models import BayesianUpdate, UpdateDispatch

    BayesianUpdate.objects.update(status=BayesianUpdate.Status.SUCCEEDED)
    UpdateDispatch.objects.update(created_at=ago(80))  # course_open's update, never handed over
    outbox = details(client, token)["outbox"]
    assert (outbox["status"], outbox["pending"]) == ("ok", 1)
    UpdateDispatch.objects.update(created_at=ago(95))
    body = details(client, token)
    assert body["status"] == "degraded"
    assert body["outbox"]["detail"].startswith("1 update(s) not handed to the broker, the oldest for 9")
    UpdateDispatch.objects.update(dispatched_at=timezone.now())
    assert details(client, token)["outbox"]["status"] == "ok"


@pytest.mark.django_db
@pytest.mark.usefixtures("unreachable_broker")
def test_a_check_costs_four_queries_and_no_ping_within_the_cache(
    client: Client, token: dict[str, str], django_assert_max_num_queries: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.get("/healthz", **token)  # pings and caches
    from health import selectors

    monkeypatch.setattr(selectors, "_ping", lambda url: pytest.fail("pinged again within 5 s"))
    with django_assert_max_num_queries(4):  # SELECT 1, the beat row, the updates, the outbox
        assert client.get("/healthz", **token).status_code == 200


@pytest.mark.django_db
def test_it_takes_only_get(client: Client) -> None:
    assert client.post("/healthz").status_code == 405


@pytest.mark.django_db(transaction=True)
@pytest.mark.services("postgresql", "redis")
@pytest.mark.timeout(60)
def test_with_the_real_services_the_broker_answers_and_beat_is_awaited(
    client: Client, token: dict[str, str]
) -> None:
    body = details(client, token)
    assert body["database"]["detail"] == "postgresql"
    assert body["broker"]["status"] == "ok" and body["broker"]["detail"] == "redis"
    assert body["beat"]["status"] == "degraded"  # no beat in the test run
    assert body["status"] == "degraded"
