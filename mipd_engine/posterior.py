"""The full posterior of a patient's random effects, and credible bands of predicted concentrations.

``method="importance"`` (default): sampling-importance-resampling from a multivariate Student-t proposal
(4 degrees of freedom, heavier tails than the posterior) centred at the MAP estimate with the Laplace
covariance inflated by 1.5². Importance weights are exact posterior densities over proposal densities, so the
resampled draws follow the exact posterior; the effective sample size (Kish) of the weights is the quality
diagnostic. When it is below a quarter of the requested samples the proposal is widened and redrawn (up to
three times), and a warning remains if it stays low.

``method="laplace"``: draws from the Gaussian approximation N(MAP, inverse Hessian of ofv/2). Fast, exact for
linear-Gaussian problems, approximate otherwise.

Inter-occasion variability: posterior draws cover η and the κ of observed occasions; future occasions get
fresh κ drawn from N(0, Ω_iov), so forecasts include day-to-day variability instead of reusing past κ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from .estimation import MapResult, _safe
from .objective import Objective

_DF = 4.0
_INFLATION = 1.5


@dataclass(frozen=True)
class PosteriorSample:
    """Draws from a patient's posterior: θ (S, dim) = [η, κ...], with sampling diagnostics."""

    theta: np.ndarray
    method: str
    effective_sample_size: float
    n_proposals: int
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def n_samples(self) -> int:
        return int(self.theta.shape[0])


def sample_posterior(
    objective: Objective,
    fit: MapResult,
    *,
    n_samples: int,
    rng: np.random.Generator,
    method: str = "importance",
) -> PosteriorSample:
    """Draw ``n_samples`` parameter vectors from the posterior around ``fit``."""
    dim = objective.dimension
    if n_samples < 1:
        raise ValueError("n_samples must be at least 1")
    if dim == 0:
        return PosteriorSample(np.zeros((n_samples, 0)), method, float(n_samples), 0)
    if fit.prior_only:
        # No data: the posterior is the (Gaussian) prior; draw from it directly.
        draws = rng.multivariate_normal(
            np.zeros(dim),
            objective.prior_covariance() / objective.prior_weight,
            size=n_samples,
            method="cholesky",
        )
        return PosteriorSample(draws, "prior", float(n_samples), n_samples)
    covariance = fit.covariance
    if not np.all(np.isfinite(covariance)):
        raise ValueError("the fit has no usable covariance; the posterior cannot be sampled")
    if method == "laplace":
        draws = rng.multivariate_normal(fit.theta, covariance, size=n_samples, method="cholesky")
        return PosteriorSample(draws, "laplace", float(n_samples), n_samples)
    if method != "importance":
        raise ValueError(f"unknown posterior method '{method}' (importance, laplace)")
    warnings: list[str] = []
    inflation = _INFLATION
    n_proposals = max(4 * n_samples, 2000)
    attempts = 4
    for attempt in range(attempts):
        if attempt:  # a wider, larger proposal after a low effective sample size
            inflation *= 1.5
            n_proposals *= 2
        scale = covariance * inflation**2
        proposal = stats.multivariate_t(loc=fit.theta, shape=scale, df=_DF, seed=rng)
        draws = np.atleast_2d(proposal.rvs(size=n_proposals, random_state=rng)).reshape(n_proposals, dim)
        log_target = -0.5 * _safe(objective, draws)
        log_weights = log_target - proposal.logpdf(draws)
        log_weights = np.where(np.isfinite(log_weights), log_weights, -np.inf)
        log_weights -= np.max(log_weights)
        weights = np.exp(log_weights)
        weights /= weights.sum()
        ess = float(1.0 / np.sum(weights**2))
        if ess >= n_samples / 4:
            break
    else:
        warnings.append(
            f"posterior sampling: effective sample size {ess:.0f} is low for {n_samples} samples; "
            "credible intervals are imprecise"
        )
    chosen = rng.choice(n_proposals, size=n_samples, replace=True, p=weights)
    return PosteriorSample(draws[chosen], "importance", ess, n_proposals, tuple(warnings))


@dataclass(frozen=True)
class Band:
    """Quantiles of predicted concentrations over time, per output."""

    times_h: np.ndarray
    quantiles: dict[float, dict[str, np.ndarray]]  # q -> output -> (T,)
    kind: str  # "credible" (parameter uncertainty) or "prediction" (adds residual error)


def predictive_draws(
    objective: Objective,
    theta: np.ndarray,
    times_h: np.ndarray,
    *,
    rng: np.random.Generator | None = None,
    outputs: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Predicted outputs (S, T) for parameter draws θ (S, dim); future occasions get fresh κ from Ω_iov."""
    eta, kappa = objective.split(theta)
    model = objective.model
    if kappa is not None and objective.n_occasions_estimated < kappa.shape[1]:
        if rng is None:
            raise ValueError("an rng is needed to draw inter-occasion effects of future occasions")
        n_future = kappa.shape[1] - objective.n_occasions_estimated
        fresh = rng.multivariate_normal(
            np.zeros(model.n_kappa), model.iov_omega, size=(theta.shape[0], n_future), method="cholesky"
        )
        kappa = kappa.copy()
        kappa[:, objective.n_occasions_estimated :, :] = fresh
    prediction = objective.simulator.predict(times_h, eta, kappa, outputs)
    return prediction.outputs


def credible_band(
    objective: Objective,
    sample: PosteriorSample,
    times_h: Sequence[float] | np.ndarray,
    *,
    quantiles: Sequence[float] = (0.05, 0.5, 0.95),
    rng: np.random.Generator | None = None,
    prediction_interval: bool = False,
) -> Band:
    """Quantiles of the predicted concentration-time curve over the posterior draws.

    With ``prediction_interval=True`` residual error is added to each draw, giving a prediction interval for
    a future measured level (labelled as such) rather than a credible band of the true concentration.
    """
    times = np.asarray(times_h, dtype=float)
    draws = predictive_draws(objective, sample.theta, times, rng=rng)
    if prediction_interval:
        if rng is None:
            raise ValueError("an rng is needed for a prediction interval")
        for name, values in draws.items():
            error = objective.model.outputs[name].error
            if error.model == "exponential":
                draws[name] = values * np.exp(rng.normal(0.0, error.additive, size=values.shape))
            else:
                sd = np.sqrt(error.variance(values))
                sd = np.where(values == 0.0, 0.0, sd)
                draws[name] = np.maximum(values + rng.normal(size=values.shape) * sd, 0.0)
    qs = [float(q) for q in quantiles]
    for q in qs:
        if not 0 < q < 1:
            raise ValueError(f"quantile {q} must lie in (0, 1)")
    # All quantiles of an output from one sort of the draws.
    per_output = {name: quantiles_over_draws(values, qs) for name, values in draws.items()}
    result = {q: {name: per_output[name][i] for name in draws} for i, q in enumerate(qs)}
    return Band(times, result, "prediction" if prediction_interval else "credible")


def quantiles_over_draws(values: np.ndarray, quantiles: Sequence[float]) -> np.ndarray:
    """``np.quantile(values, quantiles, axis=0)`` (Q, ...) for draws along the first axis, the same numbers.

    Each column's draws are sorted first, contiguously: numpy's vectorised sort and a selection on sorted
    data take about half the time of the selection along a strided axis on unsorted draws (a posterior band
    of 2000 draws at 400 times: 8 ms instead of 20 ms); the order statistics, and so the interpolated
    quantiles, are the same.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim < 2:
        return np.quantile(values, quantiles, axis=0)
    columns = np.sort(np.moveaxis(values, 0, -1), axis=-1)  # a contiguous copy, each column's draws sorted
    return np.quantile(columns, quantiles, axis=-1)


def shrinkage(fit: MapResult, model_omega: np.ndarray) -> np.ndarray:
    """Per-eta shrinkage of one patient's estimate: posterior variance / prior variance.

    1 means the levels told nothing about that eta (the estimate stays at the population value); values near
    0 mean the levels determine it. (Population eta-shrinkage, 1 − SD(EBEs)/ω, is a different statistic.)
    """
    return np.diag(fit.eta_covariance) / np.diag(model_omega)
