"""The subgroups a level belongs to, from the facts recorded at its time (pure: no Django).

Bands are those clinicians use: age (neonatal/paediatric/adult/older), weight, BMI (WHO), renal function
(creatinine clearance by Cockcroft-Gault in adults, bedside Schwartz eGFR in children; the KDIGO cut points
with augmented renal clearance from 130 mL/min), ICU or ward, renal replacement (intermittent haemodialysis,
peritoneal dialysis, CRRT) and ancestry where the record holds it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from mipd_engine import clinical_equations as eq
from mipd_engine.covariate_sources import PatientFacts

UNKNOWN = "not recorded"
ON_RENAL_REPLACEMENT = "on renal replacement"  # the renal band while dialysis or CRRT runs
DIMENSIONS = (
    "all",
    "age_band",
    "sex",
    "weight_band",
    "bmi_band",
    "renal_band",
    "care_setting",
    "renal_support",
    "ancestry",
)
DIMENSION_LABELS = {
    "all": "All levels",
    "age_band": "Age",
    "sex": "Sex",
    "weight_band": "Weight",
    "bmi_band": "BMI",
    "renal_band": "Renal function",
    "care_setting": "ICU or ward",
    "renal_support": "Dialysis or CRRT",
    "ancestry": "Ancestry",
}
_AGE_BANDS = (
    (1.0, "<1 y"),
    (12.0, "1-11 y"),
    (18.0, "12-17 y"),
    (40.0, "18-39 y"),
    (65.0, "40-64 y"),
    (80.0, "65-79 y"),
    (float("inf"), ">=80 y"),
)
_WEIGHT_BANDS = (
    (10.0, "<10 kg"),
    (40.0, "10-39 kg"),
    (60.0, "40-59 kg"),
    (80.0, "60-79 kg"),
    (100.0, "80-99 kg"),
    (120.0, "100-119 kg"),
    (float("inf"), ">=120 kg"),
)
_BMI_BANDS = (
    (18.5, "<18.5"),
    (25.0, "18.5-24.9"),
    (30.0, "25-29.9"),
    (40.0, "30-39.9"),
    (float("inf"), ">=40"),
)
_RENAL_BANDS = (
    (15.0, "<15 mL/min"),
    (30.0, "15-29 mL/min"),
    (60.0, "30-59 mL/min"),
    (90.0, "60-89 mL/min"),
    (130.0, "90-129 mL/min"),
    (float("inf"), ">=130 mL/min"),
)
_ICU = re.compile(r"\b(icu|itu|picu|nicu|intensive|critical care)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Subgroups:
    age_band: str
    sex: str
    weight_band: str
    bmi_band: str
    renal_band: str
    renal_measure: str
    care_setting: str
    renal_support: str
    ancestry: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    def memberships(self) -> list[tuple[str, str]]:
        """(dimension, band) of every subgroup this level counts in; unrecorded facts count in none."""
        out = [("all", "all")]
        for dimension in DIMENSIONS[1:]:
            band = getattr(self, dimension)
            if band and band != UNKNOWN:
                out.append((dimension, band))
        return out


def _band(value: float | None, bands: Sequence[tuple[float, str]]) -> str:
    if value is None:
        return UNKNOWN
    return next(label for limit, label in bands if value < limit)


def _at(series: Sequence[tuple[float, float]], time_h: float) -> float | None:
    """The last value measured at or before ``time_h`` (else the first one after: a baseline)."""
    before = [v for t, v in series if t <= time_h]
    if before:
        return before[-1]
    return series[0][1] if series else None


def renal_support(facts: PatientFacts, time_h: float) -> str:
    modes = {m for m, start, end in facts.sessions if start <= time_h <= (end if end is not None else 1e12)}
    if "crrt" in modes:
        return "CRRT"
    if "peritoneal_dialysis" in modes or facts.on_haemodialysis(time_h):
        return "dialysis"
    return "none"


def subgroups_at(*, facts: PatientFacts, time_h: float, ward: str, ancestry: str = "") -> Subgroups:
    """The bands at ``time_h`` (hours from the case origin)."""
    age = facts.age_years_at_origin + time_h / 8766.0 if facts.age_years_at_origin is not None else None
    weight = _at(facts.measurements.get("weight") or [], time_h)
    height = _at(facts.measurements.get("height") or [], time_h)
    scr = _at(facts.measurements.get("serum_creatinine") or [], time_h)
    bmi = eq.bmi(weight_kg=weight, height_cm=height).value if weight and height and (age or 0) >= 18 else None
    renal_value, measure = None, ""
    support = renal_support(facts, time_h)
    if scr is not None and age is not None and support == "none":  # creatinine says little on dialysis
        if age >= 18 and weight and facts.sex in ("male", "female"):
            renal_value = eq.cockcroft_gault(
                age_years=age, weight_kg=weight, scr_mg_per_dl=scr, sex=facts.sex
            ).value
            measure = "CrCl (Cockcroft-Gault)"
        elif age < 18 and height:
            renal_value = eq.schwartz_bedside(height_cm=height, scr_mg_per_dl=scr, age_years=age).value
            measure = "eGFR (bedside Schwartz)"
    return Subgroups(
        age_band=_band(age, _AGE_BANDS),
        sex=facts.sex or UNKNOWN,
        weight_band=_band(weight, _WEIGHT_BANDS),
        bmi_band=_band(bmi, _BMI_BANDS),
        renal_band=_band(renal_value, _RENAL_BANDS) if support == "none" else ON_RENAL_REPLACEMENT,
        renal_measure=measure,
        care_setting="ICU" if _ICU.search(ward or "") else "ward",
        renal_support=support,
        ancestry=ancestry or UNKNOWN,
    )
