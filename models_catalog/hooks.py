"""What apps above the catalog (e.g. performance) plug into the model card: the catalog cannot import them.

Filled by the plugging app's ``AppConfig.ready``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Called with version= and user=; each returns None or {"template": ..., "context": {...}}, rendered on
# the card.
model_card_sections: list[Callable[..., dict[str, Any] | None]] = []


def model_card_sections_collect(**kwargs: Any) -> list[dict[str, Any]]:
    return [section for hook in model_card_sections if (section := hook(**kwargs)) is not None]
