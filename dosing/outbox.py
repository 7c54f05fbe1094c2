"""Transactional outbox of Bayesian updates: the row is written with the update, the broker is told after.

``outbox_add`` runs inside the caller's transaction, so a saved level always has its update's dispatch
recorded. Delivery happens on commit and again from the periodic ``dosing.dispatch_outbox`` task: a broker
that is down leaves the row pending (the API answers normally) until the broker is back.
"""

import logging

from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from dosing.models import BayesianUpdate, UpdateDispatch

logger = logging.getLogger(__name__)

DISPATCH_BATCH = 200  # rows per periodic pass: bounded work, the next pass takes the rest


def outbox_add(*, update: BayesianUpdate) -> UpdateDispatch:
    """Record that ``update`` is owed to the broker; delivery is attempted once the transaction commits."""
    dispatch = UpdateDispatch.objects.create(update=update)
    transaction.on_commit(lambda: outbox_deliver(dispatch_id=dispatch.pk))
    return dispatch


def outbox_requeue(*, update: BayesianUpdate, reason: str) -> UpdateDispatch:
    """Owe ``update`` to the broker again (it was lost or its run abandoned), inside the caller's transaction;
    delivered on commit, or by the periodic pass. A new row: pending since now (what /healthz measures),
    with ``reason`` kept on it until it is delivered."""
    UpdateDispatch.objects.filter(update=update).delete()
    dispatch = UpdateDispatch.objects.create(update=update, last_error=reason[:2000])
    transaction.on_commit(lambda: outbox_deliver(dispatch_id=dispatch.pk))
    return dispatch


def outbox_deliver(*, dispatch_id: int) -> bool:
    """Send one pending row to the broker; True when it was delivered. A broker error leaves it pending."""
    from dosing.tasks import run_bayesian_update  # tasks import services which import this module

    with transaction.atomic():
        dispatch = (
            UpdateDispatch.objects.select_for_update(skip_locked=True)
            .filter(pk=dispatch_id, dispatched_at__isnull=True)
            .first()
        )
        if dispatch is None:  # delivered already, or another dispatcher holds it right now
            return False
        dispatch.attempts += 1
        try:
            run_bayesian_update.apply_async(kwargs={"update_id": dispatch.update_id}, retry=False)
        except (OperationalError, OSError) as error:  # the broker is unreachable: keep the row for later
            dispatch.last_error = f"{type(error).__name__}: {error}"[:2000]
            dispatch.save(update_fields=["attempts", "last_error"])
            logger.warning("update %s not delivered to the broker: %s", dispatch.update_id, error)
            return False
        dispatch.dispatched_at = timezone.now()
        dispatch.last_error = ""
        dispatch.save(update_fields=["attempts", "last_error", "dispatched_at"])
    return True


def outbox_pending_ids(*, limit: int = DISPATCH_BATCH) -> list[int]:
    return list(
        UpdateDispatch.objects.filter(dispatched_at__isnull=True)
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def outbox_dispatch_pending(*, limit: int = DISPATCH_BATCH) -> int:
    """Deliver the oldest pending rows, oldest first; stop at the first broker failure. Returns delivered."""
    delivered = 0
    for dispatch_id in outbox_pending_ids(limit=limit):
        if outbox_deliver(dispatch_id=dispatch_id):
            delivered += 1
        elif UpdateDispatch.objects.filter(pk=dispatch_id, dispatched_at__isnull=True).exists():
            break  # the broker is still down: the next pass retries
    return delivered
