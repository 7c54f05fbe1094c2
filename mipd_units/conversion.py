"""Unit conversion through one pint registry, with an explicit table of accepted spellings.

Kinds: ``mass``, ``length``, ``time``, ``mass_concentration``, ``molar_concentration``, ``mass_rate``,
``volume_rate``. Mass and molar concentrations convert into each other with ``molar_mass_g_per_mol``; any
other change of kind raises :class:`UnitError`.
"""

from __future__ import annotations

from functools import cache

import pint

# One registry for the whole process (pint quantities of different registries cannot be mixed).
_REGISTRY = pint.UnitRegistry(cache_folder=None)

#: The factor of serum creatinine used throughout (some laboratories use 88.42, KDIGO 2012 rounds to 88.4; the
#: two differ by 0.02 %): 1 mg/dL = 88.42 µmol/L, i.e. a molar mass of 10 000 / 88.42 g/mol.
CREATININE_UMOL_PER_L_PER_MG_PER_DL = 88.42
CREATININE_MOLAR_MASS_G_PER_MOL = 1e4 / CREATININE_UMOL_PER_L_PER_MG_PER_DL

# spelling (as keyed by _key) -> (pint expression, kind). UCUM codes are listed as spellings too
# ("[lb_av]", "[in_i]", "wk"); fhir_interop maps codes to these spellings explicitly.
_SPELLINGS: dict[str, tuple[str, str]] = {
    # mass
    "kg": ("kilogram", "mass"),
    "g": ("gram", "mass"),
    "mg": ("milligram", "mass"),
    "ug": ("microgram", "mass"),
    "µg": ("microgram", "mass"),
    "mcg": ("microgram", "mass"),
    "lb": ("avoirdupois_pound", "mass"),
    "[lb_av]": ("avoirdupois_pound", "mass"),
    # length (heights)
    "cm": ("centimeter", "length"),
    "m": ("meter", "length"),
    "in": ("inch", "length"),
    "[in_i]": ("inch", "length"),
    # time
    "h": ("hour", "time"),
    "min": ("minute", "time"),
    "d": ("day", "time"),
    "weeks": ("week", "time"),
    "week": ("week", "time"),
    "wk": ("week", "time"),
    # mass concentration
    "mg/l": ("milligram / liter", "mass_concentration"),
    "ug/ml": ("microgram / milliliter", "mass_concentration"),
    "µg/ml": ("microgram / milliliter", "mass_concentration"),
    "mcg/ml": ("microgram / milliliter", "mass_concentration"),
    "g/l": ("gram / liter", "mass_concentration"),
    "g/dl": ("gram / deciliter", "mass_concentration"),
    "mg/dl": ("milligram / deciliter", "mass_concentration"),
    "ng/ml": ("nanogram / milliliter", "mass_concentration"),
    "ug/l": ("microgram / liter", "mass_concentration"),
    "µg/l": ("microgram / liter", "mass_concentration"),
    "mcg/l": ("microgram / liter", "mass_concentration"),
    "ng/l": ("nanogram / liter", "mass_concentration"),
    # molar concentration
    "mmol/l": ("millimole / liter", "molar_concentration"),
    "umol/l": ("micromole / liter", "molar_concentration"),
    "µmol/l": ("micromole / liter", "molar_concentration"),
    "nmol/l": ("nanomole / liter", "molar_concentration"),
    # rates
    "mg/h": ("milligram / hour", "mass_rate"),
    "mg/min": ("milligram / minute", "mass_rate"),
    "g/h": ("gram / hour", "mass_rate"),
    "ug/min": ("microgram / minute", "mass_rate"),
    "µg/min": ("microgram / minute", "mass_rate"),
    "ml/h": ("milliliter / hour", "volume_rate"),
    "ml/min": ("milliliter / minute", "volume_rate"),
    "l/h": ("liter / hour", "volume_rate"),
}


class UnitError(ValueError):
    """A conversion that cannot be made (unknown unit, change of kind, molar unit without molar mass)."""


class UnknownUnitError(UnitError):
    def __init__(self, unit: str, *, expected: str = "") -> None:
        self.unit = unit
        hint = f" ({expected})" if expected else ""
        super().__init__(f"unknown unit '{unit}'{hint}")


def _key(unit: str) -> str:
    # The micro sign (U+00B5) and the Greek mu (U+03BC) look alike: accept both; case and blanks are ignored.
    return unit.strip().lower().replace(" ", "").replace("\u03bc", "\u00b5")


def is_known_unit(unit: str) -> bool:
    return isinstance(unit, str) and _key(unit) in _SPELLINGS


def kind_of(unit: str) -> str:
    """The quantity kind of ``unit`` (``"mass"``, ``"mass_concentration"`` ...); else UnknownUnitError."""
    if not is_known_unit(unit):
        raise UnknownUnitError(str(unit))
    return _SPELLINGS[_key(unit)][1]


def known_units(*kinds: str) -> tuple[str, ...]:
    """The accepted spellings of the given kinds (for messages and forms)."""
    return tuple(spelling for spelling, (_, kind) in _SPELLINGS.items() if kind in kinds)


@cache
def _unit(expression: str) -> pint.Unit:
    return _REGISTRY.Unit(expression)


def convert(
    value: float, from_unit: str, to_unit: str, *, molar_mass_g_per_mol: float | None = None
) -> float:
    """``value`` in ``from_unit`` expressed in ``to_unit``.

    A mass concentration and a molar one convert through ``molar_mass_g_per_mol`` (g/mol); without it, or
    between any other two kinds, :class:`UnitError` says why.
    """
    for unit in (from_unit, to_unit):
        if not is_known_unit(unit):
            raise UnknownUnitError(str(unit))
    source_expr, source_kind = _SPELLINGS[_key(from_unit)]
    target_expr, target_kind = _SPELLINGS[_key(to_unit)]
    quantity = _REGISTRY.Quantity(float(value), _unit(source_expr))
    if source_kind != target_kind:
        molar = {"mass_concentration", "molar_concentration"}
        if {source_kind, target_kind} != molar:
            raise UnitError(f"cannot convert '{from_unit}' ({source_kind}) to '{to_unit}' ({target_kind})")
        if not molar_mass_g_per_mol or molar_mass_g_per_mol <= 0:
            molar_one = from_unit if source_kind == "molar_concentration" else to_unit
            raise UnitError(f"'{molar_one}' is a molar unit and the drug has no molar mass in the catalog")
        molar_mass = _REGISTRY.Quantity(float(molar_mass_g_per_mol), _unit("gram / mole"))
        quantity = quantity * molar_mass if source_kind == "molar_concentration" else quantity / molar_mass
    return float(quantity.to(_unit(target_expr)).magnitude)


_CREATININE_UNITS = ("mg/dL", "umol/L")


def creatinine_mg_per_dl(value: float, unit: str) -> float:
    """Serum creatinine in mg/dL from mg/dL or µmol/L (factor 88.42); any other unit is refused."""
    if not is_known_unit(unit) or _key(unit) not in ("mg/dl", "umol/l", "µmol/l"):
        raise UnknownUnitError(str(unit), expected="serum creatinine is in mg/dL or umol/L (µmol/L)")
    return convert(value, unit, "mg/dL", molar_mass_g_per_mol=CREATININE_MOLAR_MASS_G_PER_MOL)
