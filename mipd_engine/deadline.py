"""A wall-clock budget for engine work: ``with deadline(seconds):`` and ``check_deadline()`` in the hot loops.

The engine runs the same code for a request (seconds to spare) and for a background update (minutes), so the
budget belongs to the caller, not to the functions: a context variable carries it through every call without
a parameter, and is local to its thread (and asyncio task). Without a ``deadline`` block ``check_deadline`` is
one context-variable read, and results are exactly what they were: nothing numerical depends on the budget.
A budget that runs out raises :class:`DeadlineExceeded` at the next check; no partial result is returned.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager

_now = time.monotonic  # a clock that never jumps (tests replace it)
_DEADLINE: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar(
    "mipd_engine_deadline", default=None
)


class DeadlineExceeded(Exception):
    """The engine's work took longer than the caller's budget; nothing was computed to the end."""

    def __init__(self, budget_s: float, elapsed_s: float) -> None:
        self.budget_s = budget_s
        self.elapsed_s = elapsed_s
        super().__init__(
            f"the computation took longer than its budget of {budget_s:g} s (stopped at {elapsed_s:.1f} s)"
        )


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Run the block with at most ``seconds`` of wall-clock time for the engine's work (nested: the earlier
    end wins, so an inner block never extends the caller's budget)."""
    if not seconds > 0:
        raise ValueError(f"a deadline needs a positive number of seconds, got {seconds!r}")
    now = _now()
    outer = _DEADLINE.get()
    end = now + float(seconds)
    if outer is not None and outer[0] <= end:
        token = _DEADLINE.set(outer)
    else:
        token = _DEADLINE.set((end, now))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def remaining_s() -> float | None:
    """Seconds left of the current budget (None: no budget)."""
    current = _DEADLINE.get()
    return None if current is None else current[0] - _now()


def check_deadline() -> None:
    """Raise :class:`DeadlineExceeded` if the current budget has run out; no budget: return at once."""
    current = _DEADLINE.get()
    if current is None:
        return
    now = _now()
    if now > current[0]:
        end, started = current
        raise DeadlineExceeded(end - started, now - started)
