"""Helpers of the audit tests."""

from __future__ import annotations

from typing import Any

from audit.models import AuditEntry


def entries_for(obj: Any) -> list[AuditEntry]:
    """The entries about one row, oldest first."""
    return list(
        AuditEntry.objects.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk)).order_by("seq")
    )


def actions_for(obj: Any) -> list[str]:
    return [entry.action for entry in entries_for(obj)]
