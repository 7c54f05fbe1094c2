"""Posterior sampling and credible bands: wall time per patient.

For subjects of reference models: MAP fit, 2,000 posterior draws (importance resampling), and a 5/50/95 %
band over 400 time points. Prints median and 95th percentile per step and in total, and the effective sample
size of the importance weights.

    python benchmarks/bench_posterior.py [--subjects N]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from mipd_engine.estimation import fit_map
from mipd_engine.model import load_model
from mipd_engine.nonmem import read_nonmem
from mipd_engine.objective import Objective
from mipd_engine.posterior import credible_band, sample_posterior

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "nonmem-validation"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subjects", type=int, default=30)
    args = parser.parse_args()
    header = f"{'model':8} {'fit ms':>8} {'sample ms':>10} {'band ms':>8} {'total ms median / p95':>22}"
    print(f"{header} {'ESS':>7}")
    for run in ("run001", "run102", "run901", "run401"):
        model = load_model(REFERENCE / run / "model.json")
        records = read_nonmem(REFERENCE / run / "data.csv", model)[: args.subjects]
        rng = np.random.default_rng(1)
        timings, ess = [], []
        for record in records:
            t0 = time.perf_counter()
            objective = Objective(model, record)
            fit = fit_map(model, record, objective=objective)
            t1 = time.perf_counter()
            sample = sample_posterior(objective, fit, n_samples=2000, rng=rng)
            t2 = time.perf_counter()
            last = max(o.time_h for o in record.observations)
            grid = np.linspace(0, last + 24, 400)
            credible_band(objective, sample, grid, quantiles=(0.05, 0.5, 0.95), rng=rng)
            t3 = time.perf_counter()
            timings.append((t1 - t0, t2 - t1, t3 - t2, t3 - t0))
            ess.append(sample.effective_sample_size)
        t = np.array(timings) * 1000
        print(
            f"{run:8} {np.median(t[:, 0]):8.1f} {np.median(t[:, 1]):10.1f} {np.median(t[:, 2]):8.1f} "
            f"{np.median(t[:, 3]):12.1f} / {np.percentile(t[:, 3], 95):8.1f} {np.median(ess):7.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
