"""Concentration units: every level is converted to the model output's unit before the engine sees it.

Mass units convert by a factor; molar units (µmol/L, nmol/L) need the drug's molar mass. Anything else is
refused: a unit mix-up on a drug level is a classic route to a tenfold dosing error.
"""

from __future__ import annotations

_MG_PER_L = {  # factor to mg/L
    "mg/l": 1.0,
    "ug/ml": 1.0,
    "µg/ml": 1.0,
    "mcg/ml": 1.0,
    "g/l": 1000.0,
    "mg/dl": 10.0,
    "ng/ml": 1e-3,
    "ug/l": 1e-3,
    "µg/l": 1e-3,
    "mcg/l": 1e-3,
    "ng/l": 1e-6,
}
_MICROMOL_PER_L = {"umol/l": 1.0, "µmol/l": 1.0, "μmol/l": 1.0, "nmol/l": 1e-3, "mmol/l": 1000.0}


class UnitError(ValueError):
    pass


def _key(unit: str) -> str:
    # The micro sign (U+00B5) and the Greek mu (U+03BC) look alike: accept both, and "u"/"mc".
    return unit.strip().lower().replace(" ", "").replace("\u03bc", "\u00b5")


def is_known_unit(unit: str) -> bool:
    return _key(unit) in _MG_PER_L or _key(unit) in _MICROMOL_PER_L


def to_mg_per_l(value: float, unit: str, *, molar_mass_g_per_mol: float | None) -> float:
    key = _key(unit)
    if key in _MG_PER_L:
        return value * _MG_PER_L[key]
    if key in _MICROMOL_PER_L:
        if not molar_mass_g_per_mol:
            raise UnitError(f"'{unit}' is a molar unit and the drug has no molar mass in the catalog")
        return value * _MICROMOL_PER_L[key] * molar_mass_g_per_mol / 1000.0
    raise UnitError(f"unknown concentration unit '{unit}' (mg/L, µg/mL, ng/mL, µg/L, µmol/L, nmol/L ...)")


def convert(value: float, from_unit: str, to_unit: str, *, molar_mass_g_per_mol: float | None) -> float:
    """``value`` in ``from_unit`` expressed in ``to_unit`` (the model output's unit)."""
    mg_per_l = to_mg_per_l(value, from_unit, molar_mass_g_per_mol=molar_mass_g_per_mol)
    return mg_per_l / to_mg_per_l(1.0, to_unit, molar_mass_g_per_mol=molar_mass_g_per_mol)
