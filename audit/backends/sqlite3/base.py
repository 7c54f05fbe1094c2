"""Django's SQLite backend, writing the audit chain at commit (``audit.backends``)."""

from django.db.backends.sqlite3 import base

from audit.backends import AuditedCommitMixin


class DatabaseWrapper(AuditedCommitMixin, base.DatabaseWrapper):
    pass
