"""Clinical equations used to derive covariates: renal function, body size and creatinine units.

Pure Python (``math`` only); this module never imports Django. Every function takes keyword-only arguments
with the unit in the argument name and returns a :class:`Derived`, which carries the value together with its
unit, the formula in words, the literature source and the caveats that apply to *this* patient, so that the
web UI can show them next to the number.

Impossible inputs (non-finite or non-numeric numbers, weight <= 0 or > 400 kg, height outside 30-250 cm,
age < 0 or > 120 years, serum creatinine outside 0.1-30 mg/dL, unknown sex, unknown unit...) raise
:class:`mipd_engine.errors.InvalidInputError` whose ``path`` is the name of the offending argument.
Conditions under which an equation is merely extrapolated (a child in Cockcroft-Gault, a height below
60 inches in Devine...) do not raise: they add a note to :attr:`Derived.notes`.

Serum creatinine is always in mg/dL here; convert laboratory values with :func:`creatinine_mg_per_dl`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

from .errors import InvalidInputError

__all__ = [
    "CREATININE_UMOL_PER_L_PER_MG_PER_DL",
    "Derived",
    "adjusted_body_weight_kg",
    "bmi",
    "bsa_m2",
    "ckd_epi_2021",
    "cockcroft_gault",
    "creatinine_mg_per_dl",
    "deindexed_egfr_ml_per_min",
    "ideal_body_weight_kg",
    "lean_body_weight_kg",
    "postmenstrual_age_weeks",
    "schwartz_bedside",
]

#: µmol/L of creatinine per mg/dL. From the molar mass of creatinine (C4H7N3O, 113.12 g/mol),
#: 1 mg/dL = 10 mg/L / 113.12 g/mol = 88.40 µmol/L; tables round it to 88.4 (e.g. KDIGO 2012 CKD guideline)
#: and some laboratories use 88.42. The two differ by 0.02 %, which is clinically negligible.
CREATININE_UMOL_PER_L_PER_MG_PER_DL = 88.42

CM_PER_INCH = 2.54

# Plausibility limits: outside them the input is an entry error, not a patient.
WEIGHT_MAX_KG = 400.0
HEIGHT_MIN_CM = 30.0
HEIGHT_MAX_CM = 250.0
AGE_MAX_YEARS = 120.0
SCR_MIN_MG_PER_DL = 0.1  # 8.8 µmol/L: lower values are a unit mix-up (µmol/L entered as mg/dL or vice versa)
SCR_MAX_MG_PER_DL = 30.0  # 2653 µmol/L
GESTATIONAL_AGE_MIN_WEEKS = 20.0  # births before 20 weeks are not live-born infants a dose is computed for
GESTATIONAL_AGE_MAX_WEEKS = 45.0
DAYS_PER_WEEK = 7.0
EGFR_MAX_ML_PER_MIN_PER_1_73M2 = 1000.0
BSA_MAX_M2 = 5.0

_SEXES = ("male", "female")
_MG_PER_DL_UNITS = {"mg/dl"}
# "µ" may be the micro sign (U+00B5) or the Greek small letter mu (U+03BC); both are typed in practice.
_UMOL_PER_L_UNITS = {"umol/l", "\u00b5mol/l", "\u03bcmol/l"}

SOURCE_COCKCROFT_GAULT = (
    "Cockcroft DW, Gault MH. Prediction of creatinine clearance from serum creatinine. Nephron 1976;16:31-41."
)
SOURCE_DEVINE = "Devine BJ. Gentamicin therapy. Drug Intell Clin Pharm 1974;8:650-5."
SOURCE_ADJUSTED_WEIGHT = (
    "Bauer LA, Edwards WA, Dellinger EP, Simonowitz DA. Influence of weight on aminoglycoside "
    "pharmacokinetics in normal weight and morbidly obese patients. Eur J Clin Pharmacol 1983;24:643-7."
)
SOURCE_JANMAHASATIAN = (
    "Janmahasatian S, Duffull SB, Ash S, Ward LC, Byrne NM, Green B. Quantification of lean bodyweight. "
    "Clin Pharmacokinet 2005;44:1051-65."
)
SOURCE_BMI = "Quetelet index; WHO. Obesity: preventing and managing the global epidemic. WHO TRS 894, 2000."
SOURCE_MOSTELLER = "Mosteller RD. Simplified calculation of body-surface area. N Engl J Med 1987;317:1098."
SOURCE_DUBOIS = (
    "Du Bois D, Du Bois EF. A formula to estimate the approximate surface area if height and weight be "
    "known. Arch Intern Med 1916;17:863-71."
)
SOURCE_CKD_EPI_2021 = (
    "Inker LA, Eneanya ND, Coresh J, et al. New creatinine- and cystatin C-based equations to estimate GFR "
    "without race. N Engl J Med 2021;385:1737-49."
)
SOURCE_SCHWARTZ_2009 = (
    "Schwartz GJ, Muñoz A, Schneider MF, et al. New equations to estimate GFR in children with CKD. "
    "J Am Soc Nephrol 2009;20:629-37."
)
SOURCE_AGE_TERMINOLOGY = (
    "American Academy of Pediatrics, Committee on Fetus and Newborn. Age terminology during the perinatal "
    "period. Pediatrics 2004;114:1362-4."
)
SOURCE_CREATININE_UNITS = (
    "Molar mass of creatinine 113.12 g/mol: 1 mg/dL = 88.4 µmol/L (KDIGO 2012 Clinical Practice Guideline "
    "for the Evaluation and Management of CKD, Kidney Int Suppl 2013;3:1-150); factor used: 88.42."
)


@dataclass(frozen=True)
class Derived:
    """A derived clinical quantity with everything needed to display and audit it.

    Attributes
    ----------
    value : float
        The number, unrounded.
    unit : str
        Its unit, e.g. ``"mL/min"``.
    formula : str
        The formula actually applied, in words, with the patient-specific choices resolved.
    source : str
        Literature reference of the equation.
    notes : tuple of str
        Caveats that apply to this patient and this computation (weight used, floors and caps applied,
        extrapolation outside the derivation population...).
    """

    value: float
    unit: str
    formula: str
    source: str
    notes: tuple[str, ...] = ()


# -- validation ----------------------------------------------------------------------------------------------


def _number(path: str, value: Any) -> float:
    """``value`` as a finite float; booleans, strings, None and non-finite numbers are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInputError(path, f"must be a real number, got {value!r} ({type(value).__name__})")
    result = float(value)
    if not math.isfinite(result):
        raise InvalidInputError(path, f"must be a finite number, got {value!r}")
    return result


def _weight(path: str, value: Any) -> float:
    weight = _number(path, value)
    if weight <= 0 or weight > WEIGHT_MAX_KG:
        raise InvalidInputError(path, f"must be > 0 and <= {WEIGHT_MAX_KG:g} kg, got {weight:g}")
    return weight


def _height(path: str, value: Any) -> float:
    height = _number(path, value)
    if not HEIGHT_MIN_CM <= height <= HEIGHT_MAX_CM:
        raise InvalidInputError(
            path, f"must be between {HEIGHT_MIN_CM:g} and {HEIGHT_MAX_CM:g} cm, got {height:g}"
        )
    return height


def _age(path: str, value: Any) -> float:
    age = _number(path, value)
    if not 0 <= age <= AGE_MAX_YEARS:
        raise InvalidInputError(path, f"must be between 0 and {AGE_MAX_YEARS:g} years, got {age:g}")
    return age


def _scr(path: str, value: Any) -> float:
    scr = _number(path, value)
    if scr <= 0:
        raise InvalidInputError(path, f"must be > 0 mg/dL, got {scr:g}")
    if scr < SCR_MIN_MG_PER_DL or scr > SCR_MAX_MG_PER_DL:
        raise InvalidInputError(
            path,
            f"{scr:g} mg/dL is not a plausible serum creatinine (accepted {SCR_MIN_MG_PER_DL:g}-"
            f"{SCR_MAX_MG_PER_DL:g} mg/dL); check the unit (1 mg/dL = "
            f"{CREATININE_UMOL_PER_L_PER_MG_PER_DL} µmol/L)",
        )
    return scr


def _sex(path: str, value: Any) -> str:
    if isinstance(value, str) and value.strip().casefold() in _SEXES:
        return value.strip().casefold()
    raise InvalidInputError(path, f"must be 'male' or 'female' (the equation is sex-specific), got {value!r}")


def _choice(path: str, value: Any, choices: tuple[str, ...]) -> str:
    if isinstance(value, str) and value in choices:
        return value
    raise InvalidInputError(path, f"must be one of {', '.join(map(repr, choices))}, got {value!r}")


# -- creatinine units ----------------------------------------------------------------------------------------


def creatinine_mg_per_dl(*, value: float, unit: str) -> Derived:
    """Serum creatinine converted to mg/dL.

    ``SCr [mg/dL] = SCr [µmol/L] / 88.42``

    Parameters
    ----------
    value : float
        Serum creatinine in ``unit``.
    unit : str
        ``"mg/dL"`` or ``"umol/L"`` (also ``"µmol/L"`` with the micro sign or the Greek mu). Case and
        surrounding blanks are ignored. Any other unit (including ``"mmol/L"``) is refused.

    Returns
    -------
    Derived
        Serum creatinine in mg/dL (within 0.1-30 mg/dL, otherwise :class:`InvalidInputError`).

    Notes
    -----
    1 mg/dL = 10 mg/L / 113.12 g/mol = 88.4 µmol/L (molar mass of creatinine; the factor published by KDIGO
    2012 is 88.4). This module uses 88.42, as some laboratories do; the difference is 0.02 %.
    """
    number = _number("value", value)
    if not isinstance(unit, str):
        raise InvalidInputError("unit", f"must be 'mg/dL' or 'umol/L' (µmol/L), got {unit!r}")
    key = unit.strip().casefold()
    if key in _MG_PER_DL_UNITS:
        converted = number
        formula = "SCr [mg/dL] (no conversion)"
    elif key in _UMOL_PER_L_UNITS:
        converted = number / CREATININE_UMOL_PER_L_PER_MG_PER_DL
        formula = f"SCr [mg/dL] = SCr [µmol/L] / {CREATININE_UMOL_PER_L_PER_MG_PER_DL}"
    else:
        raise InvalidInputError(
            "unit", f"unknown creatinine unit {unit!r}; accepted units are 'mg/dL' and 'umol/L' (µmol/L)"
        )
    if number <= 0:
        raise InvalidInputError("value", f"must be > 0, got {number:g} {unit.strip()}")
    if not SCR_MIN_MG_PER_DL <= converted <= SCR_MAX_MG_PER_DL:
        low = SCR_MIN_MG_PER_DL * CREATININE_UMOL_PER_L_PER_MG_PER_DL
        high = SCR_MAX_MG_PER_DL * CREATININE_UMOL_PER_L_PER_MG_PER_DL
        raise InvalidInputError(
            "value",
            f"{number:g} {unit.strip()} is not a plausible serum creatinine (accepted "
            f"{SCR_MIN_MG_PER_DL:g}-{SCR_MAX_MG_PER_DL:g} mg/dL = {low:.1f}-{high:.0f} µmol/L); "
            "check the unit",
        )
    return Derived(value=converted, unit="mg/dL", formula=formula, source=SOURCE_CREATININE_UNITS)


# -- body size -----------------------------------------------------------------------------------------------


def bmi(*, weight_kg: float, height_cm: float) -> Derived:
    """Body-mass index.

    ``BMI [kg/m²] = weight [kg] / (height [m])²``

    Parameters
    ----------
    weight_kg : float
        Total body weight, kg (0-400).
    height_cm : float
        Height, cm (30-250).

    Returns
    -------
    Derived
        BMI in kg/m².

    References
    ----------
    Quetelet index; WHO Technical Report Series 894 (2000) for the adult categories.
    """
    weight = _weight("weight_kg", weight_kg)
    height_m = _height("height_cm", height_cm) / 100.0
    return Derived(
        value=weight / height_m**2,
        unit="kg/m²",
        formula="BMI = weight [kg] / (height [m])²",
        source=SOURCE_BMI,
    )


def bsa_m2(*, weight_kg: float, height_cm: float, method: str = "mosteller") -> Derived:
    """Body surface area.

    - Mosteller: ``BSA [m²] = sqrt(height [cm] × weight [kg] / 3600)``
    - DuBois: ``BSA [m²] = 0.007184 × weight [kg]^0.425 × height [cm]^0.725``

    Parameters
    ----------
    weight_kg : float
        Total body weight, kg (0-400).
    height_cm : float
        Height, cm (30-250).
    method : {"mosteller", "dubois"}
        Equation to use.

    Returns
    -------
    Derived
        BSA in m².

    References
    ----------
    Mosteller RD. N Engl J Med 1987;317:1098. Du Bois D, Du Bois EF. Arch Intern Med 1916;17:863-71
    (published as A [cm²] = 71.84 × W^0.425 × H^0.725; derived from 9 subjects).
    """
    weight = _weight("weight_kg", weight_kg)
    height = _height("height_cm", height_cm)
    method = _choice("method", method, ("mosteller", "dubois"))
    if method == "mosteller":
        return Derived(
            value=math.sqrt(height * weight / 3600.0),
            unit="m²",
            formula="BSA = sqrt(height [cm] × weight [kg] / 3600) (Mosteller)",
            source=SOURCE_MOSTELLER,
        )
    return Derived(
        value=0.007184 * weight**0.425 * height**0.725,
        unit="m²",
        formula="BSA = 0.007184 × weight [kg]^0.425 × height [cm]^0.725 (DuBois)",
        source=SOURCE_DUBOIS,
    )


def ideal_body_weight_kg(*, height_cm: float, sex: str) -> Derived:
    """Ideal body weight (Devine).

    ``IBW [kg] = 50 (male) or 45.5 (female) + 2.3 × (height [cm] / 2.54 − 60)``

    i.e. 2.3 kg per inch over 5 feet (60 inches = 152.4 cm).

    Parameters
    ----------
    height_cm : float
        Height, cm (30-250).
    sex : {"male", "female"}

    Returns
    -------
    Derived
        IBW in kg.

    Raises
    ------
    InvalidInputError
        If the height is so short that the extrapolated formula gives IBW <= 0 kg (below about 97 cm for
        men and 102 cm for women).

    Notes
    -----
    Devine's formula was proposed for adults of at least 5 feet. Below 60 inches the formula is
    extrapolated linearly (2.3 kg subtracted per inch), which is unvalidated; a note says so.

    References
    ----------
    Devine BJ. Gentamicin therapy. Drug Intell Clin Pharm 1974;8:650-5.
    """
    height = _height("height_cm", height_cm)
    sex = _sex("sex", sex)
    base = 50.0 if sex == "male" else 45.5
    inches = height / CM_PER_INCH
    value = base + 2.3 * (inches - 60.0)
    if value <= 0:
        raise InvalidInputError(
            "height_cm",
            f"Devine ideal body weight is not defined for {height:g} cm ({inches:.1f} in): the formula, "
            f"extrapolated below 60 in, gives {value:.1f} kg",
        )
    notes: list[str] = []
    if inches < 60.0:
        notes.append(
            f"Height {height:g} cm ({inches:.1f} in) is below 60 in (152.4 cm): Devine's formula is "
            "extrapolated (2.3 kg subtracted per inch below 60 in), which is not validated."
        )
    return Derived(
        value=value,
        unit="kg",
        formula=f"IBW = {base:g} + 2.3 × (height [cm] / 2.54 − 60) (Devine, {sex})",
        source=SOURCE_DEVINE,
        notes=tuple(notes),
    )


def adjusted_body_weight_kg(*, weight_kg: float, height_cm: float, sex: str, factor: float = 0.4) -> Derived:
    """Adjusted body weight.

    ``AdjBW [kg] = IBW + factor × (TBW − IBW)``, with IBW from Devine and ``factor`` 0.4 by default.

    Parameters
    ----------
    weight_kg : float
        Total body weight (TBW), kg (0-400).
    height_cm : float
        Height, cm (30-250), for the IBW.
    sex : {"male", "female"}
    factor : float
        Fraction of the excess weight added to IBW, 0-1 (0.4 by default; other values are used for
        specific drugs).

    Returns
    -------
    Derived
        AdjBW in kg.

    Notes
    -----
    The formula is applied as written even when TBW < IBW (the result then lies between TBW and IBW);
    a note flags this case, where many protocols use TBW instead.

    References
    ----------
    Bauer LA et al. Eur J Clin Pharmacol 1983;24:643-7 (factor 0.4, aminoglycosides). IBW: Devine BJ,
    Drug Intell Clin Pharm 1974;8:650-5.
    """
    weight = _weight("weight_kg", weight_kg)
    factor_value = _number("factor", factor)
    if not 0.0 <= factor_value <= 1.0:
        raise InvalidInputError("factor", f"must be between 0 and 1, got {factor_value:g}")
    ibw = ideal_body_weight_kg(height_cm=height_cm, sex=sex)
    notes = list(ibw.notes)
    if weight < ibw.value:
        notes.append(
            f"Total body weight {weight:g} kg is below ideal body weight {ibw.value:.1f} kg: adjusted weight "
            "is meant for patients above IBW; many protocols use total body weight in this case."
        )
    return Derived(
        value=ibw.value + factor_value * (weight - ibw.value),
        unit="kg",
        formula=f"AdjBW = IBW + {factor_value:g} × (TBW − IBW), IBW = {ibw.value:.1f} kg (Devine)",
        source=f"{SOURCE_ADJUSTED_WEIGHT} IBW: {SOURCE_DEVINE}",
        notes=tuple(notes),
    )


def lean_body_weight_kg(*, weight_kg: float, height_cm: float, sex: str) -> Derived:
    """Lean body weight (Janmahasatian).

    - male: ``LBW [kg] = 9270 × WT / (6680 + 216 × BMI)``
    - female: ``LBW [kg] = 9270 × WT / (8780 + 244 × BMI)``

    with WT the total body weight in kg and BMI in kg/m².

    Parameters
    ----------
    weight_kg : float
        Total body weight, kg (0-400).
    height_cm : float
        Height, cm (30-250).
    sex : {"male", "female"}

    Returns
    -------
    Derived
        LBW in kg.

    Notes
    -----
    Derived in adults; a note is added when BMI is below 18.5 kg/m², where the equation is less studied.
    For men with BMI below about 12 kg/m² (women: 2 kg/m²) the formula gives LBW >= total weight, which is
    impossible: :class:`InvalidInputError` is raised (path ``weight_kg``).

    References
    ----------
    Janmahasatian S et al. Quantification of lean bodyweight. Clin Pharmacokinet 2005;44:1051-65.
    """
    weight = _weight("weight_kg", weight_kg)
    body_mass_index = bmi(weight_kg=weight, height_cm=height_cm).value
    sex = _sex("sex", sex)
    a, b = (6680.0, 216.0) if sex == "male" else (8780.0, 244.0)
    value = 9270.0 * weight / (a + b * body_mass_index)
    if value >= weight:
        # 9270 / (a + b × BMI) >= 1 when BMI <= (9270 − a) / b: 11.96 kg/m² (male), 2.0 kg/m² (female).
        raise InvalidInputError(
            "weight_kg",
            f"BMI {body_mass_index:.1f} kg/m² is too low for the Janmahasatian equation: it gives a lean "
            f"body weight ({value:.1f} kg) not below total body weight ({weight:g} kg)",
        )
    notes: list[str] = []
    if body_mass_index < 18.5:
        notes.append(
            f"BMI {body_mass_index:.1f} kg/m² is below 18.5: the equation was developed in adults of mostly "
            "normal to high BMI; interpret with caution (and it is not meant for children)."
        )
    return Derived(
        value=value,
        unit="kg",
        formula=f"LBW = 9270 × WT / ({a:g} + {b:g} × BMI), BMI = {body_mass_index:.1f} kg/m² ({sex})",
        source=SOURCE_JANMAHASATIAN,
        notes=tuple(notes),
    )


# -- renal function ------------------------------------------------------------------------------------------

_WEIGHT_BASES = ("total", "ideal", "adjusted", "lesser_of_total_and_ideal")


def cockcroft_gault(
    *,
    age_years: float,
    weight_kg: float,
    scr_mg_per_dl: float,
    sex: str,
    weight_basis: str = "total",
    height_cm: float | None = None,
    scr_floor_mg_per_dl: float | None = None,
    cap_ml_per_min: float | None = None,
) -> Derived:
    """Creatinine clearance by Cockcroft-Gault.

    ``CrCl [mL/min] = (140 − age [y]) × weight [kg] / (72 × SCr [mg/dL]) × 0.85 if female``

    Parameters
    ----------
    age_years : float
        Age, years (0-120).
    weight_kg : float
        Total body weight (TBW), kg (0-400).
    scr_mg_per_dl : float
        Serum creatinine, mg/dL (0.1-30).
    sex : {"male", "female"}
    weight_basis : {"total", "ideal", "adjusted", "lesser_of_total_and_ideal"}
        Weight put in the equation: TBW, Devine IBW, adjusted weight IBW + 0.4 × (TBW − IBW), or the
        lesser of TBW and IBW. All but ``"total"`` need ``height_cm``.
    height_cm : float, optional
        Height, cm (30-250). Required unless ``weight_basis == "total"``; when given with ``"total"``, it is
        used only to flag obesity.
    scr_floor_mg_per_dl : float, optional
        If given, a SCr below it is replaced by it (e.g. rounding up to 1.0 mg/dL in elderly or cachectic
        patients, a common but debated practice).
    cap_ml_per_min : float, optional
        If given, the result is capped at this value (e.g. 150 mL/min).

    Returns
    -------
    Derived
        CrCl in mL/min (not normalised to body surface area). The notes state the weight used and any floor
        or cap applied.

    Notes
    -----
    Derived in 249 patients aged 18-92 years, 96 % men; the 0.85 factor for women was proposed (“15 % less
    in females”), not fitted. SCr was measured with a non-standardised (Jaffe) assay: with IDMS-traceable
    enzymatic SCr the equation tends to overestimate clearance.

    References
    ----------
    Cockcroft DW, Gault MH. Prediction of creatinine clearance from serum creatinine. Nephron 1976;16:31-41.
    """
    age = _age("age_years", age_years)
    weight = _weight("weight_kg", weight_kg)
    scr = _scr("scr_mg_per_dl", scr_mg_per_dl)
    sex = _sex("sex", sex)
    weight_basis = _choice("weight_basis", weight_basis, _WEIGHT_BASES)
    height = None if height_cm is None else _height("height_cm", height_cm)
    if weight_basis != "total" and height is None:
        raise InvalidInputError("height_cm", f"is required when weight_basis is {weight_basis!r}")
    floor = None
    if scr_floor_mg_per_dl is not None:
        floor = _scr("scr_floor_mg_per_dl", scr_floor_mg_per_dl)
    cap = None
    if cap_ml_per_min is not None:
        cap = _number("cap_ml_per_min", cap_ml_per_min)
        if cap <= 0:
            raise InvalidInputError("cap_ml_per_min", f"must be > 0 mL/min, got {cap:g}")

    notes: list[str] = []
    source = SOURCE_COCKCROFT_GAULT
    if weight_basis == "total":
        used_weight, weight_label = weight, "total body weight"
        if height is not None:
            body_mass_index = weight / (height / 100.0) ** 2
            if body_mass_index >= 30.0:
                notes.append(
                    f"BMI {body_mass_index:.1f} kg/m² >= 30: total body weight tends to overestimate CrCl in "
                    "obesity; consider weight_basis='adjusted'."
                )
    else:
        assert height is not None
        ibw = ideal_body_weight_kg(height_cm=height, sex=sex)
        notes.extend(ibw.notes)
        source = f"{source} IBW: {SOURCE_DEVINE}"
        if weight_basis == "ideal":
            used_weight, weight_label = ibw.value, "ideal body weight (Devine)"
            if weight < ibw.value:
                notes.append(
                    f"Total body weight {weight:g} kg is below ideal body weight {ibw.value:.1f} kg: many "
                    "protocols use the lesser of the two (weight_basis='lesser_of_total_and_ideal')."
                )
        elif weight_basis == "adjusted":
            adjusted = adjusted_body_weight_kg(weight_kg=weight, height_cm=height, sex=sex)
            notes.extend(note for note in adjusted.notes if note not in notes)
            used_weight, weight_label = adjusted.value, "adjusted body weight IBW + 0.4 × (TBW − IBW)"
            source = f"{source} Adjusted weight: {SOURCE_ADJUSTED_WEIGHT}"
        elif weight <= ibw.value:
            used_weight, weight_label = weight, "total body weight (lesser of total and ideal)"
        else:
            used_weight, weight_label = ibw.value, "ideal body weight (Devine; lesser of total and ideal)"
    notes.insert(0, f"Weight used: {weight_label}, {used_weight:.1f} kg.")

    used_scr = scr
    if floor is not None and scr < floor:
        used_scr = floor
        notes.append(
            f"SCr {scr:g} mg/dL raised to the floor {floor:g} mg/dL (a common practice in elderly or "
            "low-muscle-mass patients; it may underestimate CrCl)."
        )
    if age < 18:
        notes.append(
            f"Age {age:g} years: Cockcroft-Gault was derived in adults (18-92 years) and is not validated in "
            "children; consider the bedside Schwartz equation."
        )
    sex_factor = 0.85 if sex == "female" else 1.0
    value = (140.0 - age) * used_weight / (72.0 * used_scr) * sex_factor
    if cap is not None and value > cap:
        notes.append(f"CrCl {value:.1f} mL/min capped at {cap:g} mL/min.")
        value = cap
    formula = "CrCl = (140 − age) × weight / (72 × SCr)" + (" × 0.85 (female)" if sex == "female" else "")
    return Derived(value=value, unit="mL/min", formula=formula, source=source, notes=tuple(notes))


def ckd_epi_2021(*, age_years: float, scr_mg_per_dl: float, sex: str) -> Derived:
    """Estimated GFR by the race-free CKD-EPI 2021 creatinine equation.

    ``eGFR [mL/min/1.73 m²] = 142 × min(SCr/κ, 1)^α × max(SCr/κ, 1)^−1.200 × 0.9938^age × 1.012 [if female]``

    with κ = 0.7 (female) or 0.9 (male) and α = −0.241 (female) or −0.302 (male), SCr in mg/dL
    (IDMS-traceable) and age in years.

    Parameters
    ----------
    age_years : float
        Age, years (18-120).
    scr_mg_per_dl : float
        Serum creatinine, mg/dL (0.1-30).
    sex : {"male", "female"}

    Returns
    -------
    Derived
        eGFR in mL/min/1.73 m², indexed to body surface area; for drug dosing, de-index it with
        :func:`deindexed_egfr_ml_per_min`.

    Raises
    ------
    InvalidInputError
        For ``age_years`` < 18: the equation is for adults (use :func:`schwartz_bedside` in children).

    References
    ----------
    Inker LA, Eneanya ND, Coresh J, et al. N Engl J Med 2021;385:1737-49.
    """
    age = _age("age_years", age_years)
    if age < 18:
        raise InvalidInputError(
            "age_years",
            f"CKD-EPI 2021 is validated in adults (>= 18 years) only, got {age:g}; "
            "use the bedside Schwartz equation in children",
        )
    scr = _scr("scr_mg_per_dl", scr_mg_per_dl)
    sex = _sex("sex", sex)
    if sex == "female":
        kappa, alpha, sex_factor = 0.7, -0.241, 1.012
    else:
        kappa, alpha, sex_factor = 0.9, -0.302, 1.0
    ratio = scr / kappa
    value = 142.0 * min(ratio, 1.0) ** alpha * max(ratio, 1.0) ** -1.200 * 0.9938**age * sex_factor
    formula = f"eGFR = 142 × min(SCr/{kappa:g}, 1)^{alpha:g} × max(SCr/{kappa:g}, 1)^−1.200 × 0.9938^age" + (
        " × 1.012 (female)" if sex == "female" else ""
    )
    notes = (
        "Indexed to 1.73 m² body surface area; for drug dosing de-index with the patient's BSA.",
        "Requires IDMS-traceable serum creatinine.",
    )
    return Derived(
        value=value, unit="mL/min/1.73 m²", formula=formula, source=SOURCE_CKD_EPI_2021, notes=notes
    )


def deindexed_egfr_ml_per_min(*, egfr_ml_per_min_per_1_73m2: float, bsa_m2: float) -> Derived:
    """eGFR de-indexed from 1.73 m² to the patient's body surface area.

    ``eGFR [mL/min] = eGFR [mL/min/1.73 m²] × BSA [m²] / 1.73``

    Parameters
    ----------
    egfr_ml_per_min_per_1_73m2 : float
        Indexed eGFR, mL/min/1.73 m² (> 0, <= 1000).
    bsa_m2 : float
        Body surface area, m² (> 0, <= 5), e.g. from :func:`bsa_m2`.

    Returns
    -------
    Derived
        eGFR in mL/min.

    References
    ----------
    KDIGO 2012 Clinical Practice Guideline for the Evaluation and Management of CKD (Kidney Int Suppl
    2013;3:1-150), recommendation to use non-indexed GFR for drug dosing where body size is far from
    1.73 m².
    """
    egfr = _number("egfr_ml_per_min_per_1_73m2", egfr_ml_per_min_per_1_73m2)
    if egfr <= 0 or egfr > EGFR_MAX_ML_PER_MIN_PER_1_73M2:
        raise InvalidInputError(
            "egfr_ml_per_min_per_1_73m2",
            f"must be > 0 and <= {EGFR_MAX_ML_PER_MIN_PER_1_73M2:g} mL/min/1.73 m², got {egfr:g}",
        )
    bsa = _number("bsa_m2", bsa_m2)
    if bsa <= 0 or bsa > BSA_MAX_M2:
        raise InvalidInputError("bsa_m2", f"must be > 0 and <= {BSA_MAX_M2:g} m², got {bsa:g}")
    return Derived(
        value=egfr * bsa / 1.73,
        unit="mL/min",
        formula="eGFR [mL/min] = eGFR [mL/min/1.73 m²] × BSA [m²] / 1.73",
        source="KDIGO 2012 CKD guideline, Kidney Int Suppl 2013;3:1-150.",
    )


def schwartz_bedside(*, height_cm: float, scr_mg_per_dl: float, age_years: float | None = None) -> Derived:
    """Estimated GFR in children by the bedside Schwartz (CKiD 2009) equation.

    ``eGFR [mL/min/1.73 m²] = 0.413 × height [cm] / SCr [mg/dL]``

    Parameters
    ----------
    height_cm : float
        Height, cm (30-250).
    scr_mg_per_dl : float
        Serum creatinine, mg/dL (0.1-30), enzymatic, IDMS-traceable.
    age_years : float, optional
        Age, years (0-120), used only to flag use outside children aged 1-18 years. When omitted, a note
        says that the age could not be checked.

    Returns
    -------
    Derived
        eGFR in mL/min/1.73 m².

    Notes
    -----
    Derived in children aged 1-16 years with CKD (CKiD cohort, iohexol GFR, enzymatic creatinine).
    A note is added outside 1-18 years.

    References
    ----------
    Schwartz GJ, Muñoz A, Schneider MF, et al. New equations to estimate GFR in children with CKD.
    J Am Soc Nephrol 2009;20:629-37.
    """
    height = _height("height_cm", height_cm)
    scr = _scr("scr_mg_per_dl", scr_mg_per_dl)
    notes: list[str] = []
    if age_years is None:
        notes.append("Age not given: the equation is for children aged 1-18 years (derived at 1-16 years).")
    else:
        age = _age("age_years", age_years)
        if not 1.0 <= age <= 18.0:
            notes.append(
                f"Age {age:g} years is outside 1-18 years: the bedside Schwartz equation is not validated "
                "at this age (derived in children with CKD aged 1-16 years)."
            )
        elif age > 16.0:
            notes.append(f"Age {age:g} years: the derivation cohort was aged 1-16 years.")
    notes.append("Requires enzymatic, IDMS-traceable serum creatinine.")
    return Derived(
        value=0.413 * height / scr,
        unit="mL/min/1.73 m²",
        formula="eGFR = 0.413 × height [cm] / SCr [mg/dL] (bedside Schwartz)",
        source=SOURCE_SCHWARTZ_2009,
        notes=tuple(notes),
    )


def postmenstrual_age_weeks(*, gestational_age_at_birth_weeks: float, postnatal_age_days: float) -> Derived:
    """Postmenstrual age: gestational age at birth plus the time since birth (chronological age).

    ``PMA [weeks] = gestational age at birth [weeks] + postnatal age [days] / 7``

    Parameters
    ----------
    gestational_age_at_birth_weeks : float
        Gestational age at birth, completed weeks and days as a decimal, weeks (20-45).
    postnatal_age_days : float
        Time since birth, days (>= 0).

    Returns
    -------
    Derived
        Postmenstrual age in weeks.

    Notes
    -----
    Neonatal clearance models use PMA as the maturation clock. Beyond infancy PMA is rarely used; no note is
    added for older children, whose models should use the age in years instead.

    References
    ----------
    American Academy of Pediatrics, Committee on Fetus and Newborn. Age terminology during the perinatal
    period. Pediatrics 2004;114:1362-4.
    """
    ga = _number("gestational_age_at_birth_weeks", gestational_age_at_birth_weeks)
    if not GESTATIONAL_AGE_MIN_WEEKS <= ga <= GESTATIONAL_AGE_MAX_WEEKS:
        raise InvalidInputError(
            "gestational_age_at_birth_weeks",
            f"must be between {GESTATIONAL_AGE_MIN_WEEKS:g} and {GESTATIONAL_AGE_MAX_WEEKS:g} weeks, "
            f"got {ga:g}",
        )
    days = _number("postnatal_age_days", postnatal_age_days)
    if days < 0:
        raise InvalidInputError("postnatal_age_days", f"must be >= 0 days, got {days:g}")
    return Derived(
        value=ga + days / DAYS_PER_WEEK,
        unit="weeks",
        formula="PMA = gestational age at birth [weeks] + postnatal age [days] / 7",
        source=SOURCE_AGE_TERMINOLOGY,
    )
