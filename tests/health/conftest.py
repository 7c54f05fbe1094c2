"""Health fixtures: every test starts with no cached broker ping."""

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def fresh_broker_ping() -> Iterator[None]:
    from health.selectors import broker_ping

    broker_ping.clear()
    yield
    broker_ping.clear()


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


# A course and its updates, for the queue and outbox checks (the dosing fixtures, shared).
from tests.dosing.conftest import clinician, course, patient, published_version  # noqa: E402, F401
