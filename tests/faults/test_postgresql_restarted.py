"""PostgreSQL stopped in the middle of a request that saves a level (between the level and its update's outbox
row) while the worker runs one update and another waits, then started again: the request fails and leaves
nothing behind, its retry with the same Idempotency-Key saves the level once, the worker's transient
database errors are retried, and every update completes exactly once. /healthz answers 503 while the
database is down and ok after.

The test's own cluster (tests/faults/processes.py) serves this process (the web side), the worker and beat.
"""

from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from dosing import outbox
from dosing.models import BayesianUpdate, DrugLevel, UpdateDispatch
from tests.faults.harness import (
    FAULT_TEST_MARKS,
    Stack,
    UpdatesInFlight,
    assert_completed_exactly_once,
    healthz,
    latest_update,
    level_body,
    post_level,
    wait_for_health,
    wait_until_all_finished,
)
from tests.faults.processes import PostgresCluster

if TYPE_CHECKING:
    from rest_framework.test import APIClient

pytestmark = FAULT_TEST_MARKS


def test_a_database_restart_mid_request_leaves_nothing_half_written_and_every_update_completes_once(
    own_postgresql: PostgresCluster,
    stack: Stack,
    updates_in_flight: UpdatesInFlight,
    clinician_api: APIClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = clinician_api
    running, queued, interrupted, cut_short = updates_in_flight
    cut_short.refresh_from_db()
    before = latest_update(interrupted)

    checked_while_down = threading.Event()

    def start_again_once_checked() -> None:
        checked_while_down.wait(timeout=20)
        own_postgresql.start()

    restart = threading.Thread(target=start_again_once_checked)
    real_outbox_add = outbox.outbox_add

    def stop_postgresql_then_add(**kwargs: Any) -> Any:
        own_postgresql.stop(mode="fast")  # every session ends: this request's transaction is rolled back
        restart.start()
        return real_outbox_add(**kwargs)

    monkeypatch.setattr(outbox, "outbox_add", stop_postgresql_then_add)
    client.raise_request_exception = False
    key, body = str(uuid.uuid4()), level_body(7.1)
    try:
        failed = post_level(client, interrupted, body, key=key)
        status_code, during = healthz(client)
    finally:
        checked_while_down.set()
        monkeypatch.undo()
        if restart.is_alive() or restart.ident is not None:
            restart.join(timeout=30)
    assert restart.ident is not None, "the request never reached the outbox"
    assert failed.status_code >= 500, failed.content
    assert (status_code, during["status"], during["database"]["status"]) == (503, "failing", "failing"), (
        during
    )
    assert during["elapsed_s"] < 1.0, during

    # Nothing of the failed request was written: no level, no update, no outbox row.
    assert not DrugLevel.objects.filter(course=interrupted).exists()
    assert latest_update(interrupted) == before
    retried = post_level(client, interrupted, body, key=key)
    assert retried.status_code == 201, retried.content
    replayed = post_level(client, interrupted, body, key=key)
    assert (replayed.status_code, replayed.headers["Idempotent-Replayed"]) == (201, "true")
    wait_until_all_finished([running, queued, interrupted], stack)

    assert_completed_exactly_once([running, queued, interrupted], levels_per_course=1)
    retried_update = BayesianUpdate.objects.get(pk=cut_short.pk)
    # Its database error was transient: the same task tried again and took its own claim over.
    assert (retried_update.attempts, retried_update.task_id) == (2, cut_short.task_id)
    assert UpdateDispatch.objects.filter(update__course=interrupted).count() == (
        BayesianUpdate.objects.filter(course=interrupted).count()
    )
    wait_for_health(client, lambda code, body: (code, body["status"]) == (200, "ok"), what="ok again")
