"""Celery tasks of the dosing workflow: ids in, one service call, safe to run twice."""

from celery import Task, shared_task

from dosing.services import update_run


@shared_task(bind=True, name="dosing.run_bayesian_update", ignore_result=True)
def run_bayesian_update(self: Task, *, update_id: int) -> None:
    """Fit, band, regimen search and forecast for one queued update (a second delivery does nothing; the
    same task delivered again after its worker died takes the claim over)."""
    update_run(update_id=update_id, task_id=self.request.id or "")


@shared_task(name="dosing.dispatch_outbox", ignore_result=True)
def dispatch_outbox() -> None:
    """Periodic: hand to the broker every update whose delivery failed or was never attempted."""
    from dosing.outbox import outbox_dispatch_pending

    outbox_dispatch_pending()


@shared_task(name="dosing.reap_updates", ignore_result=True)
def reap_updates() -> None:
    """Periodic: stuck updates are failed with a reason or handed to the broker again."""
    from dosing.services import updates_reap

    updates_reap()
