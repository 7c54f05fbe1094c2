"""Exact (unrounded) doses, intervals and times at a point estimate of the random effects.

These match posologyr's ``poso_dose_auc``, ``poso_dose_conc``, ``poso_inter_cmin`` and ``poso_time_cmin``
for a point estimate (MAP or given etas), with these differences:

- posologyr minimises the squared error with Brent's method over [0, 1e5] mg (or L-BFGS-B for the
  interval), to the optimiser's tolerance. Here a linear model's metric is an affine function of the dose,
  metric(D) = m0 + s·D, so two simulations give the exact dose D = (target − m0)/s, then checked by a third
  simulation (relative error < 1e-9, else the root is polished with brentq). Nonlinear models use brentq on
  metric(D) − target over a bracket found by doubling (the metric grows with the dose: compartment models are
  monotone in their inputs). Intervals and times always use brentq (xtol 1e-10 h).
- The patient's past doses count (posologyr's ``tdm=TRUE`` mode): the regimen is appended to the record, and
  doses the record schedules from the regimen's start on are dropped (the regimen replaces them).
- ``interval_for_trough`` solves for the true steady-state trough (NONMEM SS=1) by default; with
  ``n_doses=k`` it targets the level just before dose k + 1 (posologyr samples 0.1 h before the last of
  ``add_dose`` + 1 doses).
- ``time_to_concentration`` returns the exact time, after the last administration, at which the level falls
  below the threshold after its peak (posologyr: the first point of a 0.1 h grid below the threshold, from
  0.2 h, which for an oral dose can be before the level has risen).

Times are in hours from the start of the regimen (``Regimen.start_h`` on the record's clock), except
:func:`time_to_concentration`, which counts from the last administration. The κ of future occasions (IOV)
are 0 at a point estimate; pass the estimated ones (``MapResult.kappa``) as ``kappa``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.optimize import brentq

from .errors import InvalidInputError
from .events import PatientRecord
from .exposure import Window, auc
from .model import PopulationModel
from .regimens import Regimen, extend_record, truncate_record
from .simulation import PatientSimulator

_VERIFY_RTOL = 1e-9
_XTOL_H = 1e-10


@dataclass(frozen=True)
class DoseSolution:
    """An exact dose (mg) and the metric it gives, checked by simulation."""

    success: bool
    message: str
    dose_mg: float
    value: float  # the metric at dose_mg (AUC in output unit·h, or concentration)
    target_value: float
    method: str  # "linear" or "brentq"
    n_simulations: int
    warnings: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class IntervalSolution:
    success: bool
    message: str
    interval_h: float
    trough: float
    target_value: float
    n_simulations: int
    warnings: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class TimeSolution:
    success: bool
    message: str
    time_after_last_dose_h: float
    time_h: float  # on the record's clock
    concentration: float
    last_dose_h: float
    n_simulations: int


class _PointModel:
    """Simulations of one parameter set (η, κ) on records built from the patient's past doses."""

    def __init__(
        self,
        model: PopulationModel,
        record: PatientRecord,
        eta: np.ndarray | None,
        kappa: np.ndarray | None,
        output: str | None,
    ):
        self.model = model
        self.record = record
        eta_array = np.zeros(model.n_eta) if eta is None else np.asarray(eta, dtype=float)
        if eta_array.shape != (model.n_eta,):
            raise InvalidInputError("eta", f"expected {model.n_eta} etas, got shape {eta_array.shape}")
        if not np.all(np.isfinite(eta_array)):
            raise InvalidInputError("eta", "contains non-finite values")
        self.eta = eta_array[None, :]
        self.kappa_given = None
        if kappa is not None and model.n_kappa:
            k = np.atleast_2d(np.asarray(kappa, dtype=float))
            if k.shape[1] != model.n_kappa:
                raise InvalidInputError("kappa", f"expected {model.n_kappa} kappas per occasion")
            self.kappa_given = k
        self.output = output or model.default_output
        if self.output not in model.outputs:
            raise InvalidInputError("output", f"unknown output '{self.output}'")
        self.n_simulations = 0

    def simulator(self, record: PatientRecord) -> tuple[PatientSimulator, np.ndarray | None]:
        simulator = PatientSimulator(self.model, record)
        kappa = None
        if self.model.n_kappa:
            kappa = np.zeros((1, simulator.n_occasions, self.model.n_kappa))
            if self.kappa_given is not None:
                n = min(self.kappa_given.shape[0], simulator.n_occasions)
                kappa[0, :n] = self.kappa_given[:n]
        self.n_simulations += 1
        return simulator, kappa

    def concentration(self, record: PatientRecord, times_h: np.ndarray) -> np.ndarray:
        simulator, kappa = self.simulator(record)
        return simulator.predict(times_h, self.eta, kappa, outputs=[self.output]).outputs[self.output][0]

    def auc(self, record: PatientRecord, start_h: float, end_h: float) -> float:
        simulator, kappa = self.simulator(record)
        return float(auc(simulator, Window(start_h, end_h), eta=self.eta, kappa=kappa, output=self.output)[0])


def _positive(path: str, value: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InvalidInputError(path, f"must be a positive number, got {value!r}")
    return float(value)


def _solve_dose(
    point: _PointModel,
    regimen: Regimen,
    metric: Callable[[PatientRecord], float],
    target_value: float,
    *,
    steady_state: bool,
    until_h: float | None,
    max_dose_mg: float,
) -> DoseSolution:
    past, dropped = truncate_record(point.record, regimen.start_h)
    warnings = (
        (f"{dropped} administration(s) scheduled from {regimen.start_h:g} h on were replaced",)
        if dropped
        else ()
    )

    def value(dose_mg: float) -> float:
        doses = regimen.with_dose(dose_mg).doses(steady_state=steady_state, until_h=until_h)
        record = replace(past, doses=doses) if steady_state else extend_record(past, doses)
        return metric(record)

    reference = regimen.dose_mg
    if point.model.is_linear:
        m1 = value(reference)
        m2 = value(2 * reference)
        slope = (m2 - m1) / reference
        baseline = m1 - slope * reference
        if not slope > 0:
            return DoseSolution(
                False,
                "the metric does not increase with the dose (is the target time before the first dose?)",
                math.nan,
                m1,
                target_value,
                "linear",
                point.n_simulations,
                warnings,
            )
        dose = (target_value - baseline) / slope
        if not dose > 0:
            return DoseSolution(
                False,
                f"the target is already exceeded without a new dose ({baseline:.6g} from earlier doses)",
                math.nan,
                baseline,
                target_value,
                "linear",
                point.n_simulations,
                warnings,
            )
        achieved = value(dose)
        if abs(achieved - target_value) <= _VERIFY_RTOL * abs(target_value):
            return DoseSolution(
                True, "", dose, achieved, target_value, "linear", point.n_simulations, warnings
            )
        # Not affine to precision (should not happen for a linear model): polish with brentq.
    low, high = reference, reference
    f_low = value(low) - target_value
    while f_low > 0:
        low /= 2
        if low < 1e-9 * reference:
            return DoseSolution(
                False,
                "the target is already exceeded with a vanishing dose",
                math.nan,
                f_low + target_value,
                target_value,
                "brentq",
                point.n_simulations,
                warnings,
            )
        f_low = value(low) - target_value
    f_high = value(high) - target_value
    while f_high < 0:
        high *= 2
        if high > max_dose_mg:
            return DoseSolution(
                False,
                f"the target is not reached with doses up to {max_dose_mg:g} mg",
                math.nan,
                f_high + target_value,
                target_value,
                "brentq",
                point.n_simulations,
                warnings,
            )
        f_high = value(high) - target_value
    if f_low == 0:
        dose = low
    elif f_high == 0:
        dose = high
    else:
        dose = brentq(lambda d: value(d) - target_value, low, high, xtol=1e-12 * high, rtol=1e-12)
    achieved = value(dose)
    return DoseSolution(
        True, "", float(dose), achieved, target_value, "brentq", point.n_simulations, warnings
    )


def dose_for_auc(
    model: PopulationModel,
    record: PatientRecord,
    *,
    target_auc: float,
    regimen: Regimen,
    eta: np.ndarray | None = None,
    kappa: np.ndarray | None = None,
    window_h: tuple[float, float] | None = None,
    steady_state: bool = False,
    output: str | None = None,
    max_dose_mg: float = 1e6,
) -> DoseSolution:
    """The dose per administration of ``regimen`` that gives ``target_auc`` (output unit × h).

    Parameters
    ----------
    regimen : the regimen's shape (start, interval, route, infusion duration, number of doses); its
        ``dose_mg`` is the reference dose of the search. A loading dose keeps its amount.
    window_h : the AUC window [start, end] in hours from the regimen start (posologyr's ``starting_time``,
        ``starting_time + time_auc``). Default with ``steady_state``: one dosing interval.
    steady_state : the regimen at steady state (a steady-state dose at the start; past doses do not count).
    eta : the point estimate (n_eta,); None is the typical patient. kappa : estimated κ (n_occasions,
        n_kappa) of the first occasions; later occasions get 0.

    Returns
    -------
    :class:`DoseSolution`; ``success`` False (with the reason) when no positive dose reaches the target.
    """
    target_auc = _positive("target_auc", target_auc)
    if window_h is None:
        if not steady_state:
            raise InvalidInputError("window_h", "give the AUC window [start, end] (h from the regimen start)")
        window_h = (0.0, regimen.interval_h)
    a, b = float(window_h[0]), float(window_h[1])
    if not (math.isfinite(a) and math.isfinite(b) and 0 <= a < b):
        raise InvalidInputError("window_h", f"need 0 <= start < end, got {window_h!r}")
    point = _PointModel(model, record, eta, kappa, output)
    start, end = regimen.start_h + a, regimen.start_h + b
    return _solve_dose(
        point,
        regimen,
        lambda rec: point.auc(rec, start, end),
        target_auc,
        steady_state=steady_state,
        until_h=end,
        max_dose_mg=max_dose_mg,
    )


def dose_for_concentration(
    model: PopulationModel,
    record: PatientRecord,
    *,
    target_concentration: float,
    time_h: float,
    regimen: Regimen,
    eta: np.ndarray | None = None,
    kappa: np.ndarray | None = None,
    steady_state: bool = False,
    output: str | None = None,
    max_dose_mg: float = 1e6,
) -> DoseSolution:
    """The dose per administration of ``regimen`` giving ``target_concentration`` at ``time_h`` (h from the
    regimen start; posologyr's ``time_c``). A level at a dose time is the pre-dose level.

    With ``steady_state`` the regimen is at steady state and ``time_h`` must lie within the first interval
    (0 < time_h <= interval): e.g. a steady-state peak or trough.
    """
    target_concentration = _positive("target_concentration", target_concentration)
    if isinstance(time_h, bool) or not isinstance(time_h, int | float) or not math.isfinite(time_h):
        raise InvalidInputError("time_h", f"expected a finite number, got {time_h!r}")
    if time_h <= 0:
        raise InvalidInputError("time_h", "the concentration before the first new dose does not depend on it")
    if steady_state and time_h > regimen.interval_h + 1e-12:
        raise InvalidInputError("time_h", "at steady state, give a time within the dosing interval")
    point = _PointModel(model, record, eta, kappa, output)
    t = regimen.start_h + float(time_h)
    return _solve_dose(
        point,
        regimen,
        lambda rec: float(point.concentration(rec, np.array([t]))[0]),
        target_concentration,
        steady_state=steady_state,
        until_h=t,
        max_dose_mg=max_dose_mg,
    )


def interval_for_trough(
    model: PopulationModel,
    record: PatientRecord,
    *,
    target_trough: float,
    regimen: Regimen,
    eta: np.ndarray | None = None,
    kappa: np.ndarray | None = None,
    n_doses: int | None = None,
    output: str | None = None,
    max_interval_h: float = 24.0 * 14,
) -> IntervalSolution:
    """The dosing interval at which the trough equals ``target_trough`` for ``regimen.dose_mg``.

    Default: the steady-state trough (just before the next dose at steady state). With ``n_doses=k``: the
    level just before dose k + 1 after k doses from the regimen start (past doses count). The interval lies
    between the infusion duration (a continuous infusion) and ``max_interval_h``. Where the trough is not
    monotone in the interval (an absorption phase with few doses), the crossing on the longest-interval
    (decreasing) branch is returned.
    """
    target_trough = _positive("target_trough", target_trough)
    if n_doses is not None and (isinstance(n_doses, bool) or not isinstance(n_doses, int) or n_doses < 1):
        raise InvalidInputError("n_doses", f"must be a whole number >= 1, got {n_doses!r}")
    point = _PointModel(model, record, eta, kappa, output)
    past, dropped = truncate_record(record, regimen.start_h)
    warnings = (
        (f"{dropped} administration(s) scheduled from {regimen.start_h:g} h on were replaced",)
        if dropped
        else ()
    )
    base = replace(regimen, loading_dose_mg=None, n_doses=n_doses)

    def trough(interval_h: float) -> float:
        shape = replace(base, interval_h=interval_h)
        if n_doses is None:
            rec = replace(past, doses=shape.doses(steady_state=True))
            t = shape.start_h + interval_h
        else:
            rec = extend_record(past, shape.doses(steady_state=False))
            t = shape.start_h + n_doses * interval_h
        return float(point.concentration(rec, np.array([t]))[0])

    lowest = max(regimen.duration_h, 1e-3)
    grid = np.geomspace(lowest, max_interval_h, 64)
    values = np.array([trough(float(tau)) for tau in grid]) - target_trough
    crossings = np.nonzero((values[:-1] > 0) & (values[1:] <= 0))[0]
    if crossings.size == 0:
        if np.all(values > 0):
            message = f"the trough stays above the target up to an interval of {max_interval_h:g} h"
        else:
            message = (
                f"the trough stays below the target even at an interval of {lowest:g} h; increase the dose"
            )
        return IntervalSolution(
            False, message, math.nan, math.nan, target_trough, point.n_simulations, warnings
        )
    i = int(crossings[-1])
    if values[i + 1] == 0:
        tau = float(grid[i + 1])
    else:
        tau = float(
            brentq(lambda x: trough(x) - target_trough, grid[i], grid[i + 1], xtol=_XTOL_H, rtol=1e-12)
        )
    return IntervalSolution(True, "", tau, trough(tau), target_trough, point.n_simulations, warnings)


def time_to_concentration(
    model: PopulationModel,
    record: PatientRecord,
    *,
    threshold: float,
    eta: np.ndarray | None = None,
    kappa: np.ndarray | None = None,
    output: str | None = None,
    step_h: float = 0.05,
    max_h: float = 24.0 * 28,
) -> TimeSolution:
    """Time after the last administration of the record at which the level falls below ``threshold``.

    The level is followed from the last administration; the answer is the first downward crossing after
    its peak (exact to 1e-10 h by brentq between the grid points around it). When the level never exceeds
    the threshold after the last administration the answer is 0 (already below), said in ``message``.
    """
    threshold = _positive("threshold", threshold)
    if not record.doses:
        raise InvalidInputError("doses", "the record has no dose")
    point = _PointModel(model, record, eta, kappa, output)
    last = max(t for d in record.doses for t in d.administration_times_h())
    span = 48.0
    while True:
        span = min(span, max_h)
        grid = last + np.linspace(0.0, span, int(np.ceil(span / step_h)) + 1)
        levels = point.concentration(record, grid)
        peak = int(np.argmax(levels))
        if peak == grid.size - 1 and span < max_h:  # still rising at the end of the span
            span *= 2
            continue
        if levels[peak] <= threshold:
            return TimeSolution(
                True,
                "the level stays below the threshold after the last dose",
                0.0,
                last,
                float(levels[0]),
                last,
                point.n_simulations,
            )
        below = np.nonzero(levels[peak:] < threshold)[0]
        if below.size:
            j = peak + int(below[0])
            break
        if span >= max_h:
            return TimeSolution(
                False,
                f"the level stays above the threshold for {max_h:g} h after the last dose",
                math.nan,
                math.nan,
                float(levels[-1]),
                last,
                point.n_simulations,
            )
        span *= 2

    def level(t: float) -> float:
        return float(point.concentration(record, np.array([t]))[0])

    time = float(brentq(lambda t: level(t) - threshold, grid[j - 1], grid[j], xtol=_XTOL_H, rtol=1e-12))
    return TimeSolution(True, "", time - last, time, level(time), last, point.n_simulations)


def round_dose(dose_mg: float, step_mg: float, *, mode: str = "nearest") -> float:
    """``dose_mg`` rounded to a multiple of ``step_mg`` (``mode``: "nearest" (halves up), "down", "up").

    Raises when the result would be 0 mg: a dose smaller than the step cannot be rounded to it.
    """
    if mode not in ("nearest", "down", "up"):
        raise InvalidInputError("mode", f"unknown rounding mode '{mode}' (nearest, down, up)")
    dose_mg = _positive("dose_mg", dose_mg)
    step_mg = _positive("step_mg", step_mg)
    ratio = dose_mg / step_mg
    nearest = round(ratio)
    if abs(ratio - nearest) < 1e-9:  # already on the grid up to floating-point noise
        units = nearest
    elif mode == "nearest":
        units = math.floor(ratio + 0.5)
    elif mode == "down":
        units = math.floor(ratio)
    else:
        units = math.ceil(ratio)
    if units < 1:
        raise InvalidInputError("dose_mg", f"{dose_mg:g} mg rounds to 0 with a step of {step_mg:g} mg")
    decimals = max(0, -math.floor(math.log10(step_mg)) + 6)
    return round(units * step_mg, decimals)
