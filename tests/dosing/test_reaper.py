"""The reaper: an update running past its limit fails with the reason, one queued past it is sent again."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from dosing import claims, services
from dosing.models import BayesianUpdate, UpdateDispatch
from dosing.outbox import outbox_pending_ids

pytestmark = pytest.mark.django_db
Status = BayesianUpdate.Status


def test_stuck_updates_are_failed_with_a_reason_or_requeued(course: Any, clinician: Any) -> None:
    long_ago = timezone.now() - claims.stale_after() - dt.timedelta(seconds=5)
    running, lost, fresh = (
        services.update_request(course=course, user=clinician, trigger=t) for t in ("run", "lost", "new")
    )
    BayesianUpdate.objects.filter(pk=running.pk).update(status=Status.RUNNING, started_at=long_ago)
    BayesianUpdate.objects.filter(pk=lost.pk).update(status=Status.QUEUED)  # superseded by fresh: undo
    UpdateDispatch.objects.filter(update=lost).update(dispatched_at=long_ago)
    UpdateDispatch.objects.filter(update=fresh).update(dispatched_at=timezone.now())

    assert services.updates_reap() == {"failed": 1, "requeued": 1}

    running.refresh_from_db()
    assert running.status == Status.FAILED
    assert "600 s limit" in running.error and running.finished_at is not None
    assert UpdateDispatch.objects.get(update=lost).pk in outbox_pending_ids()
    assert UpdateDispatch.objects.get(update=fresh).dispatched_at is not None
    assert services.updates_reap() == {"failed": 0, "requeued": 0}
