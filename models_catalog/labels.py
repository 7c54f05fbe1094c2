"""The words a person reads for identifiers: routes, measurement kinds, covariates, outputs, modalities.

Pages, messages and forms take their labels from here, never from the identifiers themselves
(``iv_bolus`` is "IV bolus"; ``serum_creatinine`` is "serum creatinine").
"""

from __future__ import annotations

ROUTE_LABELS = {
    "iv_infusion": "IV infusion",
    "iv_bolus": "IV bolus",
    "oral": "oral",
    "subcutaneous": "subcutaneous",
    "intramuscular": "intramuscular",
}
# Routes whose doses run over a duration; every other route is given at once (bolus, tablet, injection).
INFUSION_ROUTES = frozenset({"iv_infusion"})

MEASUREMENT_LABELS = {
    "weight": "weight",
    "height": "height",
    "serum_creatinine": "serum creatinine",
    "albumin": "albumin",
    "gestational_age_at_birth": "gestational age at birth",
    "hematocrit": "haematocrit",
    "donor_deceased": "deceased-donor kidney (1 yes, 0 no)",
    "morbidly_obese": "morbidly obese: BMI >= 40 kg/m², or >= 35 with comorbidity (1 yes, 0 no)",
    "crcl_measured_per_1_73m2": "measured creatinine clearance (24-h urine, per 1.73 m²)",
    "crcl_measured": "measured creatinine clearance (timed urine, mL/min, not per 1.73 m²)",
    "infusion_line_lag": "infusion line lag (h from starting the pump to the drug reaching the patient)",
    "comedication_valproate": "taking valproate (1 yes, 0 no)",
    "comedication_carbamazepine": "taking carbamazepine (1 yes, 0 no)",
    "comedication_phenobarbital": "taking phenobarbital (1 yes, 0 no)",
    "infliximab_antibodies": "antibodies to infliximab (1 detected, 0 not detected)",
    "urine_output_24h": "residual diuresis (24-h urine volume)",
    "prednisolone_daily_dose": "prednisolone, total daily dose",
    "egfr_ckd_epi_2009": "eGFR, CKD-EPI 2009 (as reported by the laboratory, per 1.73 m²)",
    "haematological_malignancy": "haematological malignancy (1 yes, 0 no)",
    "trauma_or_head_injury": "acute trauma or head injury (1 yes, 0 no)",
    "crp": "C-reactive protein (mg/L)",
    "cyp3a4_22_carrier": "CYP3A4*22 carrier (1 yes; 0 no or not genotyped)",
    "comedication_dopamine": "dopamine infusion running (1 yes, 0 no)",
}

OUTPUT_LABELS = {
    "conc": "concentration",
    "conc_immunoassay": "concentration (immunoassay)",
    "conc_unbound": "unbound concentration",
}


def route_label(route: str) -> str:
    return ROUTE_LABELS.get(route, route.replace("_", " "))


def measurement_label(kind: str) -> str:
    return MEASUREMENT_LABELS.get(kind, kind.replace("_", " "))


def output_label(output: str) -> str:
    return OUTPUT_LABELS.get(output, output.replace("_", " "))


def is_infusion(route: str) -> bool:
    return route in INFUSION_ROUTES


def parameter_unit(name: str) -> str:
    """The unit of a model parameter named by NONMEM's conventions (CL, Q: L/h; V: L; KA: 1/h; ...).

    The engine's doses are in mg and times in h; a name outside the conventions has no unit shown.
    """
    upper = name.upper()
    if upper.startswith(("CL", "Q")):
        return "L/h"
    if upper.startswith("V") and not upper.startswith("VMAX"):
        return "L"
    if upper.startswith("VMAX"):
        return "mg/h"
    if upper.startswith("KM"):
        return "mg/L"
    if upper.startswith(("KA", "KE", "K1", "K2")) or (upper.startswith("K") and len(upper) <= 3):
        return "1/h"
    if upper.startswith(("ALAG", "TLAG", "LAG", "D1", "DUR", "MTT")):
        return "h"
    if upper.startswith(("F", "BIO")):
        return "fraction"
    return ""
