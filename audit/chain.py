"""Appending to the hash chain.

Each entry is sealed with HMAC-SHA256 over its own fields and the previous entry's hash, keyed with
``AUDIT_HMAC_KEY`` (default: derived from ``SECRET_KEY``). Changing, removing or inserting an entry breaks
every later link, and nobody without the key can seal a forged one.

Entries are *collected* while a transaction runs and *chained* just before it commits, by the database
backend of ``audit.backends`` (``commit()``): the chain head is then the last lock the transaction takes, so
appending can never deadlock with the row locks of the services, and entries of a rolled-back transaction or
savepoint are dropped with it. Outside a transaction an entry is written at once, in a transaction of its
own. Django's ``TestCase`` never commits: there the end of the outermost block of the code under test stands
for the commit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from audit.canonical import canonical_json

logger = logging.getLogger(__name__)
GENESIS = "0" * 64


@lru_cache(maxsize=4)
def _key_for(configured: str, secret_key: str) -> bytes:
    if configured:
        return configured.encode("utf-8")
    return salted_hmac("mipd.audit.chain", "chain key", secret=secret_key, algorithm="sha256").digest()


def chain_key() -> bytes:
    return _key_for(settings.AUDIT_HMAC_KEY, settings.SECRET_KEY)


def key_id(key: bytes | None = None) -> str:
    """A fingerprint of the key (not the key): which key sealed an entry."""
    return hashlib.sha256(b"mipd-audit-key-id\0" + (key or chain_key())).hexdigest()[:16]


@dataclass
class PendingEntry:
    at: dt.datetime
    actor_id: int | None
    actor: str
    action: str
    object_type: str = ""
    object_id: str = ""
    patient_id: Any = None  # uuid.UUID or None
    before: str = ""
    after: str = ""
    reason: str = ""
    row_sha256: str = ""
    context: str = ""
    # Kept even when the transaction rolls back (a refusal, a failed signature, an integrity alert): the
    # event happened although what it was about did not.
    durable: bool = False


# The sealed fields, in this order; the verification reads the same columns back and recomputes the seal.
SEALED_FIELDS = (
    "seq",
    "at",
    "actor_id",
    "actor",
    "action",
    "object_type",
    "object_id",
    "patient_id",
    "before",
    "after",
    "reason",
    "row_sha256",
    "context",
    "key_id",
    "prev_hash",
)


def seal(values: tuple[Any, ...], key: bytes) -> str:
    """The entry hash of the sealed field values (in ``SEALED_FIELDS`` order)."""
    at = values[1]
    normalised = list(values)
    normalised[1] = at.astimezone(dt.UTC).isoformat() if isinstance(at, dt.datetime) else str(at)
    normalised[7] = None if values[7] is None else str(values[7])
    return hmac.new(key, canonical_json(normalised).encode("utf-8"), hashlib.sha256).hexdigest()


def _pending(connection: Any) -> list[tuple[frozenset[Any], PendingEntry]]:
    if not hasattr(connection, "audit_pending"):
        connection.audit_pending = []
    return connection.audit_pending


def logically_in_transaction(connection: Any) -> bool:
    """In an atomic block of the code itself (TestCase's own blocks stand for autocommit)."""
    return any(not getattr(block, "_from_testcase", False) for block in connection.atomic_blocks)


def enqueue(entry: PendingEntry, *, using: str = "default") -> None:
    """Add an entry to the chain with the current transaction (at once when there is none)."""
    connection = connections[using]
    if logically_in_transaction(connection):
        _pending(connection).append((frozenset(connection.savepoint_ids), entry))
        return
    with transaction.atomic(using=using):
        _pending(connection).append((frozenset(connection.savepoint_ids), entry))


def drop_after_savepoint(connection: Any, sid: Any) -> None:
    """A savepoint was rolled back: the entries written since go with it (durable ones stay, a level up)."""
    pending = _pending(connection)
    pending[:] = [
        (sids - {sid}, entry) if entry.durable else (sids, entry)
        for sids, entry in pending
        if entry.durable or sid not in sids
    ]


def take_durable(connection: Any) -> list[PendingEntry]:
    """The transaction rolls back: drop its entries, and hand over the durable ones to be written after."""
    pending = _pending(connection)
    durable = [entry for _, entry in pending if entry.durable]
    pending.clear()
    return durable


def write_after_rollback(connection: Any, entries: list[PendingEntry], commit: Any) -> None:
    """Write durable entries in a transaction of their own, right after a rollback."""
    try:
        _append(connection.alias, entries)
        commit()
    except Exception:  # never hide the error that caused the rollback
        logger.exception("could not write %d audit entries after a rollback", len(entries))


def flush(connection: Any) -> None:
    """Chain and insert the collected entries, in the still open transaction, just before it commits."""
    pending = _pending(connection)
    if not pending:
        return
    entries = [entry for _, entry in pending]
    pending.clear()
    try:
        _append(connection.alias, entries)
    except Exception as exc:  # the commit must fail with it: a change is never committed without its entry
        logger.exception("could not append %d audit entries", len(entries))
        if isinstance(exc, DatabaseError):
            raise
        raise DatabaseError(f"the audit trail could not be written: {exc}") from exc


def _append(using: str, entries: list[PendingEntry]) -> None:
    from audit.models import AuditEntry, ChainHead

    head = ChainHead.objects.using(using).select_for_update().filter(pk=1).first()
    if head is None:  # a fresh database (or a test flush): start from the last entry, if any
        last = AuditEntry.objects.using(using).order_by("-seq").values_list("seq", "entry_hash").first()
        head = ChainHead(pk=1, seq=last[0] if last else 0, entry_hash=last[1] if last else GENESIS)
        head.save(using=using, force_insert=True)
    key = chain_key()
    kid = key_id(key)
    seq, previous = head.seq, head.entry_hash or GENESIS
    rows = []
    for entry in entries:
        seq += 1
        values = (
            seq,
            entry.at,
            entry.actor_id,
            entry.actor[:200],
            entry.action,
            entry.object_type,
            entry.object_id[:200],
            entry.patient_id,
            entry.before,
            entry.after,
            entry.reason,
            entry.row_sha256,
            entry.context,
            kid,
            previous,
        )
        digest = seal(values, key)
        rows.append(AuditEntry(**dict(zip(SEALED_FIELDS, values, strict=True)), entry_hash=digest))
        previous = digest
    AuditEntry.objects.using(using).bulk_create(rows)
    ChainHead.objects.using(using).filter(pk=1).update(
        seq=seq, entry_hash=previous, updated_at=timezone.now()
    )
