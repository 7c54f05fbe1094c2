"""Writes of the audit app: a verification run, stored for the auditors' page, itself an entry."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from audit import context
from audit.models import AuditEntry, ChainVerification
from audit.recorder import record_event
from audit.verify import report_as_dict, verify_chain


def verification_run(*, user: Any = None, max_problems: int = 50) -> ChainVerification:
    """Verify the whole trail now; the result is kept (and the run is an entry of the trail)."""
    actor = context.current() if user is None else context.user_actor(user)
    run = ChainVerification.objects.create(
        started_at=timezone.now(), requested_by_id=actor.user_id, requested_by=actor.label
    )
    report = verify_chain(max_problems=max_problems)
    run.finished_at = timezone.now()
    run.ok = report.ok
    run.entries = report.entries
    run.rows = report.rows
    run.first_broken_seq = report.first_broken_seq
    run.problems = report.problems + (
        [f"... and {report.problem_count - len(report.problems)} more"]
        if report.problem_count > len(report.problems)
        else []
    )
    run.head_hash = report.head_hash
    run.seconds = report.seconds
    run.save()
    details = report_as_dict(report)
    details["problems"] = details["problems"][:10]
    record_event(
        AuditEntry.Action.VERIFY,
        user=user,
        object_type="audit.chainverification",
        object_id=run.pk,
        details=details,
        reason=report.summary,
    )
    return run
