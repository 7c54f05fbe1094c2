"""Redis killed while one update runs and another waits in its queue, then started again empty (no
persistence, as after a crash or a restart without the append-only file): a level saved meanwhile is answered
201 and kept in the outbox, the reaper and the outbox dispatcher (beat) hand every lost update to the broker
again, and every update completes exactly once. /healthz says the broker is down while it is."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.faults.harness import (
    FAULT_TEST_MARKS,
    Stack,
    UpdatesInFlight,
    assert_completed_exactly_once,
    latest_update,
    level_body,
    post_level,
    wait_for_health,
    wait_until_all_finished,
)

if TYPE_CHECKING:
    from rest_framework.test import APIClient

pytestmark = FAULT_TEST_MARKS


def test_updates_lost_with_redis_are_delivered_again_and_complete_once(
    stack: Stack, updates_in_flight: UpdatesInFlight, clinician_api: APIClient
) -> None:
    client = clinician_api
    running, queued, saved_while_down, cut_short = updates_in_flight

    stack.redis.kill()
    response = post_level(client, saved_while_down, level_body(7.1))
    assert response.status_code == 201, response.data
    owed = latest_update(saved_while_down)
    assert (owed.trigger, owed.dispatch.dispatched_at) == ("new level", None)  # kept in the outbox
    during = wait_for_health(
        client,
        lambda code, body: (
            (code, body["broker"]["status"], body["outbox"]["status"]) == (200, "degraded", "degraded")
        ),
        what="the broker down and the outbox holding the level's update",
    )
    assert during["status"] == "degraded" and during["outbox"]["pending"] == 1, during

    stack.redis.start()  # empty: the running task's message and the queued one are gone
    wait_until_all_finished([running, queued, saved_while_down], stack)

    assert_completed_exactly_once([running, queued, saved_while_down], levels_per_course=1)
    cut_short.refresh_from_db()
    assert cut_short.attempts == 2  # its message died with Redis: the reaper queued it again, once
    assert len(stack.engine_runs(cut_short.pk, "finished")) == 1
    wait_for_health(client, lambda code, body: (code, body["status"]) == (200, "ok"), what="ok again")
