import socket

from celery import Task, shared_task

from health.services import beat_heartbeat_record, heartbeat_record


@shared_task(bind=True, name="health.ping_worker", ignore_result=True)
def ping_worker(self: Task, *, heartbeat_id: int) -> None:
    """Stamp a heartbeat with the name of the worker that ran it (``eager@host`` when run in process)."""
    hostname = f"eager@{socket.gethostname()}" if self.request.is_eager else self.request.hostname
    heartbeat_record(heartbeat_id=heartbeat_id, worker_hostname=hostname or "unknown")


@shared_task(bind=True, name="health.beat_heartbeat", ignore_result=True)
def beat_heartbeat(self: Task) -> None:
    """Periodic (sent by beat every BEAT_HEARTBEAT_EVERY_S): the beat heartbeat /healthz reads."""
    hostname = f"eager@{socket.gethostname()}" if self.request.is_eager else self.request.hostname
    beat_heartbeat_record(worker_hostname=hostname or "unknown")
