"""Tests of mipd_engine.clinical_equations.

Every expected value is recomputed here from the published formula (written out independently of the
module), and the worked examples are also checked against literal numbers that can be verified by hand or
on a calculator. Tolerances: relative 1e-12 for values recomputed from the same formula (floating-point
round-off only); an absolute tolerance, stated in each test, for literal worked examples.
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mipd_engine.clinical_equations import (
    Derived,
    adjusted_body_weight_kg,
    bmi,
    bsa_m2,
    ckd_epi_2021,
    cockcroft_gault,
    creatinine_mg_per_dl,
    deindexed_egfr_ml_per_min,
    ideal_body_weight_kg,
    lean_body_weight_kg,
    schwartz_bedside,
)
from mipd_engine.errors import InvalidInputError

REPO_ROOT = Path(__file__).resolve().parents[2]
REL = 1e-12  # same formula, different code: floating-point round-off only


def approx(value: float) -> Any:
    return pytest.approx(value, rel=REL)


# -- result type ---------------------------------------------------------------------------------------------


def test_derived_is_frozen_and_carries_formula_source_and_notes() -> None:
    result = cockcroft_gault(age_years=60, weight_kg=72, scr_mg_per_dl=1.0, sex="male")
    assert isinstance(result, Derived)
    assert isinstance(result.value, float)
    assert result.unit == "mL/min"
    assert "140" in result.formula and "72" in result.formula
    assert "Nephron 1976;16:31-41" in result.source
    assert isinstance(result.notes, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.value = 0.0  # type: ignore[misc]


def test_every_function_cites_its_source() -> None:
    cases = {
        "Nephron 1976": cockcroft_gault(age_years=60, weight_kg=72, scr_mg_per_dl=1.0, sex="male"),
        "Drug Intell Clin Pharm 1974": ideal_body_weight_kg(height_cm=180, sex="male"),
        "Eur J Clin Pharmacol 1983": adjusted_body_weight_kg(weight_kg=120, height_cm=180, sex="male"),
        "Clin Pharmacokinet 2005": lean_body_weight_kg(weight_kg=70, height_cm=175, sex="male"),
        "N Engl J Med 1987;317:1098": bsa_m2(weight_kg=80, height_cm=180),
        "Arch Intern Med 1916": bsa_m2(weight_kg=80, height_cm=180, method="dubois"),
        "N Engl J Med 2021;385:1737-49": ckd_epi_2021(age_years=50, scr_mg_per_dl=1.0, sex="female"),
        "J Am Soc Nephrol 2009;20:629-37": schwartz_bedside(height_cm=120, scr_mg_per_dl=0.5),
        "88.4": creatinine_mg_per_dl(value=88.42, unit="umol/L"),
        "KDIGO": deindexed_egfr_ml_per_min(egfr_ml_per_min_per_1_73m2=60, bsa_m2=2.0),
        "WHO": bmi(weight_kg=80, height_cm=180),
    }
    for citation, result in cases.items():
        assert citation in result.source, (citation, result.source)
        assert result.formula


# -- creatinine units ----------------------------------------------------------------------------------------


def test_creatinine_88_42_umol_per_l_is_1_mg_per_dl() -> None:
    result = creatinine_mg_per_dl(value=88.42, unit="umol/L")
    assert result.value == pytest.approx(1.0, abs=1e-12)
    assert result.unit == "mg/dL"


@pytest.mark.parametrize("unit", ["umol/L", "µmol/L", "μmol/L", "UMOL/L", " umol/l "])
def test_creatinine_umol_per_l_spellings_including_micro_sign_and_greek_mu(unit: str) -> None:
    # 100 µmol/L / 88.42 = 1.13096 mg/dL (literal check, tolerance 1e-5)
    assert creatinine_mg_per_dl(value=100, unit=unit).value == pytest.approx(1.13096, abs=1e-5)
    assert creatinine_mg_per_dl(value=100, unit=unit).value == approx(100 / 88.42)


@pytest.mark.parametrize("unit", ["mg/dL", "mg/dl", "MG/DL"])
def test_creatinine_mg_per_dl_is_unchanged(unit: str) -> None:
    assert creatinine_mg_per_dl(value=1.3, unit=unit).value == 1.3


@pytest.mark.parametrize("unit", ["mmol/L", "mg/L", "umol", "", "mg/100mL", None, 1])
def test_creatinine_unknown_unit_is_rejected_naming_unit(unit: Any) -> None:
    with pytest.raises(InvalidInputError) as excinfo:
        creatinine_mg_per_dl(value=1.0, unit=unit)
    assert excinfo.value.path == "unit"
    assert str(excinfo.value).startswith("unit: ")
    assert "mg/dL" in str(excinfo.value) and "umol/L" in str(excinfo.value)


@pytest.mark.parametrize(
    ("value", "unit"),
    [
        (0, "mg/dL"),
        (-1, "umol/L"),
        (math.nan, "mg/dL"),
        (math.inf, "umol/L"),
        (88, "mg/dL"),  # a µmol/L value typed as mg/dL
        (1.0, "umol/L"),  # a mg/dL value typed as µmol/L (0.011 mg/dL)
        (31, "mg/dL"),
        ("1.0", "mg/dL"),
        (True, "mg/dL"),
    ],
)
def test_creatinine_impossible_value_is_rejected_naming_value(value: Any, unit: str) -> None:
    with pytest.raises(InvalidInputError) as excinfo:
        creatinine_mg_per_dl(value=value, unit=unit)
    assert excinfo.value.path == "value"
    assert str(excinfo.value).startswith("value: ")


# -- body size -----------------------------------------------------------------------------------------------


def test_bmi_180_cm_81_kg_is_25() -> None:
    # 81 / 1.8² = 81 / 3.24 = 25 exactly (tolerance 1e-12)
    result = bmi(weight_kg=81, height_cm=180)
    assert result.value == pytest.approx(25.0, abs=1e-12)
    assert result.unit == "kg/m²"


def test_mosteller_180_cm_80_kg_is_2_m2() -> None:
    # sqrt(180 × 80 / 3600) = sqrt(4) = 2.0 exactly (tolerance 1e-12)
    result = bsa_m2(weight_kg=80, height_cm=180)
    assert result.value == pytest.approx(2.0, abs=1e-12)
    assert result.unit == "m²"
    assert "Mosteller" in result.formula


def test_dubois_matches_published_formula() -> None:
    # 0.007184 × 80^0.425 × 180^0.725 ≈ 1.997 m² (by hand with logarithms; tolerance 0.001 m²)
    result = bsa_m2(weight_kg=80, height_cm=180, method="dubois")
    assert result.value == approx(0.007184 * 80**0.425 * 180**0.725)
    assert result.value == pytest.approx(1.997, abs=1e-3)
    assert "DuBois" in result.formula


def test_dubois_and_mosteller_agree_within_2_percent_for_average_adults() -> None:
    for weight, height in [(60, 165), (70, 175), (80, 180), (95, 185)]:
        mosteller = bsa_m2(weight_kg=weight, height_cm=height).value
        dubois = bsa_m2(weight_kg=weight, height_cm=height, method="dubois").value
        assert dubois == pytest.approx(mosteller, rel=0.02)


def test_devine_male_180_cm_is_about_75_kg() -> None:
    # 50 + 2.3 × (180/2.54 − 60) = 50 + 2.3 × 10.866 = 74.99 kg (tolerance 0.01 kg)
    result = ideal_body_weight_kg(height_cm=180, sex="male")
    assert result.value == approx(50 + 2.3 * (180 / 2.54 - 60))
    assert result.value == pytest.approx(74.99, abs=0.01)
    assert result.unit == "kg"
    assert result.notes == ()


def test_devine_female_is_4_5_kg_below_male_at_same_height() -> None:
    # 45.5 + 2.3 × (165/2.54 − 60); at 60 in (152.4 cm) exactly the base weight (tolerance 1e-12)
    assert ideal_body_weight_kg(height_cm=165, sex="female").value == approx(45.5 + 2.3 * (165 / 2.54 - 60))
    assert ideal_body_weight_kg(height_cm=152.4, sex="female").value == pytest.approx(45.5, abs=1e-12)
    male = ideal_body_weight_kg(height_cm=170, sex="male").value
    female = ideal_body_weight_kg(height_cm=170, sex="female").value
    assert male - female == pytest.approx(4.5, abs=1e-12)


def test_devine_below_60_inches_extrapolates_with_a_note() -> None:
    result = ideal_body_weight_kg(height_cm=140, sex="female")
    assert result.value == approx(45.5 + 2.3 * (140 / 2.54 - 60))
    assert len(result.notes) == 1 and "extrapolated" in result.notes[0]


def test_devine_refuses_heights_where_ibw_is_not_positive() -> None:
    # 50 + 2.3 × (95/2.54 − 60) = −3.98 kg for a 95 cm man
    with pytest.raises(InvalidInputError) as excinfo:
        ideal_body_weight_kg(height_cm=95, sex="male")
    assert excinfo.value.path == "height_cm"


def test_sex_is_case_insensitive() -> None:
    assert ideal_body_weight_kg(height_cm=180, sex="Male").value == (
        ideal_body_weight_kg(height_cm=180, sex="male").value
    )
    assert ideal_body_weight_kg(height_cm=180, sex=" FEMALE ").value == (
        ideal_body_weight_kg(height_cm=180, sex="female").value
    )


def test_adjusted_weight_is_ibw_plus_0_4_of_excess() -> None:
    # male 180 cm, 120 kg: IBW 74.99; 74.99 + 0.4 × (120 − 74.99) = 92.99 kg (tolerance 0.01 kg)
    ibw = 50 + 2.3 * (180 / 2.54 - 60)
    result = adjusted_body_weight_kg(weight_kg=120, height_cm=180, sex="male")
    assert result.value == approx(ibw + 0.4 * (120 - ibw))
    assert result.value == pytest.approx(92.99, abs=0.01)
    assert result.notes == ()


def test_adjusted_weight_factor_is_configurable_and_bounded() -> None:
    ibw = 45.5 + 2.3 * (160 / 2.54 - 60)
    result = adjusted_body_weight_kg(weight_kg=100, height_cm=160, sex="female", factor=0.3)
    assert result.value == approx(ibw + 0.3 * (100 - ibw))
    assert adjusted_body_weight_kg(weight_kg=100, height_cm=160, sex="female", factor=0).value == approx(ibw)
    assert adjusted_body_weight_kg(weight_kg=100, height_cm=160, sex="female", factor=1).value == approx(100)
    for bad in (-0.1, 1.1, math.nan):
        with pytest.raises(InvalidInputError) as excinfo:
            adjusted_body_weight_kg(weight_kg=100, height_cm=160, sex="female", factor=bad)
        assert excinfo.value.path == "factor"


def test_adjusted_weight_below_ibw_is_flagged() -> None:
    result = adjusted_body_weight_kg(weight_kg=55, height_cm=180, sex="male")
    ibw = 50 + 2.3 * (180 / 2.54 - 60)
    assert result.value == approx(ibw + 0.4 * (55 - ibw))
    assert any("below ideal body weight" in note for note in result.notes)


def test_janmahasatian_lean_body_weight_male_and_female() -> None:
    # male 70 kg, 175 cm: BMI 22.857; 9270 × 70 / (6680 + 216 × 22.857) = 55.86 kg (tolerance 0.01 kg)
    bmi_male = 70 / 1.75**2
    male = lean_body_weight_kg(weight_kg=70, height_cm=175, sex="male")
    assert male.value == approx(9270 * 70 / (6680 + 216 * bmi_male))
    assert male.value == pytest.approx(55.86, abs=0.01)
    # female 60 kg, 165 cm: BMI 22.039; 9270 × 60 / (8780 + 244 × 22.039) = 39.29 kg (tolerance 0.01 kg)
    bmi_female = 60 / 1.65**2
    female = lean_body_weight_kg(weight_kg=60, height_cm=165, sex="female")
    assert female.value == approx(9270 * 60 / (8780 + 244 * bmi_female))
    assert female.value == pytest.approx(39.29, abs=0.01)
    assert male.notes == () and female.notes == ()


def test_lean_body_weight_is_less_than_total_weight_over_a_wide_range() -> None:
    # 170 cm: weights 40-300 kg are BMI 13.8-103.8 kg/m²
    for weight in np.linspace(40, 300, 27):
        for sex in ("male", "female"):
            lbw = lean_body_weight_kg(weight_kg=float(weight), height_cm=170, sex=sex).value
            assert 0 < lbw < weight


def test_lean_body_weight_refuses_bmi_where_formula_exceeds_total_weight() -> None:
    # male: 9270 / (6680 + 216 × BMI) >= 1 for BMI <= (9270 − 6680) / 216 = 11.99 kg/m²
    # 34 kg at 170 cm is BMI 11.76: LBW would be 9270 × 34 / (6680 + 216 × 11.76) = 34.1 kg > 34 kg
    with pytest.raises(InvalidInputError) as excinfo:
        lean_body_weight_kg(weight_kg=34, height_cm=170, sex="male")
    assert excinfo.value.path == "weight_kg"
    assert "BMI 11.8" in str(excinfo.value)
    # 35 kg (BMI 12.11) is accepted, with the low-BMI note
    result = lean_body_weight_kg(weight_kg=35, height_cm=170, sex="male")
    assert result.value < 35
    assert any("below 18.5" in note for note in result.notes)
    # the female coefficients keep LBW below TBW for any BMI above 2 kg/m²
    assert lean_body_weight_kg(weight_kg=30, height_cm=170, sex="female").value < 30


# -- Cockcroft-Gault -----------------------------------------------------------------------------------------


def test_cockcroft_gault_60_year_old_man_72_kg_scr_1_is_80() -> None:
    # (140 − 60) × 72 / (72 × 1.0) = 80 mL/min exactly (tolerance 1e-12)
    result = cockcroft_gault(age_years=60, weight_kg=72, scr_mg_per_dl=1.0, sex="male")
    assert result.value == pytest.approx(80.0, abs=1e-12)
    assert result.unit == "mL/min"
    assert result.notes[0] == "Weight used: total body weight, 72.0 kg."


def test_cockcroft_gault_woman_is_0_85_times_man() -> None:
    # 80 × 0.85 = 68 mL/min (tolerance 1e-12)
    result = cockcroft_gault(age_years=60, weight_kg=72, scr_mg_per_dl=1.0, sex="female")
    assert result.value == pytest.approx(68.0, abs=1e-12)
    assert "0.85" in result.formula


def test_cockcroft_gault_matches_formula_on_a_grid() -> None:
    for age in (18, 45, 80, 100):
        for weight in (50, 85, 140):
            for scr in (0.5, 1.3, 4.0):
                for sex, factor in (("male", 1.0), ("female", 0.85)):
                    expected = (140 - age) * weight / (72 * scr) * factor
                    result = cockcroft_gault(age_years=age, weight_kg=weight, scr_mg_per_dl=scr, sex=sex)
                    assert result.value == approx(expected)


def test_cockcroft_gault_ideal_weight_basis_uses_devine() -> None:
    ibw = 50 + 2.3 * (180 / 2.54 - 60)
    result = cockcroft_gault(
        age_years=60, weight_kg=120, scr_mg_per_dl=1.0, sex="male", weight_basis="ideal", height_cm=180
    )
    assert result.value == approx((140 - 60) * ibw / 72)
    assert result.notes[0] == f"Weight used: ideal body weight (Devine), {ibw:.1f} kg."
    assert "Devine" in result.source


def test_cockcroft_gault_adjusted_weight_basis() -> None:
    ibw = 45.5 + 2.3 * (165 / 2.54 - 60)
    adjusted = ibw + 0.4 * (110 - ibw)
    result = cockcroft_gault(
        age_years=50, weight_kg=110, scr_mg_per_dl=0.8, sex="female", weight_basis="adjusted", height_cm=165
    )
    assert result.value == approx((140 - 50) * adjusted / (72 * 0.8) * 0.85)
    assert result.notes[0].startswith("Weight used: adjusted body weight")
    assert f"{adjusted:.1f} kg" in result.notes[0]


def test_cockcroft_gault_lesser_of_total_and_ideal() -> None:
    ibw = 50 + 2.3 * (180 / 2.54 - 60)  # 74.99 kg
    heavy = cockcroft_gault(
        age_years=40,
        weight_kg=100,
        scr_mg_per_dl=1.0,
        sex="male",
        weight_basis="lesser_of_total_and_ideal",
        height_cm=180,
    )
    assert heavy.value == approx(100 * ibw / 72)
    assert "ideal body weight" in heavy.notes[0]
    light = cockcroft_gault(
        age_years=40,
        weight_kg=60,
        scr_mg_per_dl=1.0,
        sex="male",
        weight_basis="lesser_of_total_and_ideal",
        height_cm=180,
    )
    assert light.value == approx(100 * 60 / 72)
    assert "total body weight" in light.notes[0]


@pytest.mark.parametrize("basis", ["ideal", "adjusted", "lesser_of_total_and_ideal"])
def test_cockcroft_gault_weight_bases_other_than_total_need_height(basis: str) -> None:
    with pytest.raises(InvalidInputError) as excinfo:
        cockcroft_gault(age_years=60, weight_kg=72, scr_mg_per_dl=1.0, sex="male", weight_basis=basis)
    assert excinfo.value.path == "height_cm"
    assert basis in str(excinfo.value)


def test_cockcroft_gault_scr_floor_applies_only_below_floor_and_is_noted() -> None:
    # 85-year-old woman, 55 kg, SCr 0.6 rounded up to 1.0: (140 − 85) × 55 / 72 × 0.85 = 35.71 mL/min
    floored = cockcroft_gault(
        age_years=85, weight_kg=55, scr_mg_per_dl=0.6, sex="female", scr_floor_mg_per_dl=1.0
    )
    assert floored.value == approx((140 - 85) * 55 / (72 * 1.0) * 0.85)
    assert floored.value == pytest.approx(35.71, abs=0.01)
    assert any("floor" in note for note in floored.notes)
    unfloored = cockcroft_gault(age_years=85, weight_kg=55, scr_mg_per_dl=0.6, sex="female")
    assert unfloored.value == approx((140 - 85) * 55 / (72 * 0.6) * 0.85)
    above = cockcroft_gault(
        age_years=85, weight_kg=55, scr_mg_per_dl=1.4, sex="female", scr_floor_mg_per_dl=1.0
    )
    assert above.value == approx((140 - 85) * 55 / (72 * 1.4) * 0.85)
    assert not any("floor" in note for note in above.notes)


def test_cockcroft_gault_cap_applies_only_above_cap_and_is_noted() -> None:
    # 25-year-old man, 90 kg, SCr 0.6: 115 × 90 / 43.2 = 239.6 mL/min, capped at 150
    capped = cockcroft_gault(age_years=25, weight_kg=90, scr_mg_per_dl=0.6, sex="male", cap_ml_per_min=150)
    assert capped.value == 150.0
    assert any("capped at 150" in note for note in capped.notes)
    below = cockcroft_gault(age_years=60, weight_kg=72, scr_mg_per_dl=1.0, sex="male", cap_ml_per_min=150)
    assert below.value == pytest.approx(80.0, abs=1e-12)
    assert not any("capped" in note for note in below.notes)


def test_cockcroft_gault_flags_children_and_obesity_on_total_weight() -> None:
    child = cockcroft_gault(age_years=10, weight_kg=30, scr_mg_per_dl=0.4, sex="male")
    assert child.value == approx(130 * 30 / (72 * 0.4))
    assert any("not validated in children" in note for note in child.notes)
    obese = cockcroft_gault(age_years=50, weight_kg=130, scr_mg_per_dl=1.0, sex="male", height_cm=175)
    assert any("BMI 42.4" in note for note in obese.notes)


def test_cockcroft_gault_ideal_basis_notes_short_stature_and_low_weight() -> None:
    result = cockcroft_gault(
        age_years=70, weight_kg=40, scr_mg_per_dl=1.0, sex="female", weight_basis="ideal", height_cm=150
    )
    assert any("extrapolated" in note for note in result.notes)
    assert any("lesser of the two" in note for note in result.notes)


# -- CKD-EPI 2021 --------------------------------------------------------------------------------------------


def test_ckd_epi_2021_50_year_old_woman_scr_1() -> None:
    # SCr/κ = 1.0/0.7 > 1, so the min() term is 1:
    # 142 × (1/0.7)^−1.200 × 0.9938^50 × 1.012 = 142 × 0.65178 × 0.73275 × 1.012 = 68.63 (tolerance 0.01)
    expected = 142 * (1.0 / 0.7) ** -1.200 * 0.9938**50 * 1.012
    result = ckd_epi_2021(age_years=50, scr_mg_per_dl=1.0, sex="female")
    assert result.value == approx(expected)
    assert result.value == pytest.approx(68.63, abs=0.01)
    assert result.unit == "mL/min/1.73 m²"


def test_ckd_epi_2021_at_scr_equal_to_kappa_only_age_term_remains() -> None:
    # man, SCr 0.9 = κ: 142 × 0.9938^50 = 104.05 (tolerance 0.01)
    man = ckd_epi_2021(age_years=50, scr_mg_per_dl=0.9, sex="male")
    assert man.value == approx(142 * 0.9938**50)
    assert man.value == pytest.approx(104.05, abs=0.01)
    woman = ckd_epi_2021(age_years=50, scr_mg_per_dl=0.7, sex="female")
    assert woman.value == approx(142 * 0.9938**50 * 1.012)


def test_ckd_epi_2021_low_scr_uses_alpha_exponent() -> None:
    # man 30 y, SCr 0.6 < κ 0.9: 142 × (0.6/0.9)^−0.302 × 0.9938^30
    assert ckd_epi_2021(age_years=30, scr_mg_per_dl=0.6, sex="male").value == approx(
        142 * (0.6 / 0.9) ** -0.302 * 0.9938**30
    )
    # woman 30 y, SCr 0.5 < κ 0.7: 142 × (0.5/0.7)^−0.241 × 0.9938^30 × 1.012
    assert ckd_epi_2021(age_years=30, scr_mg_per_dl=0.5, sex="female").value == approx(
        142 * (0.5 / 0.7) ** -0.241 * 0.9938**30 * 1.012
    )


def test_ckd_epi_2021_matches_formula_on_a_grid_and_is_continuous_at_kappa() -> None:
    for age in (18, 40, 65, 90, 120):
        for scr in (0.3, 0.7, 0.9, 1.5, 6.0):
            for sex, kappa, alpha, factor in (("female", 0.7, -0.241, 1.012), ("male", 0.9, -0.302, 1.0)):
                ratio = scr / kappa
                expected = 142 * min(ratio, 1) ** alpha * max(ratio, 1) ** -1.2 * 0.9938**age * factor
                result = ckd_epi_2021(age_years=age, scr_mg_per_dl=scr, sex=sex)
                assert result.value == approx(expected)
    for sex, kappa in (("female", 0.7), ("male", 0.9)):
        below = ckd_epi_2021(age_years=50, scr_mg_per_dl=kappa - 1e-9, sex=sex).value
        above = ckd_epi_2021(age_years=50, scr_mg_per_dl=kappa + 1e-9, sex=sex).value
        assert below == pytest.approx(above, rel=1e-7)


@pytest.mark.parametrize("age", [0, 10, 17.9])
def test_ckd_epi_2021_refuses_children(age: float) -> None:
    with pytest.raises(InvalidInputError) as excinfo:
        ckd_epi_2021(age_years=age, scr_mg_per_dl=0.5, sex="female")
    assert excinfo.value.path == "age_years"
    assert "Schwartz" in str(excinfo.value)


def test_deindexed_egfr_scales_by_bsa_over_1_73() -> None:
    # 60 × 2.0 / 1.73 = 69.36 mL/min (tolerance 0.01)
    result = deindexed_egfr_ml_per_min(egfr_ml_per_min_per_1_73m2=60, bsa_m2=2.0)
    assert result.value == approx(60 * 2.0 / 1.73)
    assert result.value == pytest.approx(69.36, abs=0.01)
    assert result.unit == "mL/min"
    assert deindexed_egfr_ml_per_min(egfr_ml_per_min_per_1_73m2=60, bsa_m2=1.73).value == approx(60)


def test_deindexed_egfr_chains_with_ckd_epi_and_mosteller() -> None:
    egfr = ckd_epi_2021(age_years=50, scr_mg_per_dl=1.0, sex="female")
    bsa = bsa_m2(weight_kg=80, height_cm=180)
    result = deindexed_egfr_ml_per_min(egfr_ml_per_min_per_1_73m2=egfr.value, bsa_m2=bsa.value)
    assert result.value == approx(142 * (1.0 / 0.7) ** -1.2 * 0.9938**50 * 1.012 * 2.0 / 1.73)


# -- Schwartz ------------------------------------------------------------------------------------------------


def test_schwartz_120_cm_scr_0_5_is_99_12() -> None:
    # 0.413 × 120 / 0.5 = 99.12 (tolerance 1e-9)
    result = schwartz_bedside(height_cm=120, scr_mg_per_dl=0.5, age_years=7)
    assert result.value == pytest.approx(99.12, abs=1e-9)
    assert result.unit == "mL/min/1.73 m²"
    assert not any("outside" in note for note in result.notes)


@pytest.mark.parametrize("age", [0, 0.5, 18.5, 40])
def test_schwartz_outside_1_to_18_years_is_noted(age: float) -> None:
    result = schwartz_bedside(height_cm=120, scr_mg_per_dl=0.5, age_years=age)
    assert result.value == approx(0.413 * 120 / 0.5)
    assert any("outside 1-18 years" in note for note in result.notes)


def test_schwartz_without_age_says_age_was_not_checked() -> None:
    result = schwartz_bedside(height_cm=150, scr_mg_per_dl=0.8)
    assert result.value == approx(0.413 * 150 / 0.8)
    assert any("Age not given" in note for note in result.notes)


# -- rejection of impossible inputs --------------------------------------------------------------------------

BAD_NUMBERS = [math.nan, math.inf, -math.inf, None, "70", True]

VALID: dict[str, dict[str, Any]] = {
    "cockcroft_gault": {"age_years": 60, "weight_kg": 72, "scr_mg_per_dl": 1.0, "sex": "male"},
    "ckd_epi_2021": {"age_years": 50, "scr_mg_per_dl": 1.0, "sex": "female"},
    "ideal_body_weight_kg": {"height_cm": 180, "sex": "male"},
    "adjusted_body_weight_kg": {"weight_kg": 120, "height_cm": 180, "sex": "male"},
    "lean_body_weight_kg": {"weight_kg": 70, "height_cm": 175, "sex": "male"},
    "bmi": {"weight_kg": 80, "height_cm": 180},
    "bsa_m2": {"weight_kg": 80, "height_cm": 180},
    "schwartz_bedside": {"height_cm": 120, "scr_mg_per_dl": 0.5, "age_years": 7},
    "deindexed_egfr_ml_per_min": {"egfr_ml_per_min_per_1_73m2": 60, "bsa_m2": 2.0},
    "creatinine_mg_per_dl": {"value": 1.0, "unit": "mg/dL"},
}
FUNCTIONS = {
    "cockcroft_gault": cockcroft_gault,
    "ckd_epi_2021": ckd_epi_2021,
    "ideal_body_weight_kg": ideal_body_weight_kg,
    "adjusted_body_weight_kg": adjusted_body_weight_kg,
    "lean_body_weight_kg": lean_body_weight_kg,
    "bmi": bmi,
    "bsa_m2": bsa_m2,
    "schwartz_bedside": schwartz_bedside,
    "deindexed_egfr_ml_per_min": deindexed_egfr_ml_per_min,
    "creatinine_mg_per_dl": creatinine_mg_per_dl,
}
OUT_OF_RANGE = {
    "age_years": [-1, 120.5, 500],
    "weight_kg": [0, -5, 400.1, 1000],
    "height_cm": [29.9, 250.1, 0, -170, 1800],
    "scr_mg_per_dl": [0, -1, 0.05, 30.1, 88.4],
    "egfr_ml_per_min_per_1_73m2": [0, -10, 1001],
    "bsa_m2": [0, -1, 5.1],
    "sex": ["M", "F", "unknown", "other", "", None, 1],
    "method": ["Mosteller", "haycock", None],
}


# Arguments for which None is the documented default ("not given"), hence not an impossible value.
OPTIONAL = {
    ("cockcroft_gault", "height_cm"),
    ("cockcroft_gault", "scr_floor_mg_per_dl"),
    ("cockcroft_gault", "cap_ml_per_min"),
    ("schwartz_bedside", "age_years"),
}


def _case(function: str, argument: str, bad: Any) -> Any:
    return pytest.param(function, argument, bad, id=f"{function}-{argument}-{bad!r}")


def _bad_numbers(function: str, argument: str) -> list[Any]:
    return [bad for bad in BAD_NUMBERS if not (bad is None and (function, argument) in OPTIONAL)]


def _bad_input_cases() -> list[Any]:
    cases = []
    for function, kwargs in VALID.items():
        for argument in kwargs:
            if argument == "unit":
                continue  # covered by test_creatinine_unknown_unit_is_rejected_naming_unit
            bad_values = list(OUT_OF_RANGE.get(argument, []))
            if argument != "sex":
                bad_values = _bad_numbers(function, argument) + bad_values
            if function == "ckd_epi_2021" and argument == "age_years":
                bad_values.append(17)
            cases.extend(_case(function, argument, bad) for bad in bad_values)
    cases.extend(_case("bsa_m2", "method", bad) for bad in OUT_OF_RANGE["method"])
    cases.extend(_case("cockcroft_gault", "weight_basis", bad) for bad in ["tbw", "Ideal", None])
    for argument, extra in [
        ("scr_floor_mg_per_dl", [0, -1, 0.05, 31]),
        ("cap_ml_per_min", [0, -150]),
        ("height_cm", [20, 300]),
    ]:
        bad_values = _bad_numbers("cockcroft_gault", argument) + extra
        cases.extend(_case("cockcroft_gault", argument, bad) for bad in bad_values)
    return cases


@pytest.mark.parametrize(("function", "argument", "bad"), _bad_input_cases())
def test_impossible_input_is_rejected_with_a_message_naming_the_argument(
    function: str, argument: str, bad: Any
) -> None:
    kwargs = {**VALID[function], argument: bad}
    if function == "cockcroft_gault" and argument == "height_cm":
        kwargs["weight_basis"] = "ideal"
    with pytest.raises(InvalidInputError) as excinfo:
        FUNCTIONS[function](**kwargs)
    assert excinfo.value.path == argument
    assert str(excinfo.value).startswith(f"{argument}: ")
    assert excinfo.value.message


def test_rejected_scr_message_suggests_checking_the_unit() -> None:
    with pytest.raises(InvalidInputError) as excinfo:
        cockcroft_gault(age_years=60, weight_kg=72, scr_mg_per_dl=88.4, sex="male")
    assert "check the unit" in str(excinfo.value)


def test_numpy_scalars_are_accepted() -> None:
    result = cockcroft_gault(
        age_years=np.int64(60), weight_kg=np.float64(72.0), scr_mg_per_dl=np.float32(1.0), sex="male"
    )
    assert result.value == pytest.approx(80.0, abs=1e-12)
    assert isinstance(result.value, float)


def test_module_imports_without_django() -> None:
    code = "import mipd_engine.clinical_equations, sys; assert 'django' not in sys.modules"
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == 0, completed.stderr
