"""Is a new drug level plausible for this patient? Its score against the posterior predictive distribution.

Before a new level enters the fit it is compared with what the patient's own model expects at that time from
the data before it: the posterior of the earlier levels (the prior, given the covariates, when there is none),
carried to the level's time, with the assay's residual error. The predictive distribution is the mixture over
posterior draws s of the residual-error distribution around the predicted concentration f_s (normal with the
output's variance, or log-normal for the exponential error model), so its CDF and density are exact averages
over the draws; quantiles are found by root finding on that CDF.

A level is **held** (stored, shown, left out of the fit until a clinician confirms it or marks it in error):

* when it lies outside the central 99.9 % predictive interval (:data:`HOLD_INTERVAL`); or
* when it lies outside the central 95 % interval and another reading of the same number (a unit slip:
  ×1000, ÷1000, mass versus molar units) is a typical value (inside the central 90 % interval) and is at least
  :data:`SLIP_BAYES_FACTOR` times more likely (a Bayes factor of 100, "decisive" on Jeffreys' scale, with the
  Jacobian of the unit change, see :func:`_best_reading`); or
* for a result reported below the LLOQ, when the model gives less than 0.05 % probability to a concentration
  below the LLOQ.

A level drawn from the model's own predictive distribution is held about 0.1 % of the time (the tests check
the rate and the uniformity of the predictive quantile).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import brentq
from scipy.special import logsumexp, ndtr

from .estimation import fit_map
from .events import Observation, PatientRecord
from .model import ErrorModel, PopulationModel
from .objective import Objective
from .posterior import predictive_draws, sample_posterior

HOLD_INTERVAL = 0.999
SLIP_INTERVAL = 0.95  # a unit slip is considered for a level outside this central interval...
READING_INTERVAL = 0.90  # ... when the other reading is a typical value, inside this one
SLIP_BAYES_FACTOR = 100.0
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


@dataclass(frozen=True)
class Reading:
    """Another reading of the number as entered, e.g. the same number in mg/L instead of ng/mL."""

    label: str
    value: float  # in the model output's unit


class PredictiveDistribution:
    """The predictive distribution of one measured level: residual error around each posterior draw."""

    def __init__(self, predictions: np.ndarray, error: ErrorModel) -> None:
        self.f = np.asarray(predictions, dtype=float).ravel()
        self.error = error
        self.log_scale = error.model == "exponential"
        if self.log_scale:
            self.sd = np.full_like(self.f, error.additive)
            self.center = np.log(np.maximum(self.f, 1e-300))
        else:
            self.sd = np.sqrt(error.variance(self.f))
            self.center = self.f

    def _z(self, values: np.ndarray) -> np.ndarray:
        values = np.atleast_1d(np.asarray(values, dtype=float))
        if self.log_scale:
            values = np.log(np.maximum(values, 1e-300))
        return (values[:, None] - self.center[None, :]) / self.sd[None, :]

    def cdf(self, values: Sequence[float] | np.ndarray) -> np.ndarray:
        """P(level <= value) for each value."""
        return ndtr(self._z(np.asarray(values))).mean(axis=1)

    def logpdf(self, values: Sequence[float] | np.ndarray) -> np.ndarray:
        """log density at each value (per unit of the output, also on the log-normal scale)."""
        values = np.atleast_1d(np.asarray(values, dtype=float))
        z = self._z(values)
        log_each = -0.5 * z**2 - _LOG_SQRT_2PI - np.log(self.sd)[None, :]
        if self.log_scale:
            log_each = log_each - np.log(np.maximum(values, 1e-300))[:, None]
        return logsumexp(log_each, axis=1) - math.log(self.f.size)

    def quantile(self, q: float) -> float:
        """The value below which the level lies with probability ``q``."""
        if self.log_scale:
            low = float(np.min(self.center - 12 * self.sd))
            high = float(np.max(self.center + 12 * self.sd))
            return math.exp(brentq(lambda x: float(self.cdf([math.exp(x)])[0]) - q, low, high, xtol=1e-12))
        low = float(np.min(self.center - 12 * self.sd))
        high = float(np.max(self.center + 12 * self.sd))
        return brentq(lambda x: float(self.cdf([x])[0]) - q, low, high, xtol=1e-12 * max(1.0, abs(high)))

    def interval(self, coverage: float) -> tuple[float, float]:
        tail = (1.0 - coverage) / 2.0
        return self.quantile(tail), self.quantile(1.0 - tail)


@dataclass(frozen=True)
class PlausibilityScore:
    """How a level compares with its predictive distribution, and whether it is held."""

    success: bool
    message: str
    held: bool
    reason: str
    basis: str  # "posterior" (earlier levels) or "prior" (covariates only)
    output: str
    time_h: float
    value: float | None
    lloq: float | None
    quantile: float | None  # predictive CDF at the value (below the LLOQ: P(concentration < LLOQ))
    median: float | None = None
    interval_50: tuple[float, float] | None = None  # the central 50 % interval (model performance)
    interval_90: tuple[float, float] | None = None
    interval_999: tuple[float, float] | None = None
    unit_slip: Reading | None = None
    bayes_factor: float | None = None
    n_draws: int = 0
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "message": self.message,
            "held": self.held,
            "reason": self.reason,
            "basis": self.basis,
            "output": self.output,
            "time_h": self.time_h,
            "value": self.value,
            "lloq": self.lloq,
            "quantile": self.quantile,
            "median": self.median,
            "interval_50": list(self.interval_50) if self.interval_50 else None,
            "interval_90": list(self.interval_90) if self.interval_90 else None,
            "interval_999": list(self.interval_999) if self.interval_999 else None,
            "unit_slip": {"label": self.unit_slip.label, "value": self.unit_slip.value}
            if self.unit_slip
            else None,
            "bayes_factor": self.bayes_factor,
            "n_draws": self.n_draws,
            "warnings": list(self.warnings),
        }


def _shown(value: float) -> str:
    return f"{value:.3g}"


def judge(
    predictive: PredictiveDistribution,
    *,
    value: float | None,
    lloq: float | None,
    unit: str,
    readings: Sequence[Reading] = (),
) -> tuple[bool, str, float | None, Reading | None, float | None]:
    """(held, reason, quantile, unit slip, Bayes factor) for one level against ``predictive``."""
    hold_tail = (1.0 - HOLD_INTERVAL) / 2.0
    slip_tail = (1.0 - SLIP_INTERVAL) / 2.0
    reading_tail = (1.0 - READING_INTERVAL) / 2.0
    if value is None:
        assert lloq is not None
        below = float(predictive.cdf([lloq])[0])
        if below < hold_tail:
            return (
                True,
                f"a result below the LLOQ ({_shown(lloq)} {unit}) is implausible here: the model gives it a "
                f"{below * 100:.2g} % chance (median expected {_shown(predictive.quantile(0.5))} {unit})",
                below,
                None,
                None,
            )
        return False, "", below, None, None
    quantile = float(predictive.cdf([value])[0])
    if quantile < hold_tail or quantile > 1.0 - hold_tail:
        side = "below" if quantile < 0.5 else "above"
        low, high = predictive.interval(HOLD_INTERVAL)
        reason = (
            f"{_shown(value)} {unit} lies far {side} what the model expects "
            f"(99.9 % interval {_shown(max(low, 0.0))} to {_shown(high)} {unit})"
        )
        slip, factor = _best_reading(predictive, value, readings, reading_tail)
        if slip is not None and factor is not None and factor >= SLIP_BAYES_FACTOR:
            reason += f"; it fits {slip.label} much better"
        else:
            slip, factor = None, None
        return True, reason, quantile, slip, factor
    if quantile < slip_tail or quantile > 1.0 - slip_tail:
        slip, factor = _best_reading(predictive, value, readings, reading_tail)
        if slip is not None and factor is not None and factor >= SLIP_BAYES_FACTOR:
            reason = (
                f"{_shown(value)} {unit} fits a unit slip much better: {slip.label} is {factor:.3g} times "
                "more "
                "likely"
            )
            return True, reason, quantile, slip, factor
    return False, "", quantile, None, None


def _best_reading(
    predictive: PredictiveDistribution, value: float, readings: Sequence[Reading], tail: float
) -> tuple[Reading | None, float | None]:
    """The most likely other reading that lies inside the central interval, with its Bayes factor.

    If the true level is x = k·v (the number v was entered in a unit k times too large), the density of the
    entered number is k·p(k·v): the Bayes factor of the slip against the entry as given is k·p(k·v) / p(v).
    The factor k matters: a number entered 1000 times too small (18 for 18 000) is evidence for a slip, while
    reading a high value as 1000 times smaller always lands near zero, where a wide predictive distribution
    has density too, and is penalised accordingly.
    """
    if value <= 0:
        return None, None
    candidates = [r for r in readings if r.value > 0 and tail <= predictive.cdf([r.value])[0] <= 1 - tail]
    if not candidates:
        return None, None
    log_value = float(predictive.logpdf([value])[0])
    log_readings = predictive.logpdf([r.value for r in candidates]) + np.log(
        [r.value / value for r in candidates]
    )
    best = int(np.argmax(log_readings))
    factor = float(np.exp(min(log_readings[best] - log_value, 700.0)))
    return candidates[best], factor


def score_level(
    model: PopulationModel,
    record: PatientRecord,
    observation: Observation,
    *,
    rng: np.random.Generator,
    unit: str = "",
    readings: Sequence[Reading] = (),
    n_samples: int = 2000,
) -> PlausibilityScore:
    """Score ``observation`` against the predictive distribution from ``record`` (the data before it).

    ``record`` holds the doses, covariates and the levels already accepted; ``observation`` is not in it.
    ``readings`` are other readings of the entered number (unit slips), in the model output's unit.
    """
    output = observation.output or model.default_output
    base = {
        "output": output,
        "time_h": observation.time_h,
        "value": observation.value,
        "lloq": observation.lloq,
    }
    objective = Objective(model, record)
    fit = fit_map(model, record, objective=objective)
    basis = "posterior" if record.observations else "prior"
    if not fit.success:
        return PlausibilityScore(
            False,
            f"the earlier data could not be fitted ({fit.message}); the level could not be checked",
            False,
            "",
            basis,
            quantile=None,
            **base,
        )
    sample = sample_posterior(objective, fit, n_samples=n_samples, rng=rng)
    draws = predictive_draws(
        objective, sample.theta, np.array([observation.time_h]), rng=rng, outputs=[output]
    )
    predictive = PredictiveDistribution(draws[output][:, 0], model.outputs[output].error)
    held, reason, quantile, slip, factor = judge(
        predictive, value=observation.value, lloq=observation.lloq, unit=unit, readings=readings
    )
    return PlausibilityScore(
        True,
        "",
        held,
        reason,
        basis,
        quantile=quantile,
        median=predictive.quantile(0.5),
        interval_50=predictive.interval(0.50),
        interval_90=predictive.interval(0.90),
        interval_999=predictive.interval(HOLD_INTERVAL),
        unit_slip=slip,
        bayes_factor=factor,
        n_draws=sample.n_samples,
        warnings=tuple(sample.warnings),
        **base,
    )
