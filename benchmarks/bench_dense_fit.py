"""Dense data: the fit and the whole engine part of a course update with a monitoring device's series.

Takes the real update documents of ``benchmarks/update_cases/`` (the model, covariates, doses, levels, target
and 2,000-draw posterior request as the worker built them) and adds N readings of a continuous monitoring
device, each with the device's own residual error (combined, additive 1.0 in the model's unit, 10 %
proportional), as ``dosing.monitoring`` stores them. The readings are simulated (seeded) from individual
parameters away from the population (η = the case's MAP η + 0.25 on each), between the first dose + 1 h and
the last level. For N = 0 (the laboratory levels only), 100, 500 and 1000 it prints the median over
``--repeat`` runs of: the MAP fit alone (``fit_map``), and the whole ``recommend_case(parse_case(doc),
forecast=True)`` that a course update runs (posterior draws, bands, regimen search, sampling advice,
forecast included); and how far each fitted η lies from the one simulated (a peripheral volume is poorly
identified even by dense data: its η stays nearer the prior).
The load average is printed: the CPU may be shared.

    python benchmarks/bench_dense_fit.py [--repeat 3] [--case vancomycin-goti-2018] [--points 0,100,500,1000]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
CASES = Path(__file__).resolve().parent / "update_cases"
sys.path.insert(0, str(REPO_ROOT))

from mipd_engine.case import parse_case  # noqa: E402
from mipd_engine.estimation import fit_map  # noqa: E402
from mipd_engine.model import ErrorModel  # noqa: E402
from mipd_engine.objective import Objective  # noqa: E402
from mipd_engine.reports import recommend_case  # noqa: E402

DEVICE_ERROR = {"model": "combined", "additive": 1.0, "proportional": 0.10}
ETA_SHIFT = 0.25


def dense_document(document: dict[str, Any], n_points: int, seed: int) -> tuple[dict[str, Any], np.ndarray]:
    """The case with ``n_points`` device readings added, and the η they were simulated from."""
    case = parse_case(document)
    fit = fit_map(case.model, case.record)
    objective = Objective(case.model, case.record)
    true_theta = np.array(fit.theta) + ETA_SHIFT * (np.arange(objective.dimension) < objective.n_eta)
    result = copy.deepcopy(document)
    if n_points == 0:
        return result, true_theta
    first_dose = min(d["time_h"] for d in document["doses"])
    last = max([o["time_h"] for o in document["observations"]] or [first_dose + 24.0])
    times = np.linspace(first_dose + 1.0, max(last, first_dose + 12.0), n_points)
    probe = parse_case({**document, "observations": [{"time_h": float(t), "value": 1.0} for t in times]})
    truth = Objective(probe.model, probe.record).predictions(true_theta[None, :])[0]
    error = ErrorModel(DEVICE_ERROR["model"], DEVICE_ERROR["additive"], DEVICE_ERROR["proportional"])
    rng = np.random.default_rng(seed)
    measured = np.maximum(truth + rng.normal(size=truth.shape) * np.sqrt(error.variance(truth)), 0.0)
    result["observations"] = document["observations"] + [
        {"time_h": float(t), "value": round(float(v), 4), "error": dict(DEVICE_ERROR)}
        for t, v in zip(times, measured, strict=True)
    ]
    return result, true_theta


def timed(function: Any, repeat: int) -> tuple[float, Any]:
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--case", action="append", help="name in benchmarks/update_cases/ (default: all)")
    parser.add_argument("--points", default="0,100,500,1000", help="comma-separated numbers of readings")
    args = parser.parse_args()
    names = args.case or sorted(p.stem for p in CASES.glob("*.json"))
    counts = [int(n) for n in args.points.split(",")]
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"device error: {json.dumps(DEVICE_ERROR)}; readings simulated at MAP η + {ETA_SHIFT}")
    print(f"{'case':28} {'readings':>8} {'MAP fit s':>10} {'update s':>9}  fitted η − simulated η")
    for name in names:
        document = json.loads((CASES / f"{name}.json").read_text())
        for n_points in counts:
            dense, true_theta = dense_document(document, n_points, seed=500 + n_points)
            case = parse_case(dense)
            fit_s, fit = timed(lambda case=case: fit_map(case.model, case.record), args.repeat)
            update_s, result = timed(
                lambda dense=dense: recommend_case(parse_case(dense), forecast=True), args.repeat
            )
            etas = case.model.eta_names
            shown = (
                ", ".join(f"{eta} {fit.theta[i] - true_theta[i]:+.3f}" for i, eta in enumerate(etas))
                if n_points
                else "(levels only)"
            )
            status = "" if fit.success and result.get("success") else f"  FAILED: {fit.message}"
            print(f"{name:28} {n_points:8d} {fit_s:10.3f} {update_s:9.3f}  {shown}{status}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
