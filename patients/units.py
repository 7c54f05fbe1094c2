"""Covariate units: each measurement kind is stored in one canonical unit, with what was entered.

The arithmetic is :mod:`mipd_units` (pint); this module says which units each kind accepts and which values
are plausible.
"""

from __future__ import annotations

import mipd_units
from mipd_engine import clinical_equations
from mipd_engine.covariate_sources import CANONICAL_UNITS
from mipd_engine.errors import InvalidInputError

# kind -> the units an entry may use (lower case); each converts to the canonical unit through mipd_units
_ACCEPTED = {
    "weight": ("kg", "g", "lb"),
    "height": ("cm", "m", "in"),
    "albumin": ("g/l", "g/dl"),
    "gestational_age_at_birth": ("weeks", "week", "wk"),
}
# Plausible ranges in the canonical unit: outside them the entry is refused (a typo, or the wrong unit).
PLAUSIBLE = {
    "weight": (0.3, 350.0),
    "height": (20.0, 260.0),
    "serum_creatinine": (0.05, 30.0),
    "albumin": (5.0, 70.0),
    "gestational_age_at_birth": (20.0, 45.0),  # weeks; as clinical_equations.postmenstrual_age_weeks
}


class CovariateUnitError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def canonical_unit(kind: str, declared_unit: str | None = None) -> str:
    return CANONICAL_UNITS.get(kind, declared_unit or "")


def to_canonical(
    kind: str, value: float, unit: str, *, declared_unit: str | None = None
) -> tuple[float, str]:
    """(value, unit) in the canonical unit of ``kind``; plausibility checked for the known kinds."""
    key = unit.strip().lower()
    if kind == "serum_creatinine":
        try:
            converted = mipd_units.creatinine_mg_per_dl(value, unit)
            # the engine's plausibility bounds of a creatinine (0.1-30 mg/dL), with its message
            clinical_equations.creatinine_mg_per_dl(value=converted, unit="mg/dL")
        except mipd_units.UnitError:
            raise CovariateUnitError(
                "unit", f"unknown creatinine unit '{unit}'; accepted units are 'mg/dL' and 'umol/L' (µmol/L)"
            ) from None
        except InvalidInputError as exc:
            raise CovariateUnitError("unit" if "unit" in exc.path else "value", exc.message) from None
    elif kind in _ACCEPTED:
        if key not in _ACCEPTED[kind]:
            units = ", ".join(_ACCEPTED[kind])
            raise CovariateUnitError("unit", f"unknown unit '{unit}' for {kind} (use {units})")
        converted = mipd_units.convert(value, unit, CANONICAL_UNITS[kind])
    else:  # a model-specific covariate: the unit the model declares, nothing else
        expected = declared_unit or ""
        if key != expected.strip().lower():
            raise CovariateUnitError("unit", f"{kind} is recorded in '{expected}', not '{unit}'")
        converted = value
    # Model-specific quantities: a flag is 0 or 1, a fraction lies in [0, 1] (35 "L/L" is a percentage).
    unit_key = canonical_unit(kind, declared_unit).strip().lower()
    if unit_key == "flag" and converted not in (0.0, 1.0):
        raise CovariateUnitError("value", f"{kind} is 1 (yes) or 0 (no)")
    if unit_key in ("l/l", "fraction") and not 0.0 <= converted <= 1.0:
        raise CovariateUnitError("value", f"{kind} is a fraction between 0 and 1 (not a percentage)")
    if unit_key == "%" and not 0.0 <= converted <= 100.0:
        raise CovariateUnitError("value", f"{kind} is a percentage between 0 and 100")
    low, high = PLAUSIBLE.get(kind, (0.0, float("inf")))
    if not low <= converted <= high:
        shown = f"{converted:g} {canonical_unit(kind, declared_unit)}"
        raise CovariateUnitError(
            "value", f"{shown} is outside the plausible range {low:g}-{high:g} for {kind}"
        )
    return converted, canonical_unit(kind, declared_unit)
