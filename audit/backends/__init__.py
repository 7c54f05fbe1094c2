"""Database backends that write the audit chain as part of each commit (see ``audit.chain``).

They are Django's own PostgreSQL and SQLite backends with four hooks: ``commit`` chains the entries the
transaction collected, ``rollback`` and ``savepoint_rollback`` drop them (but
write the durable ones: refusals, failed signatures, alerts), and ``savepoint_commit`` stands for
the commit inside Django's ``TestCase`` (which never commits). ``mipd_web.settings`` selects them.
"""

from __future__ import annotations

from typing import Any

from audit import chain


class AuditedCommitMixin:
    atomic_blocks: list[Any]

    def commit(self) -> None:
        chain.flush(self)
        super().commit()  # type: ignore[misc]

    def rollback(self) -> None:
        durable = chain.take_durable(self)
        super().rollback()  # type: ignore[misc]
        if durable:
            chain.write_after_rollback(self, durable, super().commit)  # type: ignore[misc]

    def savepoint_rollback(self, sid: Any) -> None:
        chain.drop_after_savepoint(self, sid)
        super().savepoint_rollback(sid)  # type: ignore[misc]

    def savepoint_commit(self, sid: Any) -> None:
        super().savepoint_commit(sid)  # type: ignore[misc]
        if not chain.logically_in_transaction(self):
            chain.flush(self)

    def close(self) -> None:
        chain.take_durable(self)
        super().close()  # type: ignore[misc]
