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
