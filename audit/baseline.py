"""Rows that existed before they were audited get one "baseline" entry each, so the verification can
check them from then on.

At ``migrate`` this happens by itself only while the trail is still empty (the first migration of an
existing installation, or a new database). Later, a row written outside the application is exactly what the
verification must report; if IT has a legitimate reason (a data migration), ``manage.py audit_baseline
--reason ...`` records the rows with that reason, and the entry names who ran it.
"""

from __future__ import annotations

from typing import Any

from audit import context
from audit.models import AuditEntry
from audit.recorder import record_rows, row_states
from audit.registry import specs


def record_baseline(*, reason: str, using: str = "default") -> int:
    """One entry for every registered row with no entry of its own; returns how many."""
    from django.db import transaction

    count = 0
    with transaction.atomic(using=using), context.because(reason):
        for spec in specs():
            audited = set(
                AuditEntry.objects.using(using)
                .filter(object_type=spec.label)
                .values_list("object_id", flat=True)
                .distinct()
            )
            missing = [
                pk
                for pk in spec.model._base_manager.using(using).values_list("pk", flat=True).iterator()
                if str(pk) not in audited
            ]
            for start in range(0, len(missing), 2000):
                chunk = missing[start : start + 2000]
                record_rows(spec, before={}, after=row_states(spec, chunk, using=using), using=using)
            count += len(missing)
    return count


def on_post_migrate(sender: Any, using: str = "default", **_: Any) -> None:
    if sender.name != "audit":
        return
    if AuditEntry.objects.using(using).exists():
        return
    record_baseline(reason="baseline: the row existed before the audit trail began", using=using)
