"""Django's PostgreSQL backend, writing the audit chain at commit (``audit.backends``)."""

from django.db.backends.postgresql import base

from audit.backends import AuditedCommitMixin


class DatabaseWrapper(AuditedCommitMixin, base.DatabaseWrapper):
    pass
