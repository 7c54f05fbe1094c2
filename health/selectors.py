"""Reads of the health app: the state of the database, the broker and the workers."""

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from django.db import DEFAULT_DB_ALIAS, connections

from mipd_web.celery import app as celery_app

logger = logging.getLogger(__name__)

State = Literal["ok", "eager", "error"]
EAGER_DETAIL = "eager: tasks run in process"


@dataclass(frozen=True)
class ComponentStatus:
    status: State
    detail: str
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        extra = data.pop("extra")
        return {**data, **extra}


@dataclass(frozen=True)
class SystemStatus:
    database: ComponentStatus
    broker: ComponentStatus
    worker: ComponentStatus

    @property
    def status(self) -> Literal["ok", "degraded", "error"]:
        """``error`` when the database is down (nothing works), ``degraded`` when only tasks are affected."""
        if self.database.status == "error":
            return "error"
        if "error" in (self.broker.status, self.worker.status):
            return "degraded"
        return "ok"

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "database": self.database.as_dict(),
            "broker": self.broker.as_dict(),
            "worker": self.worker.as_dict(),
        }


def _failure(component: str, exc: Exception) -> ComponentStatus:
    # The exception text may carry host names or credentials: log it, show only its type.
    logger.warning("Health check: %s unavailable", component, exc_info=exc)
    return ComponentStatus(status="error", detail=f"{type(exc).__name__}: {component} unavailable")


def database_status() -> ComponentStatus:
    connection = connections[DEFAULT_DB_ALIAS]
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return _failure("database", exc)
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    return ComponentStatus(status="ok", detail=connection.vendor, extra={"latency_ms": latency_ms})


def broker_status() -> ComponentStatus:
    if celery_app.conf.task_always_eager:
        return ComponentStatus(status="eager", detail=EAGER_DETAIL)
    try:
        with celery_app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=2)
    except Exception as exc:
        return _failure("broker", exc)
    return ComponentStatus(status="ok", detail=celery_app.conf.broker_url.split("://", 1)[0])


def worker_status(*, broker: ComponentStatus, timeout_s: float = 1.0) -> ComponentStatus:
    if broker.status == "eager":
        return ComponentStatus(status="eager", detail=EAGER_DETAIL)
    if broker.status != "ok":
        return ComponentStatus(status="error", detail="unknown: the broker is unreachable")
    try:
        replies = celery_app.control.inspect(timeout=timeout_s).ping() or {}
    except Exception as exc:
        return _failure("worker", exc)
    workers = sorted(replies)
    if not workers:
        return ComponentStatus(
            status="error", detail=f"no worker answered within {timeout_s:g} s", extra={"workers": []}
        )
    return ComponentStatus(
        status="ok", detail=f"{len(workers)} worker(s) answered", extra={"workers": workers}
    )


def system_status() -> SystemStatus:
    database = database_status()
    broker = broker_status()
    return SystemStatus(database=database, broker=broker, worker=worker_status(broker=broker))
