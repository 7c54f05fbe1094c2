"""Prediction-error statistics of a set of prospectively scored levels: bias, imprecision and calibration.

Pure numpy/scipy (no Django): the inputs are plain arrays of one subgroup's scores.

* prediction error ``e = observed - predicted median`` (in the model output's unit) and relative error
  ``e / predicted median``;
* bias: mean and median prediction error, mean and median relative error;
* imprecision: RMSE of the prediction error and MAPE (mean absolute relative error, in %);
* calibration: the fraction of levels inside the central 50 % and 90 % prediction intervals, and the PIT
  histogram (the level's quantile in its predictive distribution; uniform when the model is calibrated).

Uncertainty (95 % intervals):

* means, RMSE and MAPE: percentile bootstrap, :data:`BOOTSTRAP_RESAMPLES` resamples from a generator seeded
  with :data:`BOOTSTRAP_SEED` (the same scores give the same interval, to the byte), up to
  :data:`BOOTSTRAP_MAX_N` levels; above that the normal (central-limit) interval, with the delta method for
  RMSE: at such sizes the two agree within the bootstrap's own Monte Carlo error, and resampling 100,000
  levels a thousand times per subgroup would take minutes (the method is named with each figure);
* medians: the exact distribution-free interval from the binomial distribution of the order statistics
  (the r-th and s-th order statistics with P(r <= B < s) >= 95 %, B ~ Binomial(n, 1/2));
* coverage and each PIT bin's fraction: exact Clopper-Pearson binomial intervals.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import beta, binom

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 20_170_117  # fixed: same scores, same intervals
BOOTSTRAP_CHUNK = 50_000_000  # resampled values held at once (memory bound of about 400 MB of float64)
PIT_BINS = 10
BOOTSTRAP_MAX_N = 5000
_Z = 1.959963984540054  # the standard normal's 97.5 % quantile


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95 % interval (None when there are too few values to give one)."""

    value: float | None
    low: float | None
    high: float | None
    method: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Performance:
    n_levels: int
    mean_error: Estimate
    median_error: Estimate
    mean_relative_error_pct: Estimate
    median_relative_error_pct: Estimate
    rmse: Estimate
    mape_pct: Estimate
    coverage_50: Estimate
    coverage_90: Estimate
    pit_counts: tuple[int, ...]
    pit_fractions: tuple[Estimate, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "n_levels": self.n_levels,
            "mean_error": self.mean_error.as_dict(),
            "median_error": self.median_error.as_dict(),
            "mean_relative_error_pct": self.mean_relative_error_pct.as_dict(),
            "median_relative_error_pct": self.median_relative_error_pct.as_dict(),
            "rmse": self.rmse.as_dict(),
            "mape_pct": self.mape_pct.as_dict(),
            "coverage_50": self.coverage_50.as_dict(),
            "coverage_90": self.coverage_90.as_dict(),
            "pit_counts": list(self.pit_counts),
            "pit_fractions": [e.as_dict() for e in self.pit_fractions],
        }


def clopper_pearson(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Exact binomial interval for k successes in n trials."""
    if n <= 0:
        raise ValueError("n must be positive")
    alpha = 1.0 - confidence
    low = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return low, high


def proportion(hits: np.ndarray) -> Estimate:
    n = int(hits.size)
    if n == 0:
        return Estimate(None, None, None, "exact binomial (Clopper-Pearson)")
    k = int(np.count_nonzero(hits))
    low, high = clopper_pearson(k, n)
    return Estimate(k / n, low, high, "exact binomial (Clopper-Pearson)")


def median_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> Estimate:
    """The median with its exact order-statistic interval (needs n >= 6 for 95 %)."""
    method = "exact order-statistic interval (binomial)"
    n = int(values.size)
    if n == 0:
        return Estimate(None, None, None, method)
    ordered = np.sort(values)
    median = float(np.median(ordered))
    # the largest r with P(B <= r - 1) <= alpha/2: [x_(r), x_(n+1-r)] (1-based) covers the median with
    # probability 1 - 2 P(B <= r - 1) >= 95 %
    tail = (1.0 - confidence) / 2.0
    k = int(binom.ppf(tail, n, 0.5))  # the smallest k with P(B <= k) >= tail
    r = k if binom.cdf(k, n, 0.5) > tail else k + 1  # so that P(B <= r - 1) <= tail
    if r < 1:
        return Estimate(median, None, None, method)
    return Estimate(median, float(ordered[r - 1]), float(ordered[n - r]), method)


def _bootstrap(columns: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Resampled statistics: each row of indices resamples all the columns together (paired)."""
    n = next(iter(columns.values())).size
    per_chunk = max(1, BOOTSTRAP_CHUNK // max(n, 1))
    out: dict[str, list[np.ndarray]] = {"mean_error": [], "mean_rel": [], "rmse": [], "mape": []}
    error, relative = columns["error"], columns["relative"]
    done = 0
    while done < BOOTSTRAP_RESAMPLES:
        size = min(per_chunk, BOOTSTRAP_RESAMPLES - done)
        index = rng.integers(0, n, size=(size, n))
        e = error[index]
        r = relative[index]
        out["mean_error"].append(e.mean(axis=1))
        out["rmse"].append(np.sqrt((e * e).mean(axis=1)))
        out["mean_rel"].append(r.mean(axis=1))
        out["mape"].append(np.abs(r).mean(axis=1))
        done += size
    return {key: np.concatenate(parts) for key, parts in out.items()}


def _percentile(value: float, resampled: np.ndarray, scale: float = 1.0) -> Estimate:
    tail = (1.0 - CONFIDENCE) / 2.0 * 100.0
    low, high = np.percentile(resampled, [tail, 100.0 - tail])
    return Estimate(value * scale, float(low) * scale, float(high) * scale, "percentile bootstrap")


def performance(
    *,
    observed: np.ndarray,
    median: np.ndarray,
    pi50: np.ndarray,
    pi90: np.ndarray,
    pit: np.ndarray,
    seed: int = BOOTSTRAP_SEED,
) -> Performance:
    """Statistics of n scored levels.

    Parameters
    ----------
    observed, median : (n,) arrays, in the model output's unit; ``median`` > 0.
    pi50, pi90 : (n, 2) arrays, the central 50 % and 90 % prediction intervals.
    pit : (n,) array in [0, 1], the observed level's quantile in its predictive distribution.
    """
    observed = np.asarray(observed, dtype=float)
    median = np.asarray(median, dtype=float)
    n = int(observed.size)
    error = observed - median
    relative = error / median
    pi50 = np.asarray(pi50, dtype=float).reshape(n, 2)
    pi90 = np.asarray(pi90, dtype=float).reshape(n, 2)
    pit = np.asarray(pit, dtype=float)
    counts = np.bincount(np.minimum((pit * PIT_BINS).astype(int), PIT_BINS - 1), minlength=PIT_BINS)
    fractions = tuple(
        proportion(np.arange(n) < c) if n else Estimate(None, None, None, "exact binomial (Clopper-Pearson)")
        for c in counts
    )
    coverage_50 = proportion((observed >= pi50[:, 0]) & (observed <= pi50[:, 1]))
    coverage_90 = proportion((observed >= pi90[:, 0]) & (observed <= pi90[:, 1]))
    none = Estimate(None, None, None, "percentile bootstrap")
    if n > BOOTSTRAP_MAX_N:
        return Performance(
            n_levels=n,
            mean_error=_normal(error),
            median_error=median_interval(error),
            mean_relative_error_pct=_scaled(_normal(relative), 100.0),
            median_relative_error_pct=_scaled(median_interval(relative), 100.0),
            rmse=_normal_rmse(error),
            mape_pct=_scaled(_normal(np.abs(relative)), 100.0),
            coverage_50=coverage_50,
            coverage_90=coverage_90,
            pit_counts=tuple(int(c) for c in counts),
            pit_fractions=fractions,
        )
    if n == 0:
        return Performance(
            0,
            none,
            median_interval(error),
            none,
            median_interval(relative),
            none,
            none,
            coverage_50,
            coverage_90,
            tuple(int(c) for c in counts),
            fractions,
        )
    resampled = _bootstrap({"error": error, "relative": relative}, np.random.default_rng(seed))
    return Performance(
        n_levels=n,
        mean_error=_percentile(float(error.mean()), resampled["mean_error"]),
        median_error=median_interval(error),
        mean_relative_error_pct=_percentile(float(relative.mean()), resampled["mean_rel"], 100.0),
        median_relative_error_pct=_scaled(median_interval(relative), 100.0),
        rmse=_percentile(math.sqrt(float((error * error).mean())), resampled["rmse"]),
        mape_pct=_percentile(float(np.abs(relative).mean()), resampled["mape"], 100.0),
        coverage_50=coverage_50,
        coverage_90=coverage_90,
        pit_counts=tuple(int(c) for c in counts),
        pit_fractions=fractions,
    )


def _scaled(estimate: Estimate, scale: float) -> Estimate:
    def times(x: float | None) -> float | None:
        return None if x is None else x * scale

    return Estimate(times(estimate.value), times(estimate.low), times(estimate.high), estimate.method)


def _normal(values: np.ndarray) -> Estimate:
    mean = float(values.mean())
    half = _Z * float(values.std(ddof=1)) / math.sqrt(values.size)
    return Estimate(mean, mean - half, mean + half, f"normal approximation (n > {BOOTSTRAP_MAX_N})")


def _normal_rmse(error: np.ndarray) -> Estimate:
    """sqrt(mean e²) with the delta method: SE = SE(mean e²) / (2 RMSE)."""
    squared = error * error
    rmse = math.sqrt(float(squared.mean()))
    if rmse == 0.0:
        return Estimate(0.0, 0.0, 0.0, f"normal approximation (n > {BOOTSTRAP_MAX_N})")
    half = _Z * float(squared.std(ddof=1)) / math.sqrt(error.size) / (2.0 * rmse)
    return Estimate(rmse, max(0.0, rmse - half), rmse + half, f"normal approximation (n > {BOOTSTRAP_MAX_N})")
