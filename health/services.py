"""Writes of the health app: worker heartbeats and the beat heartbeat."""

import logging

from django.db import transaction
from django.utils import timezone

from health.models import BeatHeartbeat, WorkerHeartbeat

logger = logging.getLogger(__name__)


@transaction.atomic
def heartbeat_request() -> WorkerHeartbeat:
    """Create a heartbeat and enqueue ``ping_worker`` for it once the transaction commits."""
    from health.tasks import ping_worker  # tasks import services: import here to avoid the cycle

    heartbeat = WorkerHeartbeat.objects.create()
    ping_worker.delay_on_commit(heartbeat_id=heartbeat.pk)
    return heartbeat


def heartbeat_record(*, heartbeat_id: int, worker_hostname: str) -> WorkerHeartbeat | None:
    """Stamp the heartbeat with the worker that ran it. Safe to run twice: the first stamp wins.

    Returns ``None`` when the heartbeat no longer exists.
    """
    WorkerHeartbeat.objects.filter(pk=heartbeat_id, processed_at__isnull=True).update(
        processed_at=timezone.now(), worker_hostname=worker_hostname[:255]
    )
    heartbeat = WorkerHeartbeat.objects.filter(pk=heartbeat_id).first()
    if heartbeat is None:
        logger.warning("Heartbeat %s does not exist (deleted before the worker ran)", heartbeat_id)
    return heartbeat


BEAT_ROW = 1  # a single row: its age is all /healthz needs


def beat_heartbeat_record(*, worker_hostname: str) -> BeatHeartbeat:
    """Stamp the beat heartbeat now (one row, written over)."""
    heartbeat, _ = BeatHeartbeat.objects.update_or_create(
        pk=BEAT_ROW, defaults={"beat_at": timezone.now(), "worker_hostname": worker_hostname[:255]}
    )
    return heartbeat
