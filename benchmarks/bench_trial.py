"""In-silico trial: wall time for a virtual population (default 1,000 patients) and the strategies' figures.

A vancomycin-like one-compartment model (IIV on CL and V, IOV on CL), 1,000 mg every 12 h over 1 h, target
AUC over the third interval 200-300 mg·h/L, levels 1.5 h and 11 h after each dose.

    python benchmarks/bench_trial.py [--patients N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mipd_engine.model import parse_model
from mipd_engine.trial import STRATEGIES, TrialDesign, run_trial

MODEL = {
    "format": "mipd-model/1",
    "id": "vancomycin-like",
    "structure": {"preset": "1cmt"},
    "thetas": {"TVCL": 4.0, "TVV": 50.0},
    "parameters": {"CL": "TVCL * exp(ETA_CL + KAPPA_CL)", "V": "TVV * exp(ETA_V)"},
    "omega": {"etas": ["ETA_CL", "ETA_V"], "type": "variance", "matrix": [[0.2, 0.0], [0.0, 0.1]]},
    "iov": {"kappas": ["KAPPA_CL"], "type": "variance", "matrix": [[0.02]]},
    "outputs": {
        "conc": {
            "compartment": "central",
            "volume": "V",
            "unit": "mg/L",
            "error": {"model": "combined", "additive": 1.0, "proportional": 0.1},
        }
    },
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=1000)
    args = parser.parse_args()
    design = TrialDesign(
        standard_dose_mg=1000.0, interval_h=12.0, target_low=200.0, target_high=300.0, dose_step_mg=50.0
    )
    started = time.perf_counter()
    result = run_trial(parse_model(MODEL), design, n_patients=args.patients, rng=np.random.default_rng(1))
    seconds = time.perf_counter() - started
    per_patient_ms = 1000 * seconds / args.patients
    print(f"{args.patients} virtual patients: {seconds:.1f} s ({per_patient_ms:.0f} ms per patient)")
    print(f"{'strategy':18} {'in range':>9} {'CV':>6} {'median AUC':>11}")
    for strategy in STRATEGIES:
        s = result.summary[strategy]
        print(f"{strategy:18} {100 * s['attainment']:8.1f}% {100 * s['cv']:5.1f}% {s['median_auc']:11.1f}")


if __name__ == "__main__":
    main()
