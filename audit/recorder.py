"""Entries for every write to a registered model (signals and ``AuditedQuerySet``) and for events (reads,
refusals, sign-ins, signatures).

The row is read back from the database after each write and hashed as stored: that hash, sealed in the
entry, is what the verification compares the table with later.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterable, Iterator
from typing import Any

from django.db import models
from django.db.models import F
from django.utils import timezone

from audit import chain, context
from audit.canonical import canonical_json, sha256_hex
from audit.models import AuditEntry
from audit.registry import AuditSpec, spec_for

Action = AuditEntry.Action
PATIENT_KEY = "_audit_patient_id"
DURABLE_ACTIONS = frozenset(
    {
        Action.ACCESS_DENIED,
        Action.SIGN_IN_FAILED,
        Action.SIGN_IN_LOCKED,
        Action.SECOND_FACTOR_FAILED,
        Action.SIGNATURE_FAILED,
        Action.INTEGRITY_ALERT,
    }
)
_suspended: contextvars.ContextVar[bool] = contextvars.ContextVar("mipd_audit_suspended", default=False)


@contextlib.contextmanager
def suspended() -> Iterator[None]:
    """No entries inside: only for benchmarks that measure the cost of auditing (and never in the app)."""
    token = _suspended.set(True)
    try:
        yield
    finally:
        _suspended.reset(token)


def recording() -> bool:
    return not _suspended.get()


# Row states


def row_states(spec: AuditSpec, pks: Iterable[Any], *, using: str) -> dict[Any, dict[str, Any]]:
    """The stored rows by primary key, as the database returns them (with the patient under PATIENT_KEY)."""
    pks = list(pks)
    if not pks:
        return {}
    rows = spec.model._base_manager.using(using).filter(pk__in=pks)
    extra = {PATIENT_KEY: F(spec.patient)} if spec.patient and spec.patient != "pk" else {}
    pk_name = spec.model._meta.pk.attname
    states = {}
    for row in rows.values(pk_name, *spec.attnames, **extra):
        states[row[pk_name]] = row
    return states


def split_state(spec: AuditSpec, state: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """(the hashed row, the patient id) of a state read by row_states."""
    row = {name: state[name] for name in spec.attnames}
    return row, state.get(PATIENT_KEY)


def row_hash(row: dict[str, Any]) -> str:
    return sha256_hex(canonical_json(row))


def shown(spec: AuditSpec, row: dict[str, Any]) -> dict[str, Any]:
    """The row as the entry shows it: big fields by their hash, secrets by a short fingerprint only."""
    result = {}
    for name, value in row.items():
        field = name[:-3] if name.endswith("_id") and name[:-3] in spec.digest | spec.redact else name
        if name in spec.redact or field in spec.redact:
            result[name] = {"redacted": sha256_hex(canonical_json(value))[:12]}
        elif name in spec.digest or field in spec.digest:
            result[name] = {"sha256": sha256_hex(canonical_json(value))}
        else:
            result[name] = value
    return result


# Entries


def _entry(
    action: str,
    *,
    object_type: str = "",
    object_id: Any = "",
    patient_id: Any = None,
    before: Any = None,
    after: Any = None,
    reason: str = "",
    row_sha256: str = "",
    actor: context.Actor | None = None,
    durable: bool = False,
) -> chain.PendingEntry:
    actor = actor or context.current()
    return chain.PendingEntry(
        at=timezone.now(),
        actor_id=actor.user_id,
        actor=actor.label,
        action=action,
        object_type=object_type,
        object_id="" if object_id is None else str(object_id),
        patient_id=patient_id,
        before="" if before is None else canonical_json(before),
        after="" if after is None else canonical_json(after),
        reason=(reason or actor.reason or "")[:5000],
        row_sha256=row_sha256,
        context=canonical_json(actor.context) if actor.context else "",
        durable=durable,
    )


def record_event(
    action: str,
    *,
    user: Any = None,
    patient_id: Any = None,
    object_type: str = "",
    object_id: Any = "",
    details: dict[str, Any] | None = None,
    reason: str = "",
    using: str = "default",
    durable: bool | None = None,
) -> None:
    """An event that is not a row change: a read, a refusal, a sign-in, an export.

    ``user`` names the actor when it is not the current one (e.g. a failed sign-in names nobody). Refusals,
    failures and alerts are durable by default: they stay in the trail when the transaction rolls back.
    """
    if durable is None:
        durable = action in DURABLE_ACTIONS
    if not recording():
        return
    actor = context.current()
    if user is not None:
        actor = context.user_actor(user, **actor.context)
    chain.enqueue(
        _entry(
            action,
            object_type=object_type,
            object_id=object_id,
            patient_id=patient_id,
            after=details,
            reason=reason,
            actor=actor,
            durable=durable,
        ),
        using=using,
    )


def _change_action(spec: AuditSpec, before: dict[str, Any], after: dict[str, Any]) -> str:
    if not before.get("entered_in_error") and after.get("entered_in_error"):
        return Action.MARK_ENTERED_IN_ERROR
    if not before.get("excluded") and after.get("excluded"):
        return Action.EXCLUDE
    return Action.CHANGE


def _reason(spec: AuditSpec, before: dict[str, Any] | None, after: dict[str, Any]) -> str:
    for name in spec.reason_fields:
        value = after.get(name)
        if value and (before is None or before.get(name) != value):
            return str(value)
    return ""


def record_rows(
    spec: AuditSpec,
    *,
    before: dict[Any, dict[str, Any]],
    after: dict[Any, dict[str, Any]],
    using: str,
) -> None:
    """Entries for the rows that were created, changed or deleted between two reads."""
    if not recording():
        return
    label = spec.label
    for pk in list(after) + [pk for pk in before if pk not in after]:
        old = before.get(pk)
        new = after.get(pk)
        if new is None:
            row, patient = split_state(spec, old)  # type: ignore[arg-type]
            chain.enqueue(
                _entry(
                    Action.DELETE,
                    object_type=label,
                    object_id=pk,
                    patient_id=patient,
                    before=shown(spec, row),
                ),
                using=using,
            )
            continue
        row, patient = split_state(spec, new)
        old_row = split_state(spec, old)[0] if old is not None else None
        if old_row == row:
            continue  # saved without a change
        action = Action.CREATE if old_row is None else _change_action(spec, old_row, row)
        chain.enqueue(
            _entry(
                action,
                object_type=label,
                object_id=pk,
                patient_id=patient,
                before=None if old_row is None else shown(spec, old_row),
                after=shown(spec, row),
                reason=_reason(spec, old_row, row),
                row_sha256=row_hash(row),
            ),
            using=using,
        )


# Signal receivers (connected in audit.apps)


def _using(instance: models.Model, using: str | None) -> str:
    return using or instance._state.db or "default"


def on_pre_save(
    sender: Any, instance: models.Model, raw: bool = False, using: str | None = None, **_: Any
) -> None:
    spec = spec_for(sender)
    if spec is None or not recording():
        return
    db = _using(instance, using)
    if instance._state.adding or instance.pk is None:
        instance._audit_before = {}  # type: ignore[attr-defined]
    else:
        instance._audit_before = row_states(spec, [instance.pk], using=db)  # type: ignore[attr-defined]


def on_post_save(sender: Any, instance: models.Model, using: str | None = None, **_: Any) -> None:
    spec = spec_for(sender)
    if spec is None or not recording():
        return
    db = _using(instance, using)
    before = getattr(instance, "_audit_before", None)
    if before is None:  # e.g. created with explicit primary key by a raw save: read nothing before
        before = {}
    instance._audit_before = None  # type: ignore[attr-defined]
    record_rows(spec, before=before, after=row_states(spec, [instance.pk], using=db), using=db)


def on_pre_delete(sender: Any, instance: models.Model, using: str | None = None, **_: Any) -> None:
    spec = spec_for(sender)
    if spec is None or not recording():
        return
    instance._audit_deleting = row_states(spec, [instance.pk], using=_using(instance, using))  # type: ignore[attr-defined]


def on_post_delete(sender: Any, instance: models.Model, using: str | None = None, **_: Any) -> None:
    spec = spec_for(sender)
    if spec is None or not recording():
        return
    before = getattr(instance, "_audit_deleting", None) or {}
    record_rows(spec, before=before, after={}, using=_using(instance, using))


def _through_rows(sender: Any, instance: models.Model, model: Any, pk_set: Any, reverse: bool) -> Any:
    """The rows of an m2m table (e.g. a user's groups) for the instance and the given other side."""
    source = target = None
    for field in sender._meta.concrete_fields:
        related = getattr(field, "related_model", None)
        if related is None:
            continue
        if related is instance._meta.concrete_model and source is None:
            source = field.attname
        elif related is model or (isinstance(model, type) and issubclass(model, related)):
            target = field.attname
    if source is None or target is None:
        return sender._base_manager.none()
    rows = sender._base_manager.filter(**{source: instance.pk})
    if pk_set is not None:
        rows = rows.filter(**{f"{target}__in": list(pk_set)})
    return rows


def on_m2m_changed(
    sender: Any,
    instance: models.Model,
    action: str,
    reverse: bool,
    model: Any,
    pk_set: Any,
    using: str,
    **_: Any,
) -> None:
    spec = spec_for(sender)
    if spec is None or not recording():
        return
    if action in ("pre_remove", "pre_clear"):
        pks = list(_through_rows(sender, instance, model, pk_set, reverse).values_list("pk", flat=True))
        instance._audit_m2m_before = row_states(spec, pks, using=using)  # type: ignore[attr-defined]
    elif action in ("post_remove", "post_clear"):
        before = getattr(instance, "_audit_m2m_before", None) or {}
        instance._audit_m2m_before = None  # type: ignore[attr-defined]
        after = row_states(spec, list(before), using=using)
        record_rows(spec, before=before, after=after, using=using)
    elif action == "post_add":
        pks = list(_through_rows(sender, instance, model, pk_set, reverse).values_list("pk", flat=True))
        record_rows(spec, before={}, after=row_states(spec, pks, using=using), using=using)
