"""mipd_units against known values: exact definitions (1 lb = 0.45359237 kg, 1 in = 2.54 cm) and published
factors (creatinine 88.42 µmol/L per mg/dL; vancomycin 1449.3 g/mol, tacrolimus 804.0 g/mol)."""

from __future__ import annotations

import pytest

import mipd_units
from mipd_units import concentration

VANCOMYCIN_G_PER_MOL = 1449.3
TACROLIMUS_G_PER_MOL = 804.0

# (value, from, to, molar mass, expected); tolerance rel 1e-12 (pint works in binary floating point)
KNOWN = [
    (70.0, "kg", "kg", None, 70.0),
    (3500.0, "g", "kg", None, 3.5),
    (154.0, "lb", "kg", None, 154.0 * 0.45359237),
    (1.0, "[lb_av]", "kg", None, 0.45359237),
    (1.75, "m", "cm", None, 175.0),
    (70.0, "in", "cm", None, 177.8),
    (1.0, "[in_i]", "cm", None, 2.54),
    (1000.0, "mg", "g", None, 1.0),
    (250.0, "ug", "mg", None, 0.25),
    (1.0, "mcg", "ug", None, 1.0),
    (30.0, "min", "h", None, 0.5),
    (2.0, "d", "h", None, 48.0),
    (1.0, "wk", "weeks", None, 1.0),
    (1.0, "mg/dL", "mg/L", None, 10.0),
    (15.0, "ug/mL", "mg/L", None, 15.0),
    (15.0, "µg/mL", "mg/L", None, 15.0),
    (15.0, "\u03bcg/mL", "mg/L", None, 15.0),
    (8.0, "ng/mL", "ug/L", None, 8.0),
    (8.0, "ng/mL", "mg/L", None, 0.008),
    (2.0, "g/L", "mg/L", None, 2000.0),
    (3.5, "g/dL", "g/L", None, 35.0),
    (500.0, "ng/L", "ug/L", None, 0.5),
    (10.0, "umol/L", "mg/L", VANCOMYCIN_G_PER_MOL, 14.493),
    (14.493, "mg/L", "µmol/L", VANCOMYCIN_G_PER_MOL, 10.0),
    (10.0, "nmol/L", "ng/mL", TACROLIMUS_G_PER_MOL, 8.04),
    (1.0, "mmol/L", "umol/L", None, 1000.0),
    (88.42, "umol/L", "mg/dL", mipd_units.CREATININE_MOLAR_MASS_G_PER_MOL, 1.0),
    (1.0, "mg/dL", "umol/L", mipd_units.CREATININE_MOLAR_MASS_G_PER_MOL, 88.42),
    (60.0, "mg/min", "mg/h", None, 3600.0),
    (1.0, "g/h", "mg/h", None, 1000.0),
    (1.0, "mL/min", "mL/h", None, 60.0),
    (1.0, "L/h", "mL/h", None, 1000.0),
]


@pytest.mark.parametrize(("value", "source", "target", "molar_mass", "expected"), KNOWN)
def test_it_converts_known_values(value, source, target, molar_mass, expected):
    converted = mipd_units.convert(value, source, target, molar_mass_g_per_mol=molar_mass)
    assert converted == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("value", "unit", "mg_per_dl"),
    [(1.0, "mg/dL", 1.0), (88.42, "µmol/L", 1.0), (176.84, "umol/L", 2.0), (44.21, " UMOL/L ", 0.5)],
)
def test_creatinine_uses_88_42(value, unit, mg_per_dl):
    assert mipd_units.creatinine_mg_per_dl(value, unit) == pytest.approx(mg_per_dl, rel=1e-12)


@pytest.mark.parametrize("unit", ["mmol/L", "mg/L", "furlongs", ""])
def test_creatinine_refuses_other_units(unit):
    with pytest.raises(mipd_units.UnknownUnitError, match="mg/dL or umol/L"):
        mipd_units.creatinine_mg_per_dl(1.0, unit)


@pytest.mark.parametrize("unit", ["mg/dm", "stone", "kg/m2", "mEq/L", "IU/mL", "furlongs", "", "10*3/uL"])
def test_it_refuses_unknown_units(unit):
    with pytest.raises(mipd_units.UnknownUnitError, match="unknown unit"):
        mipd_units.convert(1.0, unit, "mg/L")
    assert not mipd_units.is_known_unit(unit)


@pytest.mark.parametrize(("source", "target"), [("kg", "cm"), ("mg/L", "mg"), ("mg/h", "mL/h"), ("h", "kg")])
def test_it_refuses_a_change_of_kind(source, target):
    with pytest.raises(mipd_units.UnitError, match="cannot convert"):
        mipd_units.convert(1.0, source, target)


def test_a_molar_unit_needs_the_molar_mass():
    with pytest.raises(mipd_units.UnitError, match="molar unit and the drug has no molar mass"):
        mipd_units.convert(10.0, "umol/L", "mg/L")
    with pytest.raises(mipd_units.UnitError, match="molar unit"):
        mipd_units.convert(10.0, "mg/L", "nmol/L", molar_mass_g_per_mol=0.0)


def test_drug_levels_accept_only_concentrations():
    assert concentration.convert(5.0, "mg/dL", "mg/L", molar_mass_g_per_mol=None) == pytest.approx(50.0)
    with pytest.raises(concentration.UnitError, match="unknown concentration unit 'mg'"):
        concentration.convert(5.0, "mg", "mg/L", molar_mass_g_per_mol=None)
    with pytest.raises(concentration.UnitError, match="unknown concentration unit 'mg/dm'"):
        concentration.convert(5.0, "mg/dm", "mg/L", molar_mass_g_per_mol=None)


def test_every_spelling_has_a_kind():
    kinds = {
        mipd_units.kind_of(unit)
        for unit in mipd_units.known_units(
            "mass", "length", "time", "mass_concentration", "molar_concentration", "mass_rate", "volume_rate"
        )
    }
    assert kinds == {
        "mass",
        "length",
        "time",
        "mass_concentration",
        "molar_concentration",
        "mass_rate",
        "volume_rate",
    }
