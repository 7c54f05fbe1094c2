"""A whole worker SIGKILLed in the middle of an update (its main process and its pool process, as when its
container or machine dies): nothing acknowledges the task, so Redis hands it to the next worker after the
visibility timeout, or the reaper sends the update again; it completes exactly once. While no worker
runs, /healthz says the updates are stuck or waiting (degraded)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.faults.harness import (
    FAULT_TEST_MARKS,
    Stack,
    assert_completed_exactly_once,
    latest_update,
    wait_for_health,
    wait_until_all_finished,
)

if TYPE_CHECKING:
    from rest_framework.test import APIClient

    from dosing.models import TherapyCourse

pytestmark = FAULT_TEST_MARKS


def test_an_update_whose_worker_is_killed_is_run_by_the_next_worker_once(
    stack: Stack, two_updates_queued: list[TherapyCourse], clinician_api: APIClient
) -> None:
    client, courses = clinician_api, two_updates_queued
    first_worker = stack.start_worker("first")
    stack.start_beat()
    first = latest_update(courses[0])
    killed_child = stack.wait_until_running(first.pk)

    first_worker.kill()
    first.refresh_from_db()
    assert first.status == "running" and first.results == {}  # killed between its claim and its results
    # No worker: the killed update stays running past its limit, the next one waits.
    wait_for_health(
        client,
        lambda code, body: (code, body["status"], body["updates"]["status"]) == (200, "degraded", "degraded"),
        what="the updates stuck or waiting",
        timeout_s=45,
    )

    second_worker = stack.start_worker("second")
    wait_until_all_finished(courses, stack)

    assert_completed_exactly_once(courses, levels_per_course=1)
    assert stack.engine_runs(first.pk, "started")[0] == killed_child
    [finished_in] = stack.engine_runs(first.pk, "finished")
    assert finished_in in second_worker.pool_children()
    first.refresh_from_db()
    assert (
        first.attempts == 2
    )  # redelivered by Redis (the same task) or requeued by the reaper: run once more
    wait_for_health(client, lambda code, body: (code, body["status"]) == (200, "ok"), what="ok again")
