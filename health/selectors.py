"""Reads of the health app: the state of the database, the broker, beat, the update queue and the outbox.

Each component is ``ok``, ``degraded`` (the site works, something needs an operator) or ``failing`` (the
site cannot work: the database is down); ``unknown`` when it cannot be read because the database is down.
Every check is a query on an index or a cached broker ping, so that /healthz answers in milliseconds
(benchmarks/bench_healthz.py): the broker is pinged with a 0.5 s timeout at most once every 5 s per process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import redis
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone
from redis.backoff import NoBackoff
from redis.retry import Retry

from dosing.selectors import queue_figures
from health.models import BeatHeartbeat
from health.services import BEAT_ROW
from mipd_web.celery import app as celery_app

logger = logging.getLogger(__name__)

State = Literal["ok", "degraded", "failing", "unknown"]
EAGER_DETAIL = "eager: tasks run in process"
BROKER_PING_TIMEOUT_S = 0.5
BROKER_PING_CACHE_S = 5.0


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
    components: dict[str, ComponentStatus]

    @property
    def status(self) -> Literal["ok", "degraded", "failing"]:
        """``failing`` when a component fails (nothing works), ``degraded`` when one needs an operator."""
        states = {component.status for component in self.components.values()}
        if "failing" in states:
            return "failing"
        return "degraded" if "degraded" in states else "ok"

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, **{name: c.as_dict() for name, c in self.components.items()}}


def _failure(component: str, exc: Exception, status: State) -> ComponentStatus:
    # The exception text may carry host names or credentials: log it, show only its type.
    logger.warning("Health check: %s unavailable", component, exc_info=exc)
    return ComponentStatus(status=status, detail=f"{type(exc).__name__}: {component} unavailable")


def database_status() -> ComponentStatus:
    connection = connections[DEFAULT_DB_ALIAS]
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return _failure("database", exc, "failing")
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    return ComponentStatus(status="ok", detail=connection.vendor, extra={"latency_ms": latency_ms})


class _BrokerPing:
    """The last ping of the broker, per process, reused for BROKER_PING_CACHE_S (a down broker costs one
    timeout per period, not one per request)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._checked_at = -float("inf")
        self._url = ""
        self._status: ComponentStatus | None = None

    def clear(self) -> None:
        with self._lock:
            self._checked_at, self._status = -float("inf"), None

    def status(self) -> ComponentStatus:
        url = celery_app.conf.broker_url
        with self._lock:  # one ping at a time; the others wait for its answer, at most the timeout
            now = self.clock()
            if self._status is None or url != self._url or now - self._checked_at >= BROKER_PING_CACHE_S:
                self._status, self._url, self._checked_at = _ping(url), url, now
            age_s = round(now - self._checked_at, 1)
            return ComponentStatus(self._status.status, self._status.detail, {"checked_s_ago": age_s})


def _ping(url: str) -> ComponentStatus:
    client = redis.Redis.from_url(
        url,
        socket_connect_timeout=BROKER_PING_TIMEOUT_S,
        socket_timeout=BROKER_PING_TIMEOUT_S,
        retry=Retry(NoBackoff(), 0),  # redis-py retries by default: one try within the timeout
    )
    try:
        client.ping()
    except Exception as exc:
        return _failure("broker", exc, "degraded")  # the outbox keeps every saved level's update
    finally:
        client.close()
    return ComponentStatus(status="ok", detail=url.split("://", 1)[0])


broker_ping = _BrokerPing()


def broker_status() -> ComponentStatus:
    if celery_app.conf.task_always_eager:
        return ComponentStatus(status="ok", detail=EAGER_DETAIL)
    return broker_ping.status()


def beat_status() -> ComponentStatus:
    max_age_s = settings.HEALTHZ_BEAT_MAX_AGE_S
    if celery_app.conf.task_always_eager:
        return ComponentStatus(status="ok", detail=f"not needed: {EAGER_DETAIL}")
    heartbeat = BeatHeartbeat.objects.filter(pk=BEAT_ROW).first()
    if heartbeat is None:
        return ComponentStatus(
            status="degraded", detail="no heartbeat yet: is beat running?", extra={"max_age_s": max_age_s}
        )
    age_s = round(max(0.0, (timezone.now() - heartbeat.beat_at).total_seconds()), 1)
    extra = {"age_s": age_s, "max_age_s": max_age_s, "worker": heartbeat.worker_hostname}
    if age_s > max_age_s:
        detail = f"no heartbeat for {age_s:.0f} s: beat stopped, or no worker ran its tasks"
        return ComponentStatus(status="degraded", detail=detail, extra=extra)
    return ComponentStatus(status="ok", detail=f"heartbeat {age_s:.0f} s ago", extra=extra)


def queue_statuses() -> dict[str, ComponentStatus]:
    """The updates (stuck, oldest queued) and the outbox (oldest undelivered), from one read each."""
    figures = queue_figures()
    queued_max_s, outbox_max_s = settings.HEALTHZ_QUEUED_MAX_AGE_S, settings.HEALTHZ_OUTBOX_MAX_AGE_S
    problems = []
    if figures.stuck:
        problems.append(f"{figures.stuck} stuck past the time limit (the reaper requeues them)")
    if figures.oldest_queued_s is not None and figures.oldest_queued_s > queued_max_s:
        problems.append(f"the oldest has waited {figures.oldest_queued_s:.0f} s (limit {queued_max_s} s)")
    updates = ComponentStatus(
        status="degraded" if problems else "ok",
        detail="; ".join(problems) or f"{figures.queued} queued, {figures.running} running",
        extra={
            "queued": figures.queued,
            "running": figures.running,
            "stuck": figures.stuck,
            "oldest_queued_s": figures.oldest_queued_s,
            "max_queued_age_s": queued_max_s,
        },
    )
    late = figures.oldest_outbox_s is not None and figures.oldest_outbox_s > outbox_max_s
    outbox = ComponentStatus(
        status="degraded" if late else "ok",
        detail=(
            f"{figures.outbox_pending} update(s) not handed to the broker, the oldest for "
            f"{figures.oldest_outbox_s:.0f} s"
            if late
            else f"{figures.outbox_pending} pending delivery"
        ),
        extra={
            "pending": figures.outbox_pending,
            "oldest_pending_s": figures.oldest_outbox_s,
            "max_age_s": outbox_max_s,
        },
    )
    return {"updates": updates, "outbox": outbox}


def system_status() -> SystemStatus:
    database = database_status()
    components = {"database": database, "broker": broker_status()}
    if database.status == "failing":
        unknown = ComponentStatus(status="unknown", detail="unknown: the database is unavailable")
        components |= {"beat": unknown, "updates": unknown, "outbox": unknown}
    else:
        try:
            components |= {"beat": beat_status(), **queue_statuses()}
        except Exception as exc:  # the database went away between the checks
            failed = _failure("database", exc, "failing")
            components |= {"database": failed, "beat": failed, "updates": failed, "outbox": failed}
    return SystemStatus(components=components)
