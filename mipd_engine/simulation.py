"""Concentration predictions for one patient record and a batch of random-effect values.

:class:`PatientSimulator` prepares a record once (doses expanded, segments cut) and then predicts outputs for
any batch of etas (and kappas) — the inner loop of estimation, and of simulation over virtual patients or
posterior samples. Linear models use the exact solver, models with saturable flows the ODE solver.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .deadline import check_deadline
from .errors import InvalidInputError
from .events import PatientRecord
from .linear_solver import simulate_linear
from .model import PopulationModel
from .ode_solver import simulate_ode
from .schedule import build_pieces, build_schedule, evaluate_segments

# Up to this many runs of consecutive times in one segment, the levels are divided run by run.
_MAX_VOLUME_RUNS = 64


@dataclass(frozen=True)
class Prediction:
    """Predicted outputs: ``outputs[name]`` has shape (N, T) for N parameter sets and T times."""

    times_h: np.ndarray
    outputs: dict[str, np.ndarray]
    units: dict[str, str]


class PatientSimulator:
    """Predictions for one patient record; reusable across many batches of random effects."""

    def __init__(self, model: PopulationModel, record: PatientRecord) -> None:
        self.model = model
        self.record = record
        self.schedule = build_schedule(model, record)
        self.n_occasions = self.schedule.n_occasions

    def _batch(
        self, eta: np.ndarray | None, kappa: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        if eta is None:
            eta = np.zeros((1, self.model.n_eta))
        eta = np.asarray(eta, dtype=float)
        if eta.ndim == 1:
            eta = eta[None, :]
        if eta.shape[1] != self.model.n_eta:
            raise InvalidInputError("eta", f"expected {self.model.n_eta} etas, got {eta.shape[1]}")
        if kappa is not None:
            kappa = np.asarray(kappa, dtype=float)
            if kappa.ndim == 2:
                kappa = kappa[None, :, :]
            kappa = np.broadcast_to(kappa, (eta.shape[0], *kappa.shape[1:]))
        return eta, kappa

    def amounts(
        self,
        times_h: np.ndarray,
        compartments: np.ndarray,
        eta: np.ndarray | None = None,
        kappa: np.ndarray | None = None,
    ) -> tuple[np.ndarray, list[dict[str, np.ndarray]]]:
        """Amounts (N, T, C) in the given compartments, and the evaluated parameters per segment."""
        check_deadline()  # every simulation passes here: fits, posterior draws, regimen search, forecast
        eta, kappa = self._batch(eta, kappa)
        values = evaluate_segments(self.model, self.schedule, eta, kappa)
        times_h = np.asarray(times_h, dtype=float)
        pieces = build_pieces(self.model, self.schedule, values, eta.shape[0])
        if times_h.size:
            pieces = pieces.administered_before(float(times_h.max()))
        solver = simulate_linear if self.model.is_linear else simulate_ode
        amounts = solver(
            self.model, self.schedule, values, pieces, times_h, np.asarray(compartments, dtype=int)
        )
        return amounts, values

    def predict(
        self,
        times_h: Sequence[float] | np.ndarray,
        eta: np.ndarray | None = None,
        kappa: np.ndarray | None = None,
        outputs: Sequence[str] | None = None,
    ) -> Prediction:
        """Every requested output at every time, for each parameter set of the batch."""
        names = list(outputs or self.model.outputs)
        for name in names:
            if name not in self.model.outputs:
                raise InvalidInputError("output", f"unknown output '{name}'")
        specs = [self.model.outputs[name] for name in names]
        times = np.asarray(times_h, dtype=float)
        compartments = np.array(sorted({spec.compartment for spec in specs}), dtype=int)
        amounts, values = self.amounts(times, compartments, eta, kappa)
        segment = self.schedule.segment_of_time(times)
        # Runs of consecutive times in one segment (a time grid: a few) divide by that segment's volumes
        # broadcast over the run: the same quotients without an (N, T) gather of the volumes.
        runs: list[tuple[int, int]] = []
        if times.size:
            starts = np.concatenate(([0], np.flatnonzero(np.diff(segment)) + 1)).tolist()
            runs = list(zip(starts, [*starts[1:], times.size], strict=True))
        result = {}
        for name, spec in zip(names, specs, strict=True):
            column = int(np.searchsorted(compartments, spec.compartment))
            volumes = np.stack([values[j][spec.volume] for j in range(len(values))], axis=1)
            if len(runs) > _MAX_VOLUME_RUNS:
                result[name] = amounts[:, :, column] / volumes[:, segment] * spec.scale
                continue
            level = np.empty(amounts.shape[:2], dtype=np.result_type(amounts, volumes))
            for lo, hi in runs:
                j = int(segment[lo])
                np.divide(amounts[:, lo:hi, column], volumes[:, j : j + 1], out=level[:, lo:hi])
            level *= spec.scale
            result[name] = level
        return Prediction(times, result, {name: spec.unit for name, spec in zip(names, specs, strict=True)})

    def predict_at(
        self,
        times_h: np.ndarray,
        output_index: np.ndarray,
        eta: np.ndarray | None = None,
        kappa: np.ndarray | None = None,
    ) -> np.ndarray:
        """Predictions (N, K) at K (time, output) pairs; ``output_index`` indexes ``model.outputs``."""
        names = list(self.model.outputs)
        used = sorted(set(int(i) for i in output_index))
        prediction = self.predict(times_h, eta, kappa, outputs=[names[i] for i in used])
        out = (
            np.empty((prediction.outputs[names[used[0]]].shape[0], len(times_h)))
            if used
            else np.empty((0, 0))
        )
        for i in used:
            mask = output_index == i
            out[:, mask] = prediction.outputs[names[i]][:, mask]
        return out


def simulate(
    model: PopulationModel,
    record: PatientRecord,
    times_h: Sequence[float] | np.ndarray,
    *,
    eta: np.ndarray | None = None,
    kappa: np.ndarray | None = None,
    outputs: Sequence[str] | None = None,
) -> Prediction:
    """Predict ``outputs`` at ``times_h`` (h) for the etas given (default: the typical patient).

    Parameters
    ----------
    eta : (n_eta,) or (N, n_eta) random effects; None means all zero.
    kappa : (n_occasions, n_kappa) or (N, n_occasions, n_kappa) inter-occasion effects; None means zero.

    Returns
    -------
    Prediction with ``outputs[name]`` of shape (N, T) in the output's unit.
    """
    return PatientSimulator(model, record).predict(times_h, eta, kappa, outputs)
