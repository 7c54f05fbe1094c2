"""How numbers, probabilities and clock times read on the clinical pages (one place, the same everywhere)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import template
from django.utils import timezone

from models_catalog.labels import measurement_label, output_label, route_label

register = template.Library()


@register.filter
def percent(value: Any) -> str:
    """0.413 -> "41 %"; None -> "–"."""
    if value is None or value == "":
        return "–"
    return f"{float(value) * 100:.0f} %"


@register.filter
def number(value: Any) -> str:
    """Three significant figures, whole numbers from 100 on: 512, 15.6, 0.418; None -> "–"."""
    if value is None or value == "":
        return "–"
    x = float(value)
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}"


@register.filter
def interval(values: Any) -> str:
    """[430.2, 610.8] -> "430–611"."""
    if not values:
        return "–"
    low, high = values
    return f"{number(low)}–{number(high)}"


@register.filter
def clock(value: Any) -> str:
    """An ISO time (or a datetime) on the hospital's clock: "Thu 03 Dec 08:00"."""
    if not value:
        return "–"
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return f"{timezone.localtime(moment):%a %d %b %H:%M}"


@register.filter
def route(value: Any) -> str:
    return route_label(str(value or ""))


@register.filter
def measurement(value: Any) -> str:
    return measurement_label(str(value or ""))


@register.filter
def output(value: Any) -> str:
    return output_label(str(value or ""))


@register.filter
def hours(value: Any) -> str:
    """1.5 -> "1.5 h"; 0.5 -> "30 min"."""
    if value is None or value == "":
        return "–"
    h = float(value)
    return f"{h * 60:.0f} min" if h < 1 else f"{h:g} h"
