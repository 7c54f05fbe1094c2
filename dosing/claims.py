"""Exactly-once claims of Bayesian updates: which run may compute an update, and whose results count.

A task claims its update (queued → running) in one transaction that counts the attempt, records the task id
and gives the claim a fresh token. Every write of the run is fenced by that token: it happens only while the
row is still running under it, and the final status and the results are written in one transaction. So a
duplicate delivery (the outbox and the reaper both sent it, the broker handed it out twice) finds the update
claimed and does nothing, and a run whose claim was taken over or reaped can no longer write. The same task
id delivered again (its worker died and acks_late redelivered it, or it is retried) takes the claim over
with a new token. After ``UPDATE_MAX_ATTEMPTS`` attempts the update fails with the reason.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import uuid

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from dosing.models import BayesianUpdate

logger = logging.getLogger(__name__)
Status = BayesianUpdate.Status


def stale_after() -> dt.timedelta:
    """How long an update may run, or wait delivered and unstarted, before it counts as stuck: the hard task
    limit plus the margin after which the broker hands an unacknowledged task out again."""
    return dt.timedelta(seconds=settings.TASK_TIME_LIMIT_S + settings.TASK_REDELIVERY_MARGIN_S)


def attempts_exhausted(attempts: int, last: str = "") -> str:
    """The reason stored on an update that used up its attempts (shown on the course page)."""
    cause = f" (last: {last})" if last else ""
    return (
        f"stopped after {attempts} attempts{cause}: the update was handed to a worker {attempts} times "
        "without finishing (a worker stopped, or the database or the broker was unavailable). Check the "
        "workers (/healthz), then request the update again from the course page"
    )


def update_claim(*, update_id: int, task_id: str) -> BayesianUpdate | None:
    """Claim an update for the task ``task_id``; None when this delivery must not run it.

    A queued update is claimed; a running one only by the same task id (a redelivery after its worker died,
    or a retry), which takes it over with a new token. An update that used up its attempts fails instead.
    """
    now = timezone.now()
    with transaction.atomic():
        update = BayesianUpdate.objects.select_for_update().filter(pk=update_id).first()
        if update is None:
            return None
        takeover = update.status == Status.RUNNING and bool(task_id) and update.task_id == task_id
        if update.status != Status.QUEUED and not takeover:
            return None  # finished, superseded, or claimed by another delivery
        if update.attempts >= settings.UPDATE_MAX_ATTEMPTS:
            logger.error("update %s used up its %d attempts: failed", update.pk, update.attempts)
            BayesianUpdate.objects.filter(pk=update.pk).update(
                status=Status.FAILED,
                finished_at=now,
                claim_token=None,
                error=attempts_exhausted(update.attempts),
            )
            return None
        if takeover:
            logger.warning(
                "update %s: task %s delivered again, takes its claim over (attempt %d)",
                update.pk,
                task_id,
                update.attempts + 1,
            )
        BayesianUpdate.objects.filter(pk=update.pk).update(
            status=Status.RUNNING,
            started_at=now,
            attempts=update.attempts + 1,  # the row is locked: no concurrent increment
            task_id=task_id[:255],
            claim_token=uuid.uuid4(),
            worker=socket.gethostname()[:200],
        )
    return BayesianUpdate.objects.select_related(
        "course__patient", "course__drug", "course__model_version"
    ).get(pk=update_id)


def fenced(update: BayesianUpdate) -> QuerySet[BayesianUpdate]:
    """The update's row while the run holding ``update.claim_token`` still owns it; empty otherwise."""
    if update.claim_token is None:
        return BayesianUpdate.objects.none()
    return BayesianUpdate.objects.filter(pk=update.pk, status=Status.RUNNING, claim_token=update.claim_token)


def release_stale(updates: QuerySet[BayesianUpdate], *, now: dt.datetime, reason: str) -> int:
    """Fail the RUNNING rows among ``updates`` that ran past the limit (their worker died), with the reason;
    the token is cleared, so their run, should it still be alive, cannot write. Returns how many."""
    return updates.filter(status=Status.RUNNING, started_at__lt=now - stale_after()).update(
        status=Status.FAILED, finished_at=now, claim_token=None, error=reason
    )


def requeue_or_fail(update: BayesianUpdate, *, now: dt.datetime, reason: str) -> str:
    """An update whose run was lost or abandoned (``update`` locked by the caller's transaction): queued
    again through the outbox with its claim cleared, or failed with ``reason`` once it has used up its
    attempts. Returns ``"requeued"`` or ``"failed"``."""
    from dosing.outbox import outbox_requeue  # the outbox imports the tasks, which import services

    if update.attempts >= settings.UPDATE_MAX_ATTEMPTS:
        BayesianUpdate.objects.filter(pk=update.pk).update(
            status=Status.FAILED,
            finished_at=now,
            claim_token=None,
            error=attempts_exhausted(update.attempts, reason),
        )
        return "failed"
    BayesianUpdate.objects.filter(pk=update.pk).update(
        status=Status.QUEUED, started_at=None, task_id="", claim_token=None
    )
    outbox_requeue(update=update, reason=f"requeued: {reason}")
    return "requeued"


def update_release(*, update_id: int, task_id: str, reason: str) -> str:
    """The task ``task_id`` gave up (its retries used up): its claim is released, the update queued again
    or, out of attempts, failed with ``reason``. Returns what happened ("" when the task held no claim)."""
    with transaction.atomic():
        update = (
            BayesianUpdate.objects.select_for_update()
            .filter(pk=update_id, status=Status.RUNNING, task_id=task_id)
            .exclude(task_id="")
            .first()
        )
        if update is None:
            return ""  # the claim was never taken (the database was down at once) or is another's now
        outcome = requeue_or_fail(update, now=timezone.now(), reason=reason)
    logger.warning("update %s %s after its task gave up: %s", update_id, outcome, reason)
    return outcome


REAP_BATCH = 200  # updates per kind and pass: bounded work, the next pass takes the rest


def updates_reap(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Periodic: every update stuck past its limit is handed to the broker again through the outbox, or
    failed with the reason once out of attempts. Returns how many were requeued and failed.

    Two kinds, bounded per pass:

    * running past the limit: claimed, then silent (its worker died: the hard time limit ends any live run
      before). The claim counted its attempt; requeued, or failed once out of attempts.
    * queued, delivered to the broker past the limit and still unclaimed: it waits behind others (a long
      queue on a busy round) or the broker lost it (Redis restarted empty); no worker can tell which. It is
      sent again, the first copy to reach a worker claims it and the other finds it claimed, and waiting
      costs no attempt: an update is never failed for the queue's length.

    An update still waiting for the broker to come back is the outbox dispatcher's, not stuck.
    """
    from dosing.outbox import outbox_requeue  # the outbox imports the tasks, which import services

    now = now or timezone.now()
    before = now - stale_after()
    counts = {"requeued": 0, "failed": 0}
    running = BayesianUpdate.objects.filter(status=Status.RUNNING, started_at__lt=before)
    unclaimed = BayesianUpdate.objects.filter(status=Status.QUEUED, dispatch__dispatched_at__lt=before)
    worker_died = f"its worker stopped (still running past the {settings.TASK_TIME_LIMIT_S} s limit)"
    not_claimed = (
        f"delivered, not claimed by a worker within {stale_after().total_seconds():.0f} s (a long queue, or "
        "the broker lost it): sent again, no attempt counted"
    )
    for stuck, reason in ((running, worker_died), (unclaimed, not_claimed)):
        for pk in stuck.order_by("requested_at", "pk").values_list("pk", flat=True)[:REAP_BATCH]:
            with transaction.atomic():
                update = stuck.select_for_update(of=_locked_rows()).filter(pk=pk).first()
                if update is None:  # claimed, finished or requeued meanwhile
                    continue
                if update.status == Status.RUNNING:
                    outcome = requeue_or_fail(update, now=now, reason=reason)
                else:  # still queued: the claim, when a copy reaches a worker, counts its attempt
                    outbox_requeue(update=update, reason=f"requeued: {reason}")
                    outcome = "requeued"
            counts[outcome] += 1
            logger.warning("update %s %s: %s", pk, outcome, reason)
    return counts


def _locked_rows() -> tuple[str, ...]:
    """Lock the update's row only, not the joined outbox row (where the database can say so)."""
    from django.db import connection

    return ("self",) if connection.features.has_select_for_update_of else ()
