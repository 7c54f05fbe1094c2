from django.db import models


class WorkerHeartbeat(models.Model):
    """A round trip through the task queue: created by the web process, stamped by the worker that ran it."""

    created_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    worker_hostname = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        state = f"processed by {self.worker_hostname}" if self.processed_at else "pending"
        return f"Heartbeat {self.pk} ({state})"


class BeatHeartbeat(models.Model):
    """One row, stamped by the worker that runs the ``health.beat_heartbeat`` task beat sends every
    BEAT_HEARTBEAT_EVERY_S: fresh while beat, the broker and a worker all do their part."""

    beat_at = models.DateTimeField(help_text="when a worker last ran beat's heartbeat task")
    worker_hostname = models.CharField(max_length=255, blank=True)

    def __str__(self) -> str:
        return f"Beat heartbeat at {self.beat_at:%Y-%m-%d %H:%M:%S} by {self.worker_hostname}"
