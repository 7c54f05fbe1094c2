"""Figures of the performance page: an estimate with its 95 % interval, a fraction as a percentage.

Filters rather than an ``{% include %}`` per cell: the page has hundreds of cells and includes are slow.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html

register = template.Library()


@register.filter
def estimate(value: dict[str, Any] | None, spec: str = "2") -> str:
    """``{{ e|estimate:"1%" }}``: the value with ``1`` decimal, a ``%`` sign, and its interval in grey."""
    if not value or value.get("value") is None:
        return "–"
    digits = int(spec.rstrip("%"))
    unit = " %" if spec.endswith("%") else ""
    shown = f"{value['value']:.{digits}f}{unit}"
    if value.get("low") is None:
        return shown
    return format_html(
        '{} <span class="muted">({} to {})</span>',
        shown,
        f"{value['low']:.{digits}f}",
        f"{value['high']:.{digits}f}",
    )


@register.filter
def fraction(value: dict[str, Any] | None) -> str:
    """A proportion with its interval, as whole percentages."""
    if not value or value.get("value") is None:
        return "–"
    return format_html(
        '{} % <span class="muted">({} to {})</span>',
        f"{100 * value['value']:.0f}",
        f"{100 * value['low']:.0f}",
        f"{100 * value['high']:.0f}",
    )
