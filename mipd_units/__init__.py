"""Every unit conversion of the application, in one place, through pint.

Spellings are accepted from an explicit table (what clinicians type and what UCUM codes say), never by
letting pint guess: ``"m"`` must mean metre for a height, and ``"mg/dm"`` must be refused, not read as a
linear density. Each spelling maps to a pint expression and a quantity kind; a conversion between kinds is
refused, except mass <-> molar concentration, which needs the substance's molar mass.

This package imports no Django and no application: the engine, ``patients``, ``dosing`` and
``fhir_interop`` all sit above it (an import contract checks it).
"""

from __future__ import annotations

from mipd_units.conversion import (
    CREATININE_MOLAR_MASS_G_PER_MOL,
    CREATININE_UMOL_PER_L_PER_MG_PER_DL,
    UnitError,
    UnknownUnitError,
    convert,
    creatinine_mg_per_dl,
    is_known_unit,
    kind_of,
    known_units,
)

__all__ = [
    "CREATININE_MOLAR_MASS_G_PER_MOL",
    "CREATININE_UMOL_PER_L_PER_MG_PER_DL",
    "UnitError",
    "UnknownUnitError",
    "convert",
    "creatinine_mg_per_dl",
    "is_known_unit",
    "kind_of",
    "known_units",
]
