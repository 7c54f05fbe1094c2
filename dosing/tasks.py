"""Celery tasks of the dosing workflow: ids in, one service call, safe to run twice."""

import logging

from celery import Task, shared_task

from dosing import claims, transient
from dosing.services import update_run

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    name="dosing.run_bayesian_update",
    ignore_result=True,
    # The database or the broker briefly away: try again after 2, 4, 8, 16 s (the same task id, which takes
    # its own claim over). An estimation failure is stored by update_run and never reaches here.
    autoretry_for=transient.TRANSIENT_ERRORS,
    retry_backoff=transient.RETRY_BACKOFF_S,
    retry_backoff_max=transient.RETRY_BACKOFF_MAX_S,
    retry_jitter=False,
    max_retries=transient.MAX_RETRIES,
)
def run_bayesian_update(self: Task, *, update_id: int) -> None:
    """Fit, band, regimen search and forecast for one queued update (a second delivery does nothing; the
    same task delivered again after its worker died takes the claim over)."""
    task_id = self.request.id or ""
    try:
        update_run(update_id=update_id, task_id=task_id)
    except transient.TRANSIENT_ERRORS as error:
        if self.request.retries >= transient.MAX_RETRIES:  # the last try: do not leave the row running
            _give_up(update_id=update_id, task_id=task_id, reason=transient.describe(error))
        raise


def _give_up(*, update_id: int, task_id: str, reason: str) -> None:
    try:
        claims.update_release(update_id=update_id, task_id=task_id, reason=reason)
    except transient.TRANSIENT_ERRORS:  # still down: the reaper requeues or fails it later
        logger.warning("update %s: claim not released (%s); the reaper will", update_id, reason)


@shared_task(name="dosing.dispatch_outbox", ignore_result=True)
def dispatch_outbox() -> None:
    """Periodic: hand to the broker every update whose delivery failed or was never attempted."""
    from dosing.outbox import outbox_dispatch_pending

    outbox_dispatch_pending()


@shared_task(name="dosing.reap_updates", ignore_result=True)
def reap_updates() -> None:
    """Periodic: stuck updates are handed to the broker again through the outbox, or failed with the reason
    once out of attempts."""
    counts = claims.updates_reap()
    if any(counts.values()):
        logger.warning("reaper: %(requeued)d stuck update(s) requeued, %(failed)d failed", counts)


@shared_task(name="dosing.refit_drug", ignore_result=True)
def refit_drug(*, drug_id: int, username: str, reason: str = "") -> None:
    """A drug's model version was published or retired: queue one update per active course (fan-out: each
    update is its own task, run by any worker). Run twice, the courses already queued are skipped."""
    from dosing.refit import refit_drug_run

    queued = refit_drug_run(drug_id=drug_id, username=username, reason=reason)
    logger.info("refit of drug %s (%s): %d update(s) queued", drug_id, reason, len(queued.update_ids))
