"""Reads of the audit trail for the auditors: filtered entries, the verification runs."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet

from accounts.roles import Role
from accounts.selectors import user_has_role
from audit.models import AuditEntry, ChainVerification


def require_auditor(*, user: AbstractBaseUser | AnonymousUser) -> None:
    if not user_has_role(user=user, role=Role.AUDITOR):
        raise PermissionDenied("the audit trail is for auditors")


@dataclass(frozen=True)
class EntryFilter:
    patient: str = ""  # the patient's public id (the page resolves an MRN to it)
    user: str = ""  # a user name
    action: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def entries(*, user: AbstractBaseUser | AnonymousUser, where: EntryFilter) -> QuerySet[AuditEntry]:
    """Entries newest first, filtered by patient, user, action and time (UTC)."""
    require_auditor(user=user)
    rows = AuditEntry.objects.all().order_by("-seq")
    if where.patient:
        try:
            rows = rows.filter(patient_id=uuid.UUID(where.patient))
        except ValueError:
            rows = rows.none()
    if where.user:
        account = get_user_model()._default_manager.filter(username=where.user).first()
        rows = rows.filter(actor_id=account.pk) if account else rows.filter(actor=where.user)
    if where.action:
        rows = rows.filter(action=where.action)
    if where.since:
        rows = rows.filter(at__gte=where.since)
    if where.until:
        rows = rows.filter(at__lt=where.until)
    return rows


def verification_runs(*, user: AbstractBaseUser | AnonymousUser, limit: int = 20) -> list[ChainVerification]:
    require_auditor(user=user)
    return list(ChainVerification.objects.order_by("-started_at", "-pk")[:limit])


def export_rows(rows: QuerySet[AuditEntry]) -> Any:
    """The CSV lines of an export: one header, then one line per entry (oldest first), hashes included."""
    yield [
        "seq",
        "at_utc",
        "actor",
        "actor_id",
        "action",
        "object_type",
        "object_id",
        "patient_id",
        "reason",
        "before",
        "after",
        "row_sha256",
        "context",
        "prev_hash",
        "entry_hash",
    ]
    for entry in rows.order_by("seq").iterator(chunk_size=2000):
        yield [
            entry.seq,
            entry.at.astimezone(dt.UTC).isoformat(),
            entry.actor,
            entry.actor_id or "",
            entry.action,
            entry.object_type,
            entry.object_id,
            entry.patient_id or "",
            entry.reason,
            entry.before,
            entry.after,
            entry.row_sha256,
            entry.context,
            entry.prev_hash,
            entry.entry_hash,
        ]
