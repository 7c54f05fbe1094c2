"""Covariate units: each measurement kind is stored in one canonical unit, with what was entered."""

from __future__ import annotations

from mipd_engine import clinical_equations
from mipd_engine.covariate_sources import CANONICAL_UNITS
from mipd_engine.errors import InvalidInputError

# kind -> {entered unit (lower case) -> factor to the canonical unit}
_FACTORS = {
    "weight": {"kg": 1.0, "g": 1e-3, "lb": 0.45359237},
    "height": {"cm": 1.0, "m": 100.0, "in": 2.54},
    "albumin": {"g/l": 1.0, "g/dl": 10.0},
    "gestational_age_at_birth": {"weeks": 1.0, "week": 1.0, "wk": 1.0},
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
            derived = clinical_equations.creatinine_mg_per_dl(value=value, unit=unit)
        except InvalidInputError as exc:
            raise CovariateUnitError("unit" if "unit" in exc.path else "value", exc.message) from None
        converted = derived.value
    elif kind in _FACTORS:
        if key not in _FACTORS[kind]:
            units = ", ".join(u for u in _FACTORS[kind] if u)
            raise CovariateUnitError("unit", f"unknown unit '{unit}' for {kind} (use {units})")
        converted = value * _FACTORS[kind][key]
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
