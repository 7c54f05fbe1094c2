"""/healthz: database, broker and worker status as JSON, no login, 503 when the database is down."""

from collections.abc import Iterator

import pytest
from django.db import OperationalError, connections
from django.test import Client

from health.selectors import EAGER_DETAIL


@pytest.mark.django_db
@pytest.mark.usefixtures("celery_eager")
def test_it_reports_ok_in_the_embedded_default(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["status"] == "ok"
    assert body["database"]["detail"] == connections["default"].vendor
    assert body["broker"] == {"status": "eager", "detail": EAGER_DETAIL}
    assert body["worker"] == {"status": "eager", "detail": EAGER_DETAIL}


@pytest.mark.django_db
@pytest.mark.usefixtures("celery_eager")
def test_it_answers_503_when_the_database_is_down(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OperationalError("connection to server at 10.0.0.5 refused, password=secret")

    monkeypatch.setattr(connections["default"], "cursor", refuse)
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["database"] == {"status": "error", "detail": "OperationalError: database unavailable"}
    assert "secret" not in response.content.decode()


@pytest.fixture
def unreachable_broker() -> Iterator[None]:
    """Celery configured for a Redis broker on a port where nothing listens (refused at once)."""
    from mipd_web.celery import app

    previous = {key: app.conf[key] for key in ("task_always_eager", "broker_url")}
    app.conf.update(task_always_eager=False, broker_url="redis://127.0.0.1:9/0")
    try:
        yield
    finally:
        app.conf.update(previous)


@pytest.mark.django_db
@pytest.mark.usefixtures("unreachable_broker")
@pytest.mark.timeout(60)
def test_it_reports_degraded_when_the_broker_is_unreachable(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["database"]["status"] == "ok"
    assert body["broker"] == {"status": "error", "detail": "OperationalError: broker unavailable"}
    assert body["worker"] == {"status": "error", "detail": "unknown: the broker is unreachable"}


@pytest.mark.django_db
def test_it_takes_only_get(client: Client) -> None:
    assert client.post("/healthz").status_code == 405


@pytest.mark.django_db(transaction=True)
@pytest.mark.services("postgresql", "redis")
@pytest.mark.timeout(60)
def test_it_reports_degraded_when_no_worker_answers(client: Client) -> None:
    body = client.get("/healthz").json()
    assert body["database"]["detail"] == "postgresql"
    assert body["broker"] == {"status": "ok", "detail": "redis"}
    assert body["worker"]["status"] == "error"
    assert body["status"] == "degraded"
