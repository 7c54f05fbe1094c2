"""``QuerySet.update()``, ``bulk_create()`` and ``bulk_update()`` send no signals: on registered models they
go through this queryset, which reads the rows before and after and records an entry for each one changed.

A registered model uses it as its manager (``objects = AuditedManager()``); ``tests/audit`` checks that
every registered model of the project does. Deletes need nothing here: Django sends their signals.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import connections, models, transaction

from audit.recorder import record_rows, recording, row_states
from audit.registry import spec_for


class AuditedQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        spec = spec_for(self.model)
        if spec is None or not recording():
            return super().update(**kwargs)
        with transaction.atomic(using=self.db):
            lock_of = ("self",) if connections[self.db].features.has_select_for_update_of else ()
            locked = self.order_by().select_for_update(of=lock_of)
            pks = list(locked.values_list("pk", flat=True))
            if not pks:
                return 0
            before = row_states(spec, pks, using=self.db)
            count = self.model._base_manager.using(self.db).filter(pk__in=pks).update(**kwargs)
            record_rows(spec, before=before, after=row_states(spec, pks, using=self.db), using=self.db)
        return count

    update.alters_data = True  # type: ignore[attr-defined]

    def bulk_create(self, objs: Iterable[models.Model], *args: Any, **kwargs: Any) -> list[models.Model]:
        spec = spec_for(self.model)
        if spec is None or not recording():
            return super().bulk_create(objs, *args, **kwargs)
        with transaction.atomic(using=self.db):
            created = super().bulk_create(objs, *args, **kwargs)
            pks = [obj.pk for obj in created if obj.pk is not None]
            if len(pks) != len(created):
                raise RuntimeError(f"{self.model._meta.label}: bulk_create returned no keys to audit")
            for start in range(0, len(pks), 2000):
                chunk = pks[start : start + 2000]
                record_rows(spec, before={}, after=row_states(spec, chunk, using=self.db), using=self.db)
        return created

    def bulk_update(self, objs: Iterable[models.Model], fields: Any, *args: Any, **kwargs: Any) -> int:
        spec = spec_for(self.model)
        if spec is None or not recording():
            return super().bulk_update(objs, fields, *args, **kwargs)
        objs = list(objs)
        pks = [obj.pk for obj in objs]
        with transaction.atomic(using=self.db):
            before = row_states(spec, pks, using=self.db)
            count = super().bulk_update(objs, fields, *args, **kwargs)
            record_rows(spec, before=before, after=row_states(spec, pks, using=self.db), using=self.db)
        return count


class AuditedManager(models.Manager.from_queryset(AuditedQuerySet)):  # type: ignore[misc]
    pass
