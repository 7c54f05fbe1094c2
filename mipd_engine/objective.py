"""The MAP objective: −2 log posterior density of a patient's random effects, up to a constant.

ofv(η, κ) = Σ_obs [(y − f)²/var + ln var] + λ·(ηᵀΩ⁻¹η + Σ_occ κᵀΩ_iov⁻¹κ), with the M3 term
−2 ln Φ((LLOQ − f)/sd) for results below the limit of quantification, as NONMEM reports for a MAXEVAL=0
POSTHOC step (λ = 1; λ < 1 flattens the prior, see :mod:`mipd_engine.estimation`). The exponential error
model compares log values. Evaluations are vectorised over a batch of parameter vectors.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import log_ndtr

from .errors import InvalidInputError
from .events import PatientRecord
from .model import PopulationModel
from .simulation import PatientSimulator

_LOG_FLOOR = 1e-300


class Objective:
    """−2 log posterior of θ = [η, κ_occasion0, κ_occasion1, ...] for one patient record."""

    def __init__(self, model: PopulationModel, record: PatientRecord, *, prior_weight: float = 1.0) -> None:
        if not 0 < prior_weight <= 1:
            raise InvalidInputError("prior_weight", f"must lie in (0, 1], got {prior_weight}")
        self.model = model
        self.record = record
        self.prior_weight = prior_weight
        self.simulator = PatientSimulator(model, record)
        output_names = list(model.outputs)
        observations = record.observations
        first_dose = min((d.time_h for d in record.doses), default=math.inf)
        for i, obs in enumerate(observations):
            name = obs.output or model.default_output
            if name not in model.outputs:
                raise InvalidInputError(f"observations[{i}].output", f"unknown output '{name}'")
            if obs.time_h < first_dose:
                raise InvalidInputError(
                    f"observations[{i}].time_h",
                    f"level at {obs.time_h:g} h precedes the first dose ({first_dose:g} h)"
                    if math.isfinite(first_dose)
                    else "a level with no dose recorded",
                )
            error = obs.error or model.outputs[name].error
            if obs.value is not None and obs.value <= 0 and error.model == "exponential":
                raise InvalidInputError(
                    f"observations[{i}].value", "the exponential error model needs a positive value"
                )
        self.times_h = np.array([o.time_h for o in observations], dtype=float)
        self.output_index = np.array(
            [output_names.index(o.output or model.default_output) for o in observations], dtype=int
        )
        self.values = np.array([np.nan if o.value is None else o.value for o in observations], dtype=float)
        self.lloq = np.array([np.nan if o.lloq is None else o.lloq for o in observations], dtype=float)
        self.censored = np.array([o.value is None for o in observations], dtype=bool)
        # An observation's own error model (a monitoring device's) replaces its output's.
        self.errors = [
            obs.error or model.outputs[output_names[i]].error
            for obs, i in zip(observations, self.output_index, strict=True)
        ]
        # Per-observation error parameters (exponential error: log values, additive sd on that scale).
        self._exponential = np.array([e.model == "exponential" for e in self.errors], dtype=bool)
        self._additive_sq = np.array([e.additive**2 for e in self.errors], dtype=float)
        self._proportional = np.array(
            [e.proportional if e.model in ("proportional", "combined") else 0.0 for e in self.errors],
            dtype=float,
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            self._values_scaled = np.where(self._exponential, np.log(self.values), self.values)
            self._lloq_scaled = np.where(self._exponential, np.log(self.lloq), self.lloq)
        self.n_obs = len(observations)
        # Occasions estimated: those that start before the last observation.
        self.n_eta = model.n_eta
        self.n_kappa = model.n_kappa
        if self.n_kappa and self.n_obs:
            starts = sorted({d.time_h for d in record.doses})
            last = float(self.times_h.max())
            self.n_occasions_estimated = max(1, sum(1 for s in starts if s < last))
        else:
            self.n_occasions_estimated = 0
        self.dimension = self.n_eta + self.n_kappa * self.n_occasions_estimated
        self.omega_inv = np.linalg.inv(model.omega) if self.n_eta else np.zeros((0, 0))
        self.iov_inv = np.linalg.inv(model.iov_omega) if self.n_kappa else np.zeros((0, 0))
        self.prior_precision = self._prior_precision()
        self.n_evaluations = 0

    def _prior_precision(self) -> np.ndarray:
        blocks = [self.omega_inv] + [self.iov_inv] * self.n_occasions_estimated
        size = self.dimension
        precision = np.zeros((size, size))
        offset = 0
        for block in blocks:
            k = block.shape[0]
            precision[offset : offset + k, offset : offset + k] = block
            offset += k
        return precision

    def prior_covariance(self) -> np.ndarray:
        return np.linalg.inv(self.prior_precision) if self.dimension else np.zeros((0, 0))

    def split(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """θ (N, dim) → η (N, n_eta) and κ (N, n_occasions, n_kappa) for the simulator (future κ = 0)."""
        theta = np.atleast_2d(theta)
        eta = theta[:, : self.n_eta]
        if not self.n_kappa:
            return eta, None
        n_occ = self.simulator.n_occasions
        kappa = np.zeros((theta.shape[0], n_occ, self.n_kappa))
        estimated = theta[:, self.n_eta :].reshape(theta.shape[0], self.n_occasions_estimated, self.n_kappa)
        kappa[:, : self.n_occasions_estimated, :] = estimated[:, :n_occ, :]
        return eta, kappa

    def predictions(self, theta: np.ndarray) -> np.ndarray:
        """Predictions (N, n_obs) at the observations."""
        eta, kappa = self.split(theta)
        if not self.n_obs:
            return np.zeros((eta.shape[0], 0))
        return self.simulator.predict_at(self.times_h, self.output_index, eta, kappa)

    def data_terms(self, predictions: np.ndarray) -> np.ndarray:
        """Σ over observations of the −2 log-likelihood terms, (N,); +inf where a variance underflows."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return self._data_terms(predictions)

    def _data_terms(self, predictions: np.ndarray) -> np.ndarray:
        # All observations at once; the error parameters are per-observation arrays.
        log_scale = self._exponential[None, :]
        f = np.where(log_scale, np.log(np.maximum(predictions, _LOG_FLOOR)), predictions)
        # Proportional terms use f = 1 where the prediction is exactly 0 (NONMEM's W = F + DEL).
        f_w = np.where(predictions == 0.0, 1.0, predictions)
        var = self._additive_sq[None, :] + (self._proportional[None, :] * f_w) ** 2
        terms = np.where(
            self.censored[None, :],
            -2.0 * log_ndtr((self._lloq_scaled[None, :] - f) / np.sqrt(var)),
            (self._values_scaled[None, :] - f) ** 2 / var + np.log(var),
        )
        return terms.sum(axis=1)

    def prior_terms(self, theta: np.ndarray) -> np.ndarray:
        theta = np.atleast_2d(theta)
        return self.prior_weight * np.einsum("ni,ij,nj->n", theta, self.prior_precision, theta)

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        """ofv for a batch θ (N, dim) → (N,). Non-finite predictions give +inf."""
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        self.n_evaluations += theta.shape[0]
        # Extreme random effects (a screening point, a line search) can overflow; the value is then +inf.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            predictions = self.predictions(theta)
        value = self.data_terms(predictions) + self.prior_terms(theta)
        return np.where(np.isfinite(value), value, np.inf)
