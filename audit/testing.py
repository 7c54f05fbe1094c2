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
