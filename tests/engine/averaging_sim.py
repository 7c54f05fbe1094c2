"""Three published-style models of one drug and simulated patients whose truth is one of them (test data)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from mipd_engine.case import parse_case
from mipd_engine.events import PatientRecord
from mipd_engine.model import parse_model
from mipd_engine.simulation import PatientSimulator


def model(model_id: str, *, cl: float, exponent: float, v1: float) -> dict[str, Any]:
    return {
        "format": "mipd-model/1",
        "id": model_id,
        "structure": {"preset": "2cmt"},
        "thetas": {"TVCL": cl, "TVV1": v1, "TVQ": 5.0, "TVV2": 40.0},
        "covariates": {"CRCL": {"unit": "mL/min", "min": 5, "max": 150}},
        "parameters": {
            "CL": f"TVCL * (CRCL/100)**{exponent} * exp(ETA_CL)",
            "V1": "TVV1 * exp(ETA_V1)",
            "Q": "TVQ",
            "V2": "TVV2",
        },
        "omega": {"etas": ["ETA_CL", "ETA_V1"], "type": "variance", "matrix": [[0.1, 0.02], [0.02, 0.2]]},
        "outputs": {
            "conc": {
                "compartment": "central",
                "volume": "V1",
                "unit": "mg/L",
                "error": {"model": "combined", "additive": 1.0, "proportional": 0.15},
            }
        },
    }


MODELS = (
    model("avg-test-a", cl=4.0, exponent=0.75, v1=30.0),
    model("avg-test-b", cl=2.5, exponent=0.3, v1=45.0),
    model("avg-test-c", cl=6.5, exponent=1.2, v1=20.0),
)
DOSE_TIMES_H = (0.0, 12.0, 24.0, 36.0, 48.0)
LEVEL_TIMES_H = (11.5, 35.5)
HELD_OUT_H = 59.5  # the next level, before the new regimen starts at 60 h
TARGET = {
    "metric": "trough",
    "low": 10,
    "high": 15,
    "interval_options_h": [12, 24],
    "dose_step_mg": 250,
    "max_dose_mg": 3000,
    "infusion_duration_h": 1,
    "start_h": 60,
}


def doses(amount_mg: float) -> list[dict[str, Any]]:
    return [
        {"time_h": t, "amount_mg": amount_mg, "route": "iv_infusion", "duration_h": 1.0} for t in DOSE_TIMES_H
    ]


def case(
    model_document: dict[str, Any], *, crcl: float, levels: list[float], samples: int, amount_mg: float
) -> dict[str, Any]:
    return {
        "model": copy.deepcopy(model_document),
        "covariates": {"CRCL": crcl},
        "doses": doses(amount_mg),
        "observations": [{"time_h": t, "value": v} for t, v in zip(LEVEL_TIMES_H, levels, strict=True)],
        "predict": {"from_h": 0, "to_h": 96, "step_h": 0.5},
        "posterior": {"samples": samples, "seed": 11, "quantiles": [0.05, 0.5, 0.95]},
        "target": dict(TARGET),
    }


def simulated_patient(truth: int, rng: np.random.Generator, *, amount_mg: float) -> dict[str, Any]:
    """Covariate, measured levels (with the true model's residual error) and the true held-out value."""
    crcl = float(rng.uniform(30.0, 130.0))
    document = case(MODELS[truth], crcl=crcl, levels=[1.0, 1.0], samples=10, amount_mg=amount_mg)
    parsed = parse_case(document)
    pop = parse_model(MODELS[truth])
    eta = rng.multivariate_normal(np.zeros(pop.n_eta), pop.omega)
    record: PatientRecord = parsed.record
    simulator = PatientSimulator(pop, record)
    times = np.array([*LEVEL_TIMES_H, HELD_OUT_H])
    true = simulator.predict(times, eta[None, :]).outputs["conc"][0]
    error = pop.outputs["conc"].error
    sd = np.sqrt(error.variance(true[:2]))
    measured = np.maximum(true[:2] + rng.normal(size=2) * sd, 0.2)
    return {"crcl": crcl, "levels": [float(v) for v in measured], "held_out": float(true[2])}
