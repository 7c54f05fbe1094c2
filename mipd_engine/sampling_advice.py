"""When to sample next: the level that is expected to narrow the target metric's uncertainty the most.

For a recommended regimen, :func:`candidate_sampling_times` lists the times a ward can actually sample at
(the trough just before a dose, a peak a set time after an infusion or dose, a random time within working
hours) and :func:`advise_sampling` computes, for each, the **expected posterior variance** of the target
metric if one level were measured then (the preposterior variance, Bayesian optimal design with a
variance criterion):

    E_y[ Var(m | data, y) ],   y ~ p(y | data) (the posterior predictive of the level at that time).

Method: importance re-weighting of the current posterior draws θ_s, s = 1..S (no refit). For each of
``n_outcomes`` hypothetical levels y_k (a draw s_k picked at random, then residual error from the output's
error model: normal with ``ErrorModel.variance(f)``, log-normal for ``"exponential"``), every draw gets the
weight p(y_k | θ_s), normalised over s; the posterior after y_k is represented by the weighted draws, and its
metric variance is the weighted variance of m_s. The average over k estimates the expected variance. The
draw that generated y_k (and its copies: resampled draws repeat) is left out of its own weights, so that the
hypothetical level is independent of the draws that judge it (leave-one-out; including it biases the
variance down by O(1/ESS)). All options share the same s_k and standard-normal residuals (common random
numbers), so that differences between options are not Monte Carlo noise in the outcomes.

Where the re-weighting is unreliable: a level far more precise than the current uncertainty leaves few
draws with weight. The Kish effective sample size (ESS) of each outcome's weights measures it; an option
whose median ESS over the outcomes is below :data:`MIN_EFFECTIVE_SAMPLE_SIZE` is marked unreliable. Its
expected variance is biased low (it looks better than it is): ranked behind a reliable option it is worse
still, so the ranking holds and a warning names it; ranked first, it could be first by error alone, so the
advice fails and says to draw more posterior samples.

Records. The level is what would really be measured at that clock time: it is predicted on the patient's
record continued with the regimen from its start (recorded administrations from the start on are replaced,
as in the forecast). The metric is the target's metric for the regimen, as the regimen search evaluates it:
steady-state metrics on the regimen given as a steady-state dose, others on the continued record.

Inter-occasion variability: each posterior draw keeps the κ of the occasions estimated from levels; later
occasions get fresh κ from Ω_iov, drawn once and shared by every option. A steady-state metric belongs to the
occasion of the regimen's maintenance doses, so it shares that occasion's κ with levels measured during
maintenance doses, while a level after a loading dose (its own occasion) tells nothing about that κ.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .errors import InvalidInputError, ParameterValueError
from .events import PatientRecord
from .model import ErrorModel, PopulationModel
from .objective import Objective
from .posterior import quantiles_over_draws
from .regimens import Regimen, extend_record, truncate_record
from .simulation import PatientSimulator
from .targets import Target, metric_plan, metric_values

SAMPLING_KINDS = ("trough", "peak", "random")
TROUGH_BEFORE_DOSE_H = 0.5  # a trough is drawn this long before the dose; no option comes closer to one
MIN_DRAWS = 200  # fewer posterior draws cannot represent a posterior after a level
MIN_EFFECTIVE_SAMPLE_SIZE = 50.0  # median ESS of an option's outcomes below this: unreliable
MEANINGFUL_REDUCTION = 0.10  # below this variance reduction a level "would not narrow it much"
_LOG_FLOOR = 1e-300
_TIME_TOL_H = 1e-9
# At most this many random times are proposed, spread evenly over the intervals (issue 14: every hour of
# working time over three 8-week intervals made ~1,700 candidates, each a simulation of every draw). Three
# intervals of up to 48 h within working hours never reach it, so their candidates are unchanged.
MAX_RANDOM_TIMES = 72


# -- the options ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SamplingOption:
    """A time at which a level could be drawn.

    ``time_h`` on the record's clock; ``kind`` one of :data:`SAMPLING_KINDS`; ``label`` in words
    ("trough before the 2nd dose"); ``local_time`` the local clock time ("07:30") when the caller gave the
    clock (working hours), else None.
    """

    time_h: float
    kind: str
    label: str
    local_time: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.time_h, bool) or not isinstance(self.time_h, int | float):
            raise InvalidInputError("option.time_h", f"expected a number, got {self.time_h!r}")
        if not math.isfinite(self.time_h):
            raise InvalidInputError("option.time_h", f"must be finite, got {self.time_h!r}")
        object.__setattr__(self, "time_h", float(self.time_h))
        if self.kind not in SAMPLING_KINDS:
            raise InvalidInputError("option.kind", f"unknown kind {self.kind!r} (one of {SAMPLING_KINDS})")

    def subject(self) -> str:
        """The option as the subject of a sentence: "A trough before the 2nd dose (at 35.5 h, 07:30)"."""
        when = f"at {_hours(self.time_h)} h" + (f", {self.local_time}" if self.local_time else "")
        if self.kind == "trough":
            return f"A {self.label} ({when})"
        if self.kind == "peak":
            return f"A level {self.label} ({when})"
        return f"A level at a {self.label} ({when})"

    def as_dict(self) -> dict[str, Any]:
        return {"time_h": self.time_h, "kind": self.kind, "label": self.label, "local_time": self.local_time}


def _ordinal(n: int) -> str:
    if 10 <= n % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _hours(value: float) -> str:
    return f"{value:.4g}"


def _clock(hour_of_day: float) -> str:
    minutes = round(hour_of_day * 60.0) % (24 * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class _Administration:
    number: int  # 1 = the regimen's first dose (the loading dose when there is one)
    time_h: float
    duration_h: float
    loading: bool


def _administrations(regimen: Regimen, n_intervals: int) -> list[_Administration]:
    """The regimen's first ``n_intervals + 1`` administrations (fewer when ``n_doses`` ends it)."""
    if regimen.continuous:
        out = []
        if regimen.loading_dose_mg is not None:
            out.append(_Administration(1, regimen.start_h, regimen.loading_duration_h, True))
        first = regimen.maintenance_start_h
        count = n_intervals + 1 if regimen.n_doses is None else min(n_intervals + 1, regimen.n_doses)
        out += [
            _Administration(len(out) + 1 + i, first + i * regimen.interval_h, regimen.interval_h, False)
            for i in range(count)
        ]
        return out
    loading = regimen.loading_dose_mg is not None
    total = math.inf if regimen.n_doses is None else regimen.n_doses + (1 if loading else 0)
    out = []
    for k in range(n_intervals + 1):
        if k >= total:
            break
        is_loading = loading and k == 0
        duration = regimen.loading_duration_h if is_loading else regimen.duration_h
        out.append(_Administration(k + 1, regimen.start_h + k * regimen.interval_h, duration, is_loading))
    return out


def _in_working_hours(hour: float, working_hours: tuple[float, float]) -> bool:
    start, end = working_hours
    eps = 1e-9
    if start <= end:
        return start - eps <= hour <= end + eps
    return hour >= start - eps or hour <= end + eps  # working hours across midnight


def candidate_sampling_times(
    regimen: Regimen,
    *,
    n_intervals: int = 3,
    peak_after_end_h: float = 1.0,
    working_hours: tuple[float, float] | None = None,
    clock_offset_h: float = 0.0,
    step_h: float = 1.0,
) -> list[SamplingOption]:
    """Practical sampling times over the regimen's first ``n_intervals`` dosing intervals, by time.

    Parameters
    ----------
    regimen : the regimen to be given (its start, interval, infusion duration, loading dose, dose count).
    n_intervals : intervals covered: a trough before each of doses 2..n_intervals+1 and a peak after each of
        doses 1..n_intervals (those the regimen gives).
    peak_after_end_h : hours after the end of an infusion (after the dose for a bolus or oral dose, where it
        must be positive) at which a peak is drawn.
    working_hours : (start, end) local hours of the day, e.g. (8, 18) (start > end spans midnight). Random
        times are proposed only then, on a ``step_h`` grid of the local clock inside them; None: no random
        times (troughs and peaks only; for a continuous infusion, the grid over the whole day).
    clock_offset_h : local clock hour of record time 0: record time t is local hour (offset + t) mod 24.
    step_h : grid step of random times, h; of the grid's times in working hours at most
        :data:`MAX_RANDOM_TIMES`, evenly spread, are proposed (a long interval gets a coarser grid).

    Rules: a trough is drawn :data:`TROUGH_BEFORE_DOSE_H` before the dose, and only once the previous
    infusion has ended (a level at its end would be a peak); a peak must come at least that long before the
    next dose; random times are never within that time of a dose start nor during an intermittent (or
    loading) infusion, and never at the time of a trough or peak. A continuous infusion has no trough or
    peak: its options are random times (after the loading infusion, if any). Labels number the regimen's
    doses from 1, the loading dose included.
    """
    if isinstance(n_intervals, bool) or not isinstance(n_intervals, int) or n_intervals < 1:
        raise InvalidInputError("n_intervals", f"must be a whole number >= 1, got {n_intervals!r}")
    for name, value in (("peak_after_end_h", peak_after_end_h), ("clock_offset_h", clock_offset_h)):
        if not math.isfinite(value):
            raise InvalidInputError(name, f"must be finite, got {value!r}")
    if peak_after_end_h < 0:
        raise InvalidInputError("peak_after_end_h", f"must not be negative, got {peak_after_end_h:g}")
    if not (math.isfinite(step_h) and step_h > 0):
        raise InvalidInputError("step_h", f"must be positive, got {step_h!r}")
    if working_hours is not None:
        if len(working_hours) != 2 or not all(math.isfinite(h) and 0 <= h <= 24 for h in working_hours):
            raise InvalidInputError(
                "working_hours", f"expected (start, end) hours in [0, 24], got {working_hours!r}"
            )
        if abs(working_hours[0] - working_hours[1]) < 1e-9:
            raise InvalidInputError("working_hours", "start and end must differ")
    if not (regimen.interval_h > 0 and math.isfinite(regimen.start_h)):
        raise InvalidInputError("regimen", "needs a positive interval and a finite start")

    def local(t: float) -> str | None:
        return None if working_hours is None else _clock((clock_offset_h + t) % 24.0)

    administrations = _administrations(regimen, n_intervals)
    starts = np.array([a.time_h for a in administrations])
    options: list[SamplingOption] = []
    if not regimen.continuous:
        for previous, dose in itertools.pairwise(administrations):
            t = dose.time_h - TROUGH_BEFORE_DOSE_H
            if t > previous.time_h + previous.duration_h + _TIME_TOL_H:  # not at an infusion's end
                options.append(
                    SamplingOption(t, "trough", f"trough before the {_ordinal(dose.number)} dose", local(t))
                )
        for i, dose in enumerate(administrations[:n_intervals]):
            infusion = dose.duration_h > 0
            if not infusion and peak_after_end_h <= 0:
                raise InvalidInputError(
                    "peak_after_end_h",
                    "a peak after a bolus or oral dose needs a positive time after the dose",
                )
            t = dose.time_h + dose.duration_h + peak_after_end_h
            next_start = dose.time_h + regimen.interval_h
            if i + 1 < len(administrations):
                next_start = administrations[i + 1].time_h
            if t > next_start - TROUGH_BEFORE_DOSE_H + _TIME_TOL_H:
                continue  # no room for a peak before the next dose
            which = "loading" if dose.loading else _ordinal(dose.number)
            if infusion:
                label = (
                    f"{_hours(peak_after_end_h)} h after the end of the {which} infusion"
                    if peak_after_end_h > 0
                    else f"at the end of the {which} infusion"
                )
            else:
                label = f"{_hours(peak_after_end_h)} h after the {which} dose"
            options.append(SamplingOption(t, "peak", label, local(t)))
    grid_hours = working_hours if working_hours is not None else ((0.0, 24.0) if regimen.continuous else None)
    if grid_hours is not None:
        first = regimen.maintenance_start_h if regimen.continuous else regimen.start_h
        end = first + n_intervals * regimen.interval_h
        # Grid on the local clock: whole multiples of step_h from local midnight.
        k0 = math.floor((regimen.start_h + clock_offset_h) / step_h)
        taken = [o.time_h for o in options]
        randoms: list[SamplingOption] = []
        k = k0
        while True:
            t = k * step_h - clock_offset_h
            k += 1
            if t > end + _TIME_TOL_H:
                break
            if t <= regimen.start_h + _TIME_TOL_H:
                continue
            if not _in_working_hours((clock_offset_h + t) % 24.0, grid_hours):
                continue
            if starts.size and np.min(np.abs(starts - t)) < TROUGH_BEFORE_DOSE_H - _TIME_TOL_H:
                continue
            during_infusion = any(
                a.time_h < t < a.time_h + a.duration_h - _TIME_TOL_H
                for a in administrations
                if a.loading or not regimen.continuous
            )
            if during_infusion or any(abs(t - s) < _TIME_TOL_H for s in taken):
                continue
            randoms.append(SamplingOption(t, "random", "random time", local(t)))
        if len(randoms) > MAX_RANDOM_TIMES:  # evenly spread, first and last kept: bounded work for any span
            keep = np.unique(np.round(np.linspace(0, len(randoms) - 1, MAX_RANDOM_TIMES)).astype(int))
            randoms = [randoms[i] for i in keep]
        options += randoms
    options.sort(key=lambda o: (o.time_h, SAMPLING_KINDS.index(o.kind)))
    return options


# -- importance re-weighting ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReweightedMoments:
    """The metric's posterior after each hypothetical level (K outcomes), from re-weighted draws."""

    mean: np.ndarray  # (K,)
    variance: np.ndarray  # (K,)
    ci90_width: np.ndarray  # (K,) weighted 95th − 5th percentile
    effective_sample_size: np.ndarray  # (K,) Kish ESS of the weights


def _log_likelihood(levels: np.ndarray, predictions: np.ndarray, error: ErrorModel) -> np.ndarray:
    """log p(y_k | f_s) up to a constant in y, (K, S); built in place (this is the inner loop)."""
    if error.model == "exponential":
        log_y = np.log(np.maximum(levels, _LOG_FLOOR))
        log_f = np.log(np.maximum(predictions, _LOG_FLOOR))
        out = np.subtract.outer(log_y, log_f)
        out *= out
        out *= -0.5 / error.additive**2
        return out
    variance = error.variance(predictions)
    out = np.subtract.outer(levels, predictions)
    out *= out
    out *= -0.5 / variance
    out -= 0.5 * np.log(variance)
    return out


_BLOCK = 64  # columns per block of :func:`_count_below`


def _count_below(cumulative: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """``(cumulative < thresholds[:, None]).sum(axis=1)`` for rows that never decrease (cumulative weights).

    The same counts without comparing every entry: the last entry of each block of :data:`_BLOCK` columns
    tells how many whole blocks lie below, then one block per row is compared (exact, as the rows are
    monotone; a NaN threshold counts nothing either way).
    """
    n_rows, n_columns = cumulative.shape
    n_blocks = n_columns // _BLOCK
    block_ends = cumulative[:, _BLOCK - 1 : n_blocks * _BLOCK : _BLOCK]
    start = (block_ends < thresholds[:, None]).sum(axis=1) * _BLOCK
    columns = start[:, None] + np.arange(_BLOCK)[None, :]
    inside = columns < n_columns
    values = cumulative[np.arange(n_rows)[:, None], np.minimum(columns, n_columns - 1)]
    return start + ((values < thresholds[:, None]) & inside).sum(axis=1)


def _moments_sorted(
    metric_sorted: np.ndarray,
    predicted_levels: np.ndarray,
    measured_levels: np.ndarray,
    error: ErrorModel,
    excluded: tuple[np.ndarray, np.ndarray] | None,
) -> ReweightedMoments:
    """:func:`reweighted_metric_moments` for draws sorted by their metric; ``excluded`` = (rows, columns)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        weights = _log_likelihood(measured_levels, predicted_levels, error)
        if excluded is not None:
            weights[excluded] = -np.inf
        top = weights.max(axis=1)
        bad = ~np.isfinite(top)
        top[bad] = 0.0
        weights -= top[:, None]
        np.exp(weights, out=weights)  # unnormalised; each row's total divides the sums below
        total = weights.sum(axis=1)
        centre = float(np.mean(metric_sorted))
        centred = metric_sorted - centre  # centred values: no cancellation in E[m²] − E[m]²
        mean = (weights @ centred) / total
        variance = np.maximum((weights @ (centred * centred)) / total - mean * mean, 0.0)
        ess = total * total / np.einsum("ks,ks->k", weights, weights)
        cumulative = np.cumsum(weights, axis=1, out=weights)  # the weights are not needed after this
        last = metric_sorted.size - 1
        low, high = (
            metric_sorted[np.minimum(_count_below(cumulative, (q - 1e-12) * total), last)]
            for q in (0.05, 0.95)
        )
        bad |= ~(np.isfinite(total) & (total > 0))
    for array in (mean, variance, ess, low, high):
        array[bad] = np.nan
    return ReweightedMoments(mean + centre, variance, high - low, ess)


def reweighted_metric_moments(
    *,
    metric: np.ndarray,
    predicted_levels: np.ndarray,
    measured_levels: np.ndarray,
    error: ErrorModel,
    exclude: np.ndarray | None = None,
) -> ReweightedMoments:
    """The metric's posterior moments after each of K measured levels, by re-weighting S equal draws.

    Row k weighs draw s by p(y_k | f_s), the likelihood of the measured level under the output's error model
    (normal with ``error.variance(f)``; log-normal for ``"exponential"``), normalised over s.

    Parameters
    ----------
    metric : (S,) the metric of each current posterior draw.
    predicted_levels : (S,) each draw's predicted level at the sampling time (output unit).
    measured_levels : (K,) hypothetical (or real) measured levels.
    error : the output's residual error model.
    exclude : (K, S) boolean, draws left out of row k's weights (leave-one-out), or None.

    Returns
    -------
    :class:`ReweightedMoments` (weighted mean, variance, 5-95 % width by the inverted CDF, Kish ESS); rows
    whose weights are all zero give NaN.
    """
    m = np.asarray(metric, dtype=float)
    order = np.argsort(m, kind="stable")
    f = np.asarray(predicted_levels, dtype=float)[order]
    y = np.asarray(measured_levels, dtype=float)
    excluded = None
    if exclude is not None:
        excluded = np.nonzero(np.asarray(exclude, dtype=bool)[:, order])
    return _moments_sorted(m[order], f, y, error, excluded)


# -- the advice ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OptionAdvice:
    """What one sampling option is expected to do to the metric's uncertainty."""

    option: SamplingOption
    expected_variance: float  # E_y[Var(metric | data, y)], metric unit squared
    reduction: float  # 1 − expected / current variance
    expected_ci90_width: float  # mean over outcomes of the 90 % interval width after the level
    effective_sample_size: float  # median over outcomes of the weights' Kish ESS
    reliable: bool  # effective_sample_size >= MIN_EFFECTIVE_SAMPLE_SIZE
    predicted_level_median: float  # output unit, credible (no residual error)
    predicted_level_ci90: tuple[float, float]
    # 90 % prediction interval of the measured level (residual error included), from the simulated levels
    measured_level_pi90: tuple[float, float]

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.option.as_dict(),
            "expected_variance": self.expected_variance,
            "reduction": self.reduction,
            "expected_ci90_width": self.expected_ci90_width,
            "effective_sample_size": self.effective_sample_size,
            "reliable": self.reliable,
            "predicted_level_median": self.predicted_level_median,
            "predicted_level_ci90": list(self.predicted_level_ci90),
            "measured_level_pi90": list(self.measured_level_pi90),
        }


def _number(value: float) -> str:
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _shown(value: float, unit: str) -> str:
    return f"{value * 100:.0f}" if unit == "fraction" else _number(value)


def _suffix(unit: str) -> str:
    if unit in ("fraction", "%"):
        return " %"
    return "" if unit == "ratio" else f" {unit}"


def _width_suffix(unit: str) -> str:
    """A width of a percentage is in percentage points (not a relative width)."""
    return " percentage points" if unit in ("fraction", "%") else _suffix(unit)


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class SamplingAdvice:
    """Sampling options ranked by the metric's expected posterior variance after one level (best first).

    ``success`` False means no advice: ``message`` says why, and no option carries a number.
    """

    success: bool
    message: str
    options: tuple[OptionAdvice, ...]
    best: OptionAdvice | None
    current_variance: float
    current_ci90: tuple[float, float]
    metric_label: str
    unit: str
    output: str = ""
    level_unit: str = ""
    n_draws: int = 0
    n_outcomes: int = 0
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def plain_words(self) -> str:
        """One sentence on the best option, for the page (or why there is no advice)."""
        if not self.success or self.best is None:
            return f"No sampling advice: {self.message}"
        best, unit = self.best, self.unit
        low, high = self.current_ci90
        current = f"{_shown(low, unit)}-{_shown(high, unit)}{_suffix(unit)}"
        reduction = max(0.0, best.reduction) * 100
        if best.reduction < MEANINGFUL_REDUCTION:
            return (
                f"A level at any of the proposed times would not narrow the 90 % interval of the "
                f"{self.metric_label} ({current}) much: the most informative, "
                f"{best.option.subject()[0].lower()}{best.option.subject()[1:]}, is expected to reduce its "
                f"variance by only {reduction:.0f} %."
            )
        width = f"{_shown(high - low, unit)}{_width_suffix(unit)}"
        after = f"{_shown(best.expected_ci90_width, unit)}{_width_suffix(unit)}"
        return (
            f"{best.option.subject()} is expected to narrow the 90 % interval of the {self.metric_label} "
            f"from {current} ({width} wide) to about {after} wide (variance down by {reduction:.0f} %)."
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "message": self.message,
            "metric": self.metric_label,
            "unit": self.unit,
            "output": self.output,
            "level_unit": self.level_unit,
            "current_variance": _finite_or_none(self.current_variance),
            "current_ci90": [_finite_or_none(v) for v in self.current_ci90],
            "options": [o.as_dict() for o in self.options],
            "best": None if self.best is None else self.best.as_dict(),
            "plain_words": self.plain_words(),
            "n_draws": self.n_draws,
            "n_outcomes": self.n_outcomes,
            "warnings": list(self.warnings),
        }


def _failure(
    message: str,
    *,
    label: str,
    unit: str,
    output: str,
    level_unit: str,
    n_draws: int,
    n_outcomes: int,
    warnings: Sequence[str] = (),
) -> SamplingAdvice:
    return SamplingAdvice(
        success=False,
        message=message,
        options=(),
        best=None,
        current_variance=math.nan,
        current_ci90=(math.nan, math.nan),
        metric_label=label,
        unit=unit,
        output=output,
        level_unit=level_unit,
        n_draws=n_draws,
        n_outcomes=n_outcomes,
        warnings=tuple(warnings),
    )


def _kappas(
    objective: Objective, theta: np.ndarray, n_occasions: int, rng: np.random.Generator
) -> np.ndarray | None:
    """κ (S, n_occasions, n_kappa) of the continued record: estimated occasions, then fresh κ drawn once."""
    model = objective.model
    if not model.n_kappa:
        return None
    n = theta.shape[0]
    n_est = objective.n_occasions_estimated
    kappa = np.zeros((n, n_occasions, model.n_kappa))
    estimated = theta[:, model.n_eta :].reshape(n, n_est, model.n_kappa)
    kept = min(n_est, n_occasions)
    kappa[:, :kept] = estimated[:, :kept]
    if n_occasions > kept:
        kappa[:, kept:] = rng.multivariate_normal(
            np.zeros(model.n_kappa), model.iov_omega, size=(n, n_occasions - kept), method="cholesky"
        )
    return kappa


def advise_sampling(
    *,
    model: PopulationModel,
    record: PatientRecord,
    posterior_theta: np.ndarray,
    objective: Objective,
    regimen: Regimen,
    target: Target,
    options: Sequence[SamplingOption],
    rng: np.random.Generator,
    n_outcomes: int = 200,
    output: str | None = None,
) -> SamplingAdvice:
    """Rank ``options`` by the expected posterior variance of ``target``'s metric after one level.

    Parameters
    ----------
    model, record : the patient (past doses, levels, covariates).
    posterior_theta : (S, dim) current posterior draws θ = [η, κ of estimated occasions], equally weighted
        (``PosteriorSample.theta``).
    objective : the patient's :class:`Objective` (for the layout of θ).
    regimen : the regimen to be given from ``regimen.start_h``; target : the metric whose uncertainty counts.
    options : sampling times (:func:`candidate_sampling_times`, or the caller's own), after the last level.
    rng : for the fresh κ of future occasions and the hypothetical levels.
    n_outcomes : hypothetical levels per option (Monte Carlo size of the outer average).
    output : the model output measured (default: the target's output).

    Returns
    -------
    :class:`SamplingAdvice`, options ranked best first (by expected variance, then earlier time).
    ``success`` is False, with the reason, when the draws cannot support the computation: too few or
    non-finite draws, a metric without uncertainty or not finite, or a best option whose re-weighting is
    unreliable.

    See the module docstring for the method.
    """
    unit = target.check_model(model)
    label = target.label
    output_name = output or target.output_name(model)
    if output_name not in model.outputs:
        raise InvalidInputError(
            "output", f"unknown output '{output_name}' (model has {', '.join(model.outputs)})"
        )
    level_unit = model.outputs[output_name].unit
    if isinstance(n_outcomes, bool) or not isinstance(n_outcomes, int) or n_outcomes < 10:
        raise InvalidInputError("n_outcomes", f"must be a whole number >= 10, got {n_outcomes!r}")
    options = list(options)
    if not options:
        raise InvalidInputError("options", "no sampling option to assess")
    theta = np.asarray(posterior_theta, dtype=float)
    if theta.ndim != 2 or theta.shape[1] != objective.dimension:
        raise InvalidInputError(
            "posterior_theta", f"expected draws (S, {objective.dimension}), got shape {theta.shape}"
        )
    n_draws = int(theta.shape[0])

    def fail(message: str, warnings: Sequence[str] = ()) -> SamplingAdvice:
        return _failure(
            message,
            label=label,
            unit=unit,
            output=output_name,
            level_unit=level_unit,
            n_draws=n_draws,
            n_outcomes=n_outcomes,
            warnings=warnings,
        )

    if n_draws < MIN_DRAWS:
        return fail(f"sampling advice needs at least {MIN_DRAWS} posterior draws, got {n_draws}")
    if not np.all(np.isfinite(theta)):
        return fail("the posterior draws contain non-finite values; refit before asking when to sample")

    warnings: list[str] = []
    last_level = max((o.time_h for o in record.observations), default=-math.inf)
    kept, dropped = truncate_record(record, regimen.start_h)
    if dropped:
        warnings.append(
            f"{dropped} administration(s) scheduled from {regimen.start_h:g} h on were replaced by the "
            "regimen"
        )
    until = max(o.time_h for o in options)
    if not target.steady_state:
        first = min((d.time_h for d in kept.doses), default=regimen.start_h)
        plan = metric_plan(
            target,
            model,
            regimen_start_h=regimen.start_h,
            interval_h=regimen.interval_h,
            infusion_duration_h=regimen.duration_h,
            first_dose_h=first,
        )
        until = max(until, plan.end_h)
    continued = extend_record(kept, regimen.doses(until_h=until + regimen.interval_h))
    first_dose = min((d.time_h for d in continued.doses), default=math.inf)
    for i, option in enumerate(options):
        if option.time_h <= last_level + _TIME_TOL_H:
            raise InvalidInputError(
                f"options[{i}].time_h",
                f"{option.time_h:g} h is not after the last level ({last_level:g} h)",
            )
        if option.time_h <= first_dose + _TIME_TOL_H:
            raise InvalidInputError(
                f"options[{i}].time_h", f"{option.time_h:g} h is not after the first dose"
            )

    simulator = PatientSimulator(model, continued)
    eta = theta[:, : model.n_eta]
    kappa = _kappas(objective, theta, simulator.n_occasions, rng)
    times = np.array([o.time_h for o in options])
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            predicted = simulator.predict(times, eta, kappa, outputs=[output_name]).outputs[output_name]
            if target.steady_state:
                metric_record = replace(kept, doses=regimen.doses(steady_state=True))
                metric_simulator = PatientSimulator(model, metric_record)
                metric_kappa = None
                if kappa is not None:
                    # The steady state is the maintenance doses' occasion in the continued record.
                    starts = sorted({d.time_h for d in continued.doses})
                    occasion = int(np.searchsorted(starts, regimen.maintenance_start_h - _TIME_TOL_H))
                    metric_kappa = kappa[:, occasion : occasion + 1, :]
            else:
                metric_simulator, metric_kappa = simulator, kappa
            metric = metric_values(
                target,
                metric_simulator,
                eta,
                metric_kappa,
                regimen_start_h=regimen.start_h,
                interval_h=regimen.interval_h,
                infusion_duration_h=regimen.duration_h,
            )
    except ParameterValueError as exc:
        return fail(f"the posterior draws give impossible parameter values: {exc}", warnings)
    if not np.all(np.isfinite(metric)):
        return fail(f"the {label} is not finite for some posterior draws", warnings)
    if not np.all(np.isfinite(predicted)):
        return fail("the predicted level is not finite for some posterior draws", warnings)
    current_variance = float(np.var(metric))
    scale = max(float(np.max(np.abs(metric))), np.finfo(float).tiny)
    if current_variance <= (1e-9 * scale) ** 2:
        return fail(
            f"the {label} is the same for every posterior draw (no parameter uncertainty left, e.g. known "
            "etas): no level can narrow it",
            warnings,
        )
    # The same quantile rule as after re-weighting (inverted CDF), so that the widths compare.
    current_low, current_high = np.quantile(metric, [0.05, 0.95], method="inverted_cdf")

    # The hypothetical levels: a draw, then residual error; shared by every option (common random numbers).
    source = rng.integers(n_draws, size=n_outcomes)
    z = rng.standard_normal(n_outcomes)
    order = np.argsort(metric, kind="stable")  # draws sorted by metric once, for the weighted quantiles
    metric_sorted = metric[order]
    _, identity = np.unique(theta, axis=0, return_inverse=True)
    identity = np.ravel(identity)
    # Leave-one-out: the draw behind y_k and its copies (resampled draws repeat) get no weight in row k.
    excluded = np.nonzero(identity[order][None, :] == identity[source][:, None])
    error = model.outputs[output_name].error
    results: list[OptionAdvice] = []
    # Every option's levels and quantiles at once: the same element-wise operations as option by option.
    truth = predicted[source]  # (K, options)
    if error.model == "exponential":
        all_levels = truth * np.exp(error.additive * z)[:, None]
    else:
        all_levels = truth + np.sqrt(error.variance(truth)) * z[:, None]
    all_level_q = quantiles_over_draws(predicted, [0.05, 0.5, 0.95])
    all_measured_q = np.quantile(all_levels, [0.05, 0.95], axis=0)
    predicted_sorted = predicted[order]
    for j, option in enumerate(options):
        levels = np.ascontiguousarray(all_levels[:, j])
        moments = _moments_sorted(
            metric_sorted, np.ascontiguousarray(predicted_sorted[:, j]), levels, error, excluded
        )
        if not np.all(np.isfinite(moments.variance)):
            return fail(
                f"the re-weighting failed at {option.time_h:g} h (no draw explains a simulated level)",
                warnings,
            )
        expected = float(np.mean(moments.variance))
        ess = float(np.median(moments.effective_sample_size))
        level_q = all_level_q[:, j]
        measured_q = all_measured_q[:, j]
        results.append(
            OptionAdvice(
                option=option,
                expected_variance=expected,
                reduction=1.0 - expected / current_variance,
                expected_ci90_width=float(np.mean(moments.ci90_width)),
                effective_sample_size=ess,
                reliable=ess >= MIN_EFFECTIVE_SAMPLE_SIZE,
                predicted_level_median=float(level_q[1]),
                predicted_level_ci90=(float(level_q[0]), float(level_q[2])),
                measured_level_pi90=(float(measured_q[0]), float(measured_q[1])),
            )
        )
    results.sort(key=lambda r: (round(r.expected_variance / current_variance, 9), r.option.time_h))
    unreliable = [r for r in results if not r.reliable]
    if not results[0].reliable:
        # The re-weighting underestimates the variance when few draws carry the weight: an unreliable
        # option could look best without being so. Ranking it first would be advice without a basis.
        return fail(
            "the posterior draws cannot support the computation: the most informative option "
            f"({results[0].option.label}, at {results[0].option.time_h:g} h) rests on a median of "
            f"{results[0].effective_sample_size:.0f} effective draws (< {MIN_EFFECTIVE_SAMPLE_SIZE:.0f}) "
            f"of {n_draws}; draw more posterior samples",
            warnings,
        )
    if unreliable:
        # Behind a reliable option their (underestimated) variance is worse still: the ranking holds.
        warnings.append(
            f"{len(unreliable)} option(s) rest on few effective draws (median effective sample size "
            f"{min(r.effective_sample_size for r in unreliable):.0f} < {MIN_EFFECTIVE_SAMPLE_SIZE:.0f}); "
            "their expected uncertainty is imprecise"
        )
    return SamplingAdvice(
        success=True,
        message="",
        options=tuple(results),
        best=results[0],
        current_variance=current_variance,
        current_ci90=(float(current_low), float(current_high)),
        metric_label=label,
        unit=unit,
        output=output_name,
        level_unit=level_unit,
        n_draws=n_draws,
        n_outcomes=n_outcomes,
        warnings=tuple(warnings),
    )
