"""Accounts use django.contrib.auth's User; a user's roles are its groups (see accounts.roles)."""

from django.conf import settings
from django.db import models


class IdempotencyRecord(models.Model):
    """The first answer to a creating POST sent with an ``Idempotency-Key``: a retry gets it back."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    body_sha256 = models.CharField(max_length=64, help_text="the first request's body")
    status_code = models.PositiveSmallIntegerField()
    response_body = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = (
            models.UniqueConstraint(fields=("user", "key", "method", "path"), name="idempotency_key_once"),
        )

    def __str__(self) -> str:
        return f"{self.method} {self.path} key {self.key}"
