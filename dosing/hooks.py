"""What apps above dosing (e.g. performance) plug in: dosing cannot import them (the layers contract).

Each list is filled by the plugging app's ``AppConfig.ready``; dosing calls every entry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

# Called once per newly scored level with level=, course=, case= (the data before the level) and score=
# (the plausibility document stored on the level). A failure is logged and never stops the update.
level_scored: list[Callable[..., None]] = []

# Called with course= and case= when a recommendation's alerts are built; each returns (code, message)
# pairs to add to them.
recommendation_alerts: list[Callable[..., list[tuple[str, str]]]] = []


def level_scored_notify(**kwargs: Any) -> None:
    for hook in level_scored:
        try:
            hook(**kwargs)
        except Exception:  # the level's own score is stored; the performance record is not clinical data
            logger.exception("level-scored hook %s failed", getattr(hook, "__qualname__", hook))


def recommendation_alerts_collect(**kwargs: Any) -> list[tuple[str, str]]:
    """Every plugged-in alert; a hook that fails gives an alert saying so (its warning may be missing)."""
    alerts: list[tuple[str, str]] = []
    for hook in recommendation_alerts:
        try:
            alerts.extend(hook(**kwargs))
        except Exception:
            logger.exception("recommendation-alert hook %s failed", getattr(hook, "__qualname__", hook))
            alerts.append(
                (
                    "alerts_unavailable",
                    "the model-performance alerts could not be checked for this patient: a warning about "
                    "how the model predicts patients like this one may be missing; ask IT to check the log",
                )
            )
    return alerts
