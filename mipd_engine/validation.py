"""Comparison of the engine's MAP estimates with reference estimates (NONMEM POSTHOC) per subject.

Used by the test suite and by ``benchmarks/bench_estimation.py``. For each subject it records the largest
absolute eta difference, both objective values under the engine's objective (to tell a different local
minimum from a disagreement: when the engine's objective at the reference etas is higher than at its own
estimate, the reference stopped at a worse point of the same objective), and the fit time.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .estimation import fit_map
from .model import PopulationModel, load_model
from .nonmem import read_nonmem
from .objective import Objective


@dataclass(frozen=True)
class SubjectComparison:
    id: str
    success: bool
    eta: np.ndarray
    reference_eta: np.ndarray
    max_abs_difference: float
    ofv: float  # engine objective at the engine's estimate
    ofv_at_reference: float  # engine objective at the reference etas
    seconds: float

    @property
    def agrees(self) -> bool:
        return self.max_abs_difference <= 1e-3

    @property
    def engine_better(self) -> bool:
        """The engine reached a lower objective than at the reference etas (beyond rounding, 1e-6)."""
        return self.ofv < self.ofv_at_reference - 1e-6


def read_reference(path: str | Path, n_eta: int) -> dict[str, np.ndarray]:
    """Reference etas per ID from a ``nonmem_estimates.csv`` (columns ID, ETA1..ETAn)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return {
            row["ID"].strip(): np.array([float(row[f"ETA{i + 1}"]) for i in range(n_eta)])
            for row in csv.DictReader(handle)
        }


def compare_run(folder: str | Path, *, limit: int | None = None, model: PopulationModel | None = None):
    """Fit every subject of a validation folder (model.json, data.csv, nonmem_estimates.csv)."""
    folder = Path(folder)
    model = model or load_model(folder / "model.json")
    records = read_nonmem(folder / "data.csv", model)
    reference = read_reference(folder / "nonmem_estimates.csv", model.n_eta)
    results = []
    for record in records[:limit]:
        started = time.perf_counter()
        fit = fit_map(model, record)
        seconds = time.perf_counter() - started
        ref = reference[record.id]
        objective = Objective(model, record)
        results.append(
            SubjectComparison(
                id=record.id,
                success=fit.success,
                eta=fit.eta,
                reference_eta=ref,
                max_abs_difference=float(np.max(np.abs(fit.eta - ref))),
                ofv=fit.ofv,
                ofv_at_reference=float(objective(ref)[0]),
                seconds=seconds,
            )
        )
    return model, results
