"""Physical ranges of the numbers a person types into the dosing workflow, shared by the API and the forms.

A value outside its range is a typing error or a hostile request, never a patient: 1e-300 mg, a 1e-300 h
infusion or an LLOQ of 1e308 would otherwise be stored and reach the engine. The bounds are wide on purpose
(the drug's own limits, checked by the services, are the clinical ones); these only keep numbers physical and
the engine's arithmetic finite. A JSON ``true`` is not a number here, although Python says ``True == 1``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from rest_framework import serializers

from mipd_web.parsers import json_depth_exceeds


@dataclass(frozen=True)
class PhysicalRange:
    """``low`` ≤ value ≤ ``high`` in ``unit``; ``zero_allowed``: 0 also stands for "none" (a bolus)."""

    low: float
    high: float
    unit: str
    zero_allowed: bool = False

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not a number in this range, or None."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "a number is required"
        if not math.isfinite(value):
            return "a finite number is required"
        if self.zero_allowed and value == 0:
            return None
        if value < 0 <= self.low:
            return "cannot be negative"
        if not self.low <= value <= self.high:
            zero = "0 or " if self.zero_allowed else ""
            return f"must be {zero}between {self.low:g} and {self.high:g} {self.unit}".rstrip()
        return None

    def validate(self, value: Any) -> None:
        """A Django validator (forms and DRF both run these)."""
        if value is None:
            return
        if message := self.problem(value):
            raise ValidationError(message, code="out_of_range")


DOSE_MG = PhysicalRange(0.001, 100_000.0, "mg")
INFUSION_DURATION_H = PhysicalRange(1.0 / 60.0, 24.0 * 7, "h", zero_allowed=True)  # a minute to a week
INTERVAL_H = PhysicalRange(0.5, 24.0 * 7 * 12, "h")  # 12 weeks: infliximab runs every 4-8 weeks
LEVEL_VALUE = PhysicalRange(0.0, 1_000_000.0, "")  # any concentration unit: ng/mL levels reach thousands
LLOQ = PhysicalRange(1e-6, 100_000.0, "")
MIC_MG_PER_L = PhysicalRange(1e-4, 1024.0, "mg/L")

# A course's target is a small object (metric, bounds, unit): bounded in size and depth, not a document store.
TARGET_MAX_BYTES = 4096
TARGET_MAX_DEPTH = 4


class StrictFloatField(serializers.FloatField):
    """DRF's FloatField without ``true`` as 1.0, and with a physical range."""

    def __init__(self, *, physical: PhysicalRange, **kwargs: Any) -> None:
        self.physical = physical
        kwargs.setdefault("validators", []).append(physical.validate)
        help_text = kwargs.get("help_text")
        bounds = f"{physical.low:g}–{physical.high:g} {physical.unit}".rstrip()
        kwargs["help_text"] = f"{help_text}; {bounds}" if help_text else bounds
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


def range_form_field(physical: PhysicalRange, **kwargs: Any) -> forms.FloatField:
    """A form's float field with the same range as the API's."""
    kwargs.setdefault("validators", []).append(physical.validate)
    return forms.FloatField(**kwargs)


def checked_number(value: Any, physical: PhysicalRange, *, field: str, part: str = "") -> float:
    """A number in its range, else an error on ``field`` (``part``: its key in a JSON object such as a
    pharmacist's changed regimen, named in the message)."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            value = None
    if message := physical.problem(value):
        raise ValidationError({field: [f"{part}: {message}" if part else message]})
    return float(value)


def target_problem(target: Any) -> str | None:
    """Why a course target cannot be stored (too large or too deep), or None."""
    if target is None:
        return None
    if not isinstance(target, dict):
        return "expected an object"
    try:
        size = len(json.dumps(target, allow_nan=False))
    except (TypeError, ValueError):
        return "numbers must be finite"
    if size > TARGET_MAX_BYTES:
        return f"a target is at most {TARGET_MAX_BYTES} bytes of JSON"
    if json_depth_exceeds(target, TARGET_MAX_DEPTH):
        return f"a target nests objects at most {TARGET_MAX_DEPTH} levels deep"
    return None
