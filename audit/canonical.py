"""One text per value: the canonical JSON that audit hashes are computed over.

Rows are hashed as the database returns them (never as a model instance holds them in memory, where ``1000``
may still be an int that the database stores as ``1000.0``), so the hash written with an entry and the hash
recomputed by the verification agree byte for byte.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import uuid
from typing import Any


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"cannot put {type(value).__name__} in an audit entry")


def canonical_json(value: Any) -> str:
    """Key-sorted, whitespace-free, UTF-8 JSON; datetimes in UTC ISO 8601."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
