"""Engine work inside a request: a wall-clock budget and a per-process cap on how many run at once.

A request's engine call (a what-if, a pharmacist's changed regimen, the starting dose, a curator's preview)
holds a web worker while it runs. ``engine_call`` bounds that: at most ``ENGINE_MAX_CONCURRENT_PER_PROCESS``
calls at once in this process (a caller waits at most ``QUEUE_WAIT_S`` for a free slot), each with
``ENGINE_REQUEST_BUDGET_S`` seconds of wall-clock time (``mipd_engine.deadline``). A refusal or an exceeded
budget is an exception that ``mipd_web.middleware.EngineUnavailableMiddleware`` answers with 503 and
Retry-After (JSON under /api/, a page for the browser); the caller never sees a partial result.

Why 503 for an exceeded budget, not 422: the request has already passed every input limit
(``dosing.limits``), so it asks for bounded work and is not the client's error; running out of time means
the server was too busy or too slow at that moment, which is what 503 says, and the same request usually
succeeds when retried. The Bayesian update (Celery) is not a request and has its own time limits.

The slots count engine calls, not requests: with sync gunicorn workers one request runs per process, so the
cap matters for threaded workers (gthread) and keeps a thread pool from running every engine call at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings

from mipd_engine.deadline import DeadlineExceeded, deadline

T = TypeVar("T")

QUEUE_WAIT_S = 0.5  # how long a request waits for a free slot before it is told to retry
BUSY_RETRY_AFTER_S = 5  # a slot frees in about one engine call's time
DEADLINE_RETRY_AFTER_S = 30  # a budget ran out: the machine is loaded, give it longer


class EngineUnavailable(Exception):
    """The engine did not answer this request; ``code`` and ``retry_after_s`` say why and when to retry."""

    code = "engine_unavailable"
    title = "The dosing engine is unavailable"
    retry_after_s = BUSY_RETRY_AFTER_S


class EngineBusy(EngineUnavailable):
    code = "engine_busy"
    title = "The dosing engine is busy"

    def __init__(self, capacity: int) -> None:
        super().__init__(
            f"all {capacity} of this server's engine slots were busy for {QUEUE_WAIT_S:g} s; nothing was "
            f"computed or stored: retry in {self.retry_after_s} s"
        )


class EngineTimedOut(EngineUnavailable):
    code = "engine_deadline"
    title = "The computation took too long"
    retry_after_s = DEADLINE_RETRY_AFTER_S

    def __init__(self, budget_s: float) -> None:
        super().__init__(
            f"the computation was stopped after its budget of {budget_s:g} s; no result was given and "
            f"nothing was stored: retry in {self.retry_after_s} s, and if it happens again, ask for a "
            "shorter forecast (fewer doses, a nearer first dose)"
        )


_lock = threading.Lock()
_slots: tuple[int, threading.BoundedSemaphore] | None = None


def _semaphore() -> tuple[int, threading.BoundedSemaphore]:
    """This process's slots, sized from the settings when first used (again if a test changes them)."""
    global _slots
    capacity = int(settings.ENGINE_MAX_CONCURRENT_PER_PROCESS)
    with _lock:
        if _slots is None or _slots[0] != capacity:
            _slots = (capacity, threading.BoundedSemaphore(capacity))
        return _slots


def engine_call(fn: Callable[..., T], /, *args: Any, budget_s: float | None = None, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a free engine slot, within ``budget_s`` seconds (default: the setting).

    Raises :class:`EngineBusy` when no slot frees within ``QUEUE_WAIT_S``, :class:`EngineTimedOut` when the
    budget runs out (the engine stops at its next check; whatever ``fn`` was computing is discarded, and a
    transaction around it rolls back).
    """
    budget = float(settings.ENGINE_REQUEST_BUDGET_S if budget_s is None else budget_s)
    capacity, slots = _semaphore()
    if not slots.acquire(timeout=QUEUE_WAIT_S):
        raise EngineBusy(capacity)
    try:
        with deadline(budget):
            return fn(*args, **kwargs)
    except DeadlineExceeded:
        raise EngineTimedOut(budget) from None
    finally:
        slots.release()
