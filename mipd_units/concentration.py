"""Drug concentrations: every level is converted to the model output's unit before the engine sees it.

Mass units convert by a factor; molar units (µmol/L, nmol/L) need the drug's molar mass. Anything else is
refused: a unit mix-up on a drug level is a classic route to a tenfold dosing error.
"""

from __future__ import annotations

from mipd_units.conversion import UnitError, UnknownUnitError, kind_of
from mipd_units.conversion import convert as _convert

__all__ = ["UnitError", "UnknownUnitError", "convert", "is_concentration_unit"]

_KINDS = ("mass_concentration", "molar_concentration")
_EXAMPLES = "mg/L, µg/mL, ng/mL, µg/L, µmol/L, nmol/L ..."


def is_concentration_unit(unit: str) -> bool:
    try:
        return kind_of(unit) in _KINDS
    except UnitError:
        return False


def convert(value: float, from_unit: str, to_unit: str, *, molar_mass_g_per_mol: float | None) -> float:
    """``value`` in ``from_unit`` expressed in ``to_unit`` (the model output's unit)."""
    for unit in (from_unit, to_unit):
        if not is_concentration_unit(unit):
            error = UnknownUnitError(str(unit))
            error.args = (f"unknown concentration unit '{unit}' ({_EXAMPLES})",)
            raise error

    return _convert(value, from_unit, to_unit, molar_mass_g_per_mol=molar_mass_g_per_mol)
