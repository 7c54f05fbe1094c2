"""Regimen search: wall time of one full search over 2,000 posterior draws.

A two-compartment IV patient (IIV on CL, V1, V2; two levels) is fitted and 2,000 posterior draws are taken
(importance resampling). Then ``search_regimens`` ranks 3 intervals (8, 12, 24 h) × 20 doses (250 to 5,000
mg) for several targets and infusion rules. Prints the best and median of ``--repeats`` timed searches
(``time.perf_counter``), the number of simulations of all draws each search needed, and the best regimen.

    python benchmarks/bench_recommendation.py [--draws 2000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mipd_engine.estimation import fit_map
from mipd_engine.events import Dose, Observation, PatientRecord
from mipd_engine.model import parse_model
from mipd_engine.objective import Objective
from mipd_engine.posterior import sample_posterior
from mipd_engine.regimens import RegimenConstraints, search_regimens
from mipd_engine.targets import Target

MODEL = {
    "format": "mipd-model/1",
    "id": "bench-2cmt-iv",
    "structure": {"preset": "2cmt"},
    "thetas": {"TVCL": 4.0, "TVV1": 30.0, "TVQ": 5.0, "TVV2": 40.0},
    "covariates": {
        "WT": {"unit": "kg", "min": 30, "max": 180},
        "CRCL": {"unit": "mL/min", "min": 5, "max": 150},
    },
    "parameters": {
        "CL": "TVCL * (CRCL/100)**0.75 * exp(ETA_CL)",
        "V1": "TVV1 * (WT/70) * exp(ETA_V1)",
        "Q": "TVQ",
        "V2": "TVV2 * exp(ETA_V2)",
    },
    "omega": {
        "etas": ["ETA_CL", "ETA_V1", "ETA_V2"],
        "type": "variance",
        "matrix": [[0.1, 0.02, 0], [0.02, 0.2, 0], [0, 0, 0.3]],
    },
    "outputs": {
        "conc": {
            "compartment": "central",
            "volume": "V1",
            "unit": "mg/L",
            "error": {"model": "combined", "additive": 1.0, "proportional": 0.15},
        }
    },
}

INTERVALS = (8.0, 12.0, 24.0)
START_H = 48.0


def _constraints(rule: str, **extra) -> RegimenConstraints:
    duration = (
        {"infusion_duration_h": 1.0}
        if rule == "fixed 1 h"
        else {
            "max_infusion_rate_mg_per_h": 1000.0,
            "min_infusion_duration_h": 1.0,
        }
    )
    return RegimenConstraints(
        interval_options_h=INTERVALS,
        dose_step_mg=250.0,
        max_dose_mg=5000.0,
        start_h=START_H,
        **duration,
        **extra,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    model = parse_model(MODEL)
    record = PatientRecord(
        covariates={"WT": 82, "CRCL": 64},
        doses=(Dose(0.0, 1500.0, route="iv_infusion", duration_h=1.5, interval_h=12.0, additional=3),),
        observations=(Observation(11.5, 9.8), Observation(35.5, 14.2)),
    )
    objective = Objective(model, record)
    fit = fit_map(model, record, objective=objective)
    sample = sample_posterior(objective, fit, n_samples=args.draws, rng=np.random.default_rng(1))
    cases = [
        ("AUC24 400-600 (steady state)", Target("auc24", 400, 600), "fixed 1 h", {}),
        ("AUC24 400-600 (steady state)", Target("auc24", 400, 600), "max 1000 mg/h", {}),
        ("trough 10-20 mg/L", Target("trough", 10, 20), "max 1000 mg/h", {}),
        ("fT>MIC >= 60 % (MIC 2)", Target("ft_above_mic", 0.6, 1.0, mic_mg_per_l=2.0), "fixed 1 h", {}),
        (
            "AUC 0-24 h of the regimen",
            Target("auc_window", 400, 600, window_h=(0.0, 24.0)),
            "fixed 1 h",
            {"loading_dose_options_mg": (2000.0,), "max_loading_dose_mg": 2000.0},
        ),
    ]
    print(
        f"{args.draws} posterior draws (ESS {sample.effective_sample_size:.0f}); "
        f"{len(INTERVALS)} intervals x 20 doses; {args.repeats} repeats"
    )
    print(
        f"{'target':32} {'infusion rule':14} {'cands':>5} {'sims':>4} {'best ms':>8} {'median ms':>10}"
        "  best regimen"
    )
    for label, target, rule, extra in cases:
        constraints = _constraints(rule, **extra)
        timings = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            result = search_regimens(
                model=model,
                record=record,
                posterior_theta=sample.theta,
                objective=objective,
                target=target,
                constraints=constraints,
                rng=np.random.default_rng(2),
            )
            timings.append(time.perf_counter() - t0)
        ms = np.array(timings) * 1000
        print(
            f"{label:32} {rule:14} {result.n_candidates:5d} {result.n_simulations:4d} {ms.min():8.1f} "
            f"{np.median(ms):10.1f}  {result.regimens[0].rationale}",
            flush=True,
        )


if __name__ == "__main__":
    main()
