"""Test documents: a small one-compartment model whose reference values are computed here in closed form."""

from __future__ import annotations

import copy
import math
from typing import Any

CL_L_PER_H = 4.0
V_L = 50.0
DOSE_MG = 1000.0


def bolus_concentration_mg_per_l(t_h: float) -> float:
    """C(t) = D / V · exp(-CL/V · t): the textbook one-compartment IV bolus."""
    return DOSE_MG / V_L * math.exp(-CL_L_PER_H / V_L * t_h)


def model_document(model_id: str = "testdrug-1cmt") -> dict[str, Any]:
    return {
        "format": "mipd-model/1",
        "id": model_id,
        "drug": "testdrug",
        "title": "Test drug, one compartment",
        "citation": {"text": "Test A. A model for tests. J Tests 2020;1:1-2", "doi": "10.0000/test"},
        "structure": {"preset": "1cmt"},
        "thetas": {"TVCL": CL_L_PER_H, "TVV": V_L},
        "covariates": {"WT": {"unit": "kg", "min": 40, "max": 120, "reference": 70}},
        "parameters": {"CL": "TVCL * (WT/70)**0.75 * exp(ETA_CL)", "V": "TVV * (WT/70) * exp(ETA_V)"},
        "omega": {"etas": ["ETA_CL", "ETA_V"], "type": "variance", "matrix": [[0.09, 0], [0, 0.04]]},
        "outputs": {
            "conc": {
                "compartment": "central",
                "volume": "V",
                "unit": "mg/L",
                "error": {"model": "proportional", "proportional": 0.1},
            }
        },
        "population": {"n": 120, "age_years": [18, 80], "weight_kg": [40, 120], "setting": "test ward"},
        "domain": {
            "source": "the test population (made for tests)",
            "hard": {"age_years": [18, None], "weight_kg": [30, 150]},
            "soft": {"age_years": [18, 80], "weight_kg": [40, 120]},
        },
    }


def reference_checks(*, expected_at_6_h: float | None = None) -> list[dict[str, Any]]:
    return [
        {
            "description": "typical CL at 70 kg",
            "source": "the model's theta",
            "covariates": {"WT": 70},
            "doses": [],
            "quantity": "parameter",
            "parameter": "CL",
            "expected": CL_L_PER_H,
            "unit": "L/h",
            "rel_tol": 1e-6,
        },
        {
            "description": "concentration 6 h after a 1000 mg bolus",
            "source": "closed-form one-compartment bolus",
            "covariates": {"WT": 70},
            "doses": [{"time_h": 0, "amount_mg": DOSE_MG, "route": "iv_bolus"}],
            "quantity": "concentration",
            "time_h": 6,
            "expected": bolus_concentration_mg_per_l(6.0) if expected_at_6_h is None else expected_at_6_h,
            "unit": "mg/L",
            "rel_tol": 1e-6,
        },
    ]


def library_entry(**overrides: Any) -> dict[str, Any]:
    entry = {
        "library_format": "mipd-library/1",
        "version": "1.0.0",
        "model": model_document(),
        "model_card": {"limitations": ["made for tests"], "covariate_conventions": ["WT: total body weight"]},
        "reference_checks": reference_checks(),
        "transcription": {"notes": "test"},
        "covariate_sources": {"WT": {"from": "weight"}},
    }
    entry.update(overrides)
    return copy.deepcopy(entry)
