"""For the test suite only: emptying a PostgreSQL test database that holds the append-only audit tables.

Django's transactional tests empty every table with TRUNCATE after each test; the audit tables refuse it
(audit/migrations/0002_append_only.py). The test database's superuser may switch the triggers off for that
one statement (``session_replication_role = replica``), as a database administrator could: the application
never does, and the tests that prove the tables append-only run with the triggers on.
"""

from __future__ import annotations

from typing import Any


def allow_test_database_flush() -> None:
    import django.db.models  # noqa: F401 (import order: the backend modules need the ORM loaded)
    from django.db.backends.postgresql.operations import DatabaseOperations

    if getattr(DatabaseOperations.sql_flush, "_mipd_test_flush", False):
        return
    original = DatabaseOperations.sql_flush

    def sql_flush(self: Any, style: Any, tables: Any, **kwargs: Any) -> list[str]:
        statements = original(self, style, tables, **kwargs)
        if not statements:
            return statements
        return ["SET LOCAL session_replication_role = replica", *statements]

    sql_flush._mipd_test_flush = True  # type: ignore[attr-defined]
    DatabaseOperations.sql_flush = sql_flush  # type: ignore[method-assign]


def flush_at_the_end_of_each_block() -> None:
    """Inside Django's TestCase nothing commits: the end of the outermost block of the code under test stands
    for the commit. Blocks with a savepoint reach ``savepoint_commit`` (audit.backends); this covers those
    without one (``atomic(savepoint=False)``, as Django's m2m ``add`` uses), which release nothing."""
    from django.db import transaction

    from audit import chain

    atomic = transaction.Atomic
    if getattr(atomic.__exit__, "_mipd_test_flush", False):
        return
    original = atomic.__exit__

    def __exit__(self: Any, exc_type: Any, exc_value: Any, traceback: Any) -> Any:
        result = original(self, exc_type, exc_value, traceback)
        connection = transaction.get_connection(self.using)
        if (
            exc_type is None
            and connection.in_atomic_block
            and not connection.needs_rollback
            and not chain.logically_in_transaction(connection)
        ):
            chain.flush(connection)
        return result

    __exit__._mipd_test_flush = True  # type: ignore[attr-defined]
    atomic.__exit__ = __exit__  # type: ignore[method-assign]
