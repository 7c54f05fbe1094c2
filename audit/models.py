"""The audit trail: append-only entries chained by a keyed hash, the chain's head, and verification runs.

An entry never changes and is never deleted: the model refuses it here, and on PostgreSQL a trigger refuses
UPDATE, DELETE and TRUNCATE on the table whatever the client (``audit/migrations/0002_append_only.py``).
Entries reference users and patients by value, not by foreign key: the trail outlives what it describes, and
taking no row locks elsewhere keeps appending free of lock-order deadlocks.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import models


class AppendOnlyError(Exception):
    """The audit trail is append-only: entries are never changed or deleted."""


class AuditEntryQuerySet(models.QuerySet["AuditEntry"]):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("audit entries are never changed")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("audit entries are never deleted")

    def bulk_update(self, *args: Any, **kwargs: Any) -> int:
        raise AppendOnlyError("audit entries are never changed")


class AuditEntry(models.Model):
    class Action(models.TextChoices):
        CREATE = "create", "Created"
        CHANGE = "change", "Changed"
        MARK_ENTERED_IN_ERROR = "mark_entered_in_error", "Marked entered in error"
        EXCLUDE = "exclude", "Excluded"
        DELETE = "delete", "Deleted"
        READ = "read", "Read"
        ACCESS_DENIED = "access_denied", "Access refused"
        BREAK_GLASS = "break_glass", "Emergency access (break the glass)"
        SIGN_IN = "sign_in", "Signed in"
        SIGN_IN_FAILED = "sign_in_failed", "Failed sign-in"
        SIGN_IN_LOCKED = "sign_in_locked", "Sign-in locked out"
        SECOND_FACTOR = "second_factor", "Second factor verified"
        SECOND_FACTOR_FAILED = "second_factor_failed", "Second factor refused"
        SIGN_OUT = "sign_out", "Signed out"
        SESSION_TIMEOUT = "session_timeout", "Session ended (idle)"
        SIGNATURE = "signature", "Electronic signature"
        SIGNATURE_FAILED = "signature_failed", "Signature refused"
        INTEGRITY_ALERT = "integrity_alert", "Integrity alert"
        EXPORT = "export", "Audit export"
        VERIFY = "verify", "Chain verified"

    seq = models.BigIntegerField(primary_key=True, help_text="position in the chain, from 1, no gaps")
    at = models.DateTimeField(help_text="when it happened (UTC)")
    actor_id = models.BigIntegerField(null=True, blank=True, help_text="the user's id (not a foreign key)")
    actor = models.CharField(max_length=200, help_text="user name at the time, or the system part that acted")
    action = models.CharField(max_length=40, choices=Action.choices)
    object_type = models.CharField(max_length=100, blank=True, help_text="app_label.model")
    object_id = models.CharField(max_length=200, blank=True)
    patient_id = models.UUIDField(null=True, blank=True, help_text="the patient's public id")
    before = models.TextField(blank=True, help_text="canonical JSON of the row before")
    after = models.TextField(blank=True, help_text="canonical JSON of the row after, or the event's details")
    reason = models.TextField(blank=True)
    row_sha256 = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the whole row after")
    context = models.TextField(blank=True, help_text="canonical JSON: request path, method, address")
    key_id = models.CharField(max_length=16, help_text="fingerprint of the chain key that sealed this entry")
    prev_hash = models.CharField(max_length=64)
    entry_hash = models.CharField(max_length=64, unique=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ("-seq",)
        verbose_name_plural = "audit entries"
        indexes = (
            models.Index(fields=("patient_id", "at")),
            models.Index(fields=("actor_id", "at")),
            models.Index(fields=("object_type", "object_id")),
            models.Index(fields=("at",)),
            models.Index(fields=("action", "at")),
        )

    def __str__(self) -> str:
        return f"#{self.seq} {self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.object_type}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        raise AppendOnlyError("audit entries are written by audit.chain only, and never changed")

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("audit entries are never deleted")

    @staticmethod
    def _parsed(text: str) -> Any:
        return json.loads(text) if text else None

    @property
    def before_data(self) -> Any:
        return self._parsed(self.before)

    @property
    def after_data(self) -> Any:
        return self._parsed(self.after)

    @property
    def context_data(self) -> Any:
        return self._parsed(self.context) or {}

    @property
    def changes(self) -> list[tuple[str, Any, Any]]:
        """(field, before, after) for each field that differs (a created row: every field)."""
        before, after = self.before_data, self.after_data
        if not isinstance(after, dict):
            return []
        if not isinstance(before, dict):
            return [(name, None, value) for name, value in after.items()]
        names = sorted(set(before) | set(after))
        return [
            (name, before.get(name), after.get(name)) for name in names if before.get(name) != after.get(name)
        ]


class ChainHead(models.Model):
    """The last entry of the chain (one row): appending locks it, so entries are chained one at a time."""

    seq = models.BigIntegerField(default=0)
    entry_hash = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"head #{self.seq}"


class ChainVerification(models.Model):
    """One run of the verification: what it checked and the first broken link it found."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    requested_by_id = models.BigIntegerField(null=True, blank=True)
    requested_by = models.CharField(max_length=200)
    ok = models.BooleanField(null=True, help_text="None while running")
    entries = models.BigIntegerField(default=0)
    rows = models.BigIntegerField(default=0, help_text="clinical and catalog rows compared with the chain")
    first_broken_seq = models.BigIntegerField(null=True, blank=True)
    problems = models.JSONField(default=list, blank=True)
    head_hash = models.CharField(max_length=64, blank=True)
    seconds = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ("-started_at", "-pk")

    def __str__(self) -> str:
        state = "running" if self.ok is None else ("intact" if self.ok else "BROKEN")
        return f"verification {self.started_at:%Y-%m-%d %H:%M} {state}"
