"""Candidate regimens under hard limits, ranked by their probability of target attainment (PTA).

:class:`RegimenConstraints` states what may be given: dose step or available strengths, dosing intervals,
the infusion duration rule, per-dose, per-day and per-kg limits, loading doses, continuous infusion, the
start time. :func:`search_regimens` enumerates every candidate that respects the hard limits, evaluates the
target's metric for each posterior draw, and ranks the candidates.

Evaluation. A candidate's doses are appended to the patient's past doses (doses the record schedules at or
after the regimen start are dropped: the new regimen replaces them). Steady-state metrics evaluate the
regimen as a steady-state dose at the start (see :mod:`mipd_engine.targets`). Each posterior draw keeps its
η and the κ of the occasions estimated from levels; later occasions get fresh κ drawn once from Ω_iov and
shared by all candidates (common random numbers, so that candidates are compared on the same draws).

Speed: linearity in the dose. For a linear model (``model.is_linear``) every metric except time above the
MIC is an affine function of the dose amounts: at steady state it is proportional to the dose (the
steady-state dose replaces the past), otherwise it is past exposure + L·u_L + D·u_D for a loading dose L and
maintenance dose D. Candidates that share a shape (interval, infusion duration, route) therefore need one
simulation of all draws at steady state, or one per amount plus one otherwise, whatever the number of dose
levels; the metric of each dose level is then scaled. Time above the MIC at steady state scales too: the
concentration curve of dose D is D/D_ref times the reference curve, so the time above the MIC is the time the
reference curve spends above MIC·D_ref/D. One more exact shortcut: the AUC over a whole interval at steady
state (auc24, auc_tau, css, auc_mic) equals the amount given per interval times the integral of the unit
impulse response, whatever the infusion duration (or lag), as long as the parameters stay constant over
the interval; so when no covariate change falls inside it, all infusion durations of one interval share a
simulation. For nonlinear models (saturable elimination) each candidate is
simulated directly; within a shape doses are taken in increasing order and, once every draw lies above the
target range, only ``top`` larger doses are still evaluated (compartment models are monotone in their
inputs, so the larger doses are further from the target and rank lower). ``max_draws`` limits the draws
used for a nonlinear model (a random subset; the ODE solver costs a few ms per draw).

Ranking: PTA (compared in whole percent, as displayed), then the closeness of the median to the middle of
the target range (to ``low`` for a one-sided target), then simplicity: intermittent before continuous,
longer interval, smaller dose, smaller or no loading dose.

Daily limits count the doses started within any 24 h (sliding window; for q16h that is two doses), and for
a continuous infusion the amount infused within any 24 h.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .errors import InvalidInputError, ParameterValueError
from .events import Dose, PatientRecord
from .model import PopulationModel
from .objective import Objective
from .posterior import quantiles_over_draws
from .simulation import PatientSimulator
from .targets import (
    TARGET_FIELDS,
    MetricPlan,
    Target,
    measure,
    measure_curve,
    metric_plan,
    metric_values,
    plan_for_record,
    time_above_thresholds,
)

MAX_DOSE_OPTIONS = 500
_REL = 1e-9  # relative tolerance of limit checks (floating-point noise only)


def _amount(value: float) -> str:
    """An amount as a clinician writes it: 1250, 62.5, 0.75."""
    if abs(value - round(value)) < 1e-9 * max(1.0, abs(value)):
        return f"{round(value):d}"
    return f"{value:.6g}"


def _hours(value: float) -> str:
    return f"{value:.4g}"


# -- regimens --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Regimen:
    """A dosing regimen: ``dose_mg`` every ``interval_h`` from ``start_h`` (record clock).

    ``n_doses`` counts maintenance doses (None: until further notice). A loading dose is given at
    ``start_h`` and the maintenance doses start one interval later (for a continuous infusion, at the end of
    the loading infusion). A continuous infusion is ``dose_mg`` per ``interval_h`` (24 h) infused over the
    whole interval.
    """

    dose_mg: float
    interval_h: float
    start_h: float
    route: str = "iv_infusion"
    duration_h: float = 0.0
    n_doses: int | None = None
    loading_dose_mg: float | None = None
    loading_duration_h: float = 0.0
    continuous: bool = False

    @property
    def rate_mg_per_h(self) -> float | None:
        return self.dose_mg / self.duration_h if self.duration_h > 0 else None

    @property
    def daily_dose_mg(self) -> float:
        """Average maintenance amount per 24 h."""
        return self.dose_mg * 24.0 / self.interval_h

    @property
    def maintenance_start_h(self) -> float:
        if self.loading_dose_mg is None:
            return self.start_h
        if self.continuous:
            return self.start_h + self.loading_duration_h
        return self.start_h + self.interval_h

    def with_dose(self, dose_mg: float, loading_dose_mg: float | None = None) -> Regimen:
        return replace(
            self,
            dose_mg=dose_mg,
            loading_dose_mg=self.loading_dose_mg if loading_dose_mg is None else loading_dose_mg,
        )

    def _dose(self, time_h: float, amount: float, duration: float, **repeat: Any) -> Dose:
        return Dose(time_h, amount, route=self.route, duration_h=duration if duration > 0 else None, **repeat)

    def doses(self, *, steady_state: bool = False, until_h: float | None = None) -> tuple[Dose, ...]:
        """Dose records of the regimen.

        ``steady_state``: one steady-state record at ``start_h`` (the loading dose does not matter at
        steady state and is left out). Otherwise the loading dose and ``n_doses`` maintenance doses, or, when
        ``n_doses`` is None, every maintenance dose given before ``until_h``.
        """
        if steady_state:
            extra = (self.n_doses - 1) if self.n_doses else 0
            return (
                self._dose(
                    self.start_h,
                    self.dose_mg,
                    self.duration_h,
                    interval_h=self.interval_h,
                    additional=extra,
                    steady_state=True,
                ),
            )
        records = []
        if self.loading_dose_mg is not None:
            records.append(self._dose(self.start_h, self.loading_dose_mg, self.loading_duration_h))
        first = self.maintenance_start_h
        if self.n_doses is not None:
            count = self.n_doses
        else:
            if until_h is None:
                raise ValueError("a regimen without n_doses needs until_h")
            count = max(0, math.ceil((until_h - first) / self.interval_h - 1e-9))
        if count > 0:
            records.append(
                self._dose(
                    first, self.dose_mg, self.duration_h, interval_h=self.interval_h, additional=count - 1
                )
            )
        return tuple(records)

    def describe(self) -> str:
        """``q12h 1250 mg over 1.5 h``; ``loading 2000 mg over 2 h, then ...``; continuous infusions."""
        if self.continuous:
            per_day = self.dose_mg * 24.0 / self.interval_h
            text = (
                f"continuous infusion {_amount(per_day)} mg/24 h ({self.dose_mg / self.interval_h:.4g} mg/h)"
            )
        else:
            text = f"q{_hours(self.interval_h)}h {_amount(self.dose_mg)} mg"
            text += f" over {_hours(self.duration_h)} h" if self.duration_h > 0 else f" {self.route}"
        if self.n_doses is not None and not self.continuous:
            text += f", {self.n_doses} dose{'s' if self.n_doses != 1 else ''}"
        if self.loading_dose_mg is not None:
            loading = f"loading {_amount(self.loading_dose_mg)} mg"
            loading += f" over {_hours(self.loading_duration_h)} h" if self.loading_duration_h > 0 else ""
            text = f"{loading}, then {text}"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "dose_mg": self.dose_mg,
            "interval_h": self.interval_h,
            "start_h": self.start_h,
            "route": self.route,
            "duration_h": self.duration_h,
            "rate_mg_per_h": self.rate_mg_per_h,
            "daily_dose_mg": self.daily_dose_mg,
            "n_doses": self.n_doses,
            "loading_dose_mg": self.loading_dose_mg,
            "loading_duration_h": self.loading_duration_h if self.loading_dose_mg is not None else None,
            "continuous": self.continuous,
            "description": self.describe(),
        }


def truncate_record(record: PatientRecord, start_h: float) -> tuple[PatientRecord, int]:
    """The record without administrations at or after ``start_h``; and how many were dropped.

    A new regimen starting at ``start_h`` replaces whatever the record schedules from then on.
    """
    kept: list[Dose] = []
    dropped = 0
    for dose in record.doses:
        times = dose.administration_times_h()
        before = sum(1 for t in times if t < start_h - 1e-9)
        dropped += len(times) - before
        if before == len(times):
            kept.append(dose)
        elif before > 0:
            kept.append(replace(dose, additional=before - 1))
    return replace(record, doses=tuple(kept)), dropped


def extend_record(record: PatientRecord, doses: Sequence[Dose]) -> PatientRecord:
    return replace(record, doses=(*record.doses, *doses))


# -- constraints -----------------------------------------------------------------------------------------

_CONSTRAINT_FIELDS = (
    "interval_options_h",
    "dose_step_mg",
    "available_strengths_mg",
    "max_units_per_dose",
    "min_dose_mg",
    "max_dose_mg",
    "max_daily_dose_mg",
    "max_mg_per_kg_per_day",
    "weight_kg",
    "route",
    "infusion_duration_h",
    "max_infusion_rate_mg_per_h",
    "min_infusion_duration_h",
    "duration_step_h",
    "loading_dose_options_mg",
    "max_loading_dose_mg",
    "continuous_infusion",
    "start_h",
    "last_dose_h",
    "n_doses",
    "horizon_h",
)
CONSTRAINT_FIELDS = frozenset(_CONSTRAINT_FIELDS)


def _positive(path: str, value: Any, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInputError(path, f"expected a finite number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise InvalidInputError(path, f"must be {'>= 0' if allow_zero else 'positive'}, got {value:g}")
    return float(value)


def _positive_list(path: str, values: Any) -> tuple[float, ...]:
    if isinstance(values, int | float) and not isinstance(values, bool):
        values = (values,)
    if not isinstance(values, Sequence) or isinstance(values, str):
        raise InvalidInputError(path, f"expected a list of numbers, got {values!r}")
    return tuple(sorted({_positive(path, v) for v in values}))


@dataclass(frozen=True)
class RegimenConstraints:
    """What may be given; every limit here is hard (a candidate that breaks one is never proposed).

    Parameters
    ----------
    interval_options_h : dosing intervals to consider (h).
    dose_step_mg : doses are multiples of this step; or ``available_strengths_mg``: doses are sums of up to
        ``max_units_per_dose`` units of these strengths (tablets, vials).
    min_dose_mg, max_dose_mg : per-dose range (``max_dose_mg`` required for intermittent doses).
    max_daily_dose_mg : limit on the doses started within any 24 h; ``max_mg_per_kg_per_day`` with
        ``weight_kg`` adds a weight-based daily limit (the smaller applies).
    route : the model route of the doses.
    infusion_duration_h : fixed infusion duration; or ``max_infusion_rate_mg_per_h``: the duration is dose /
        rate rounded up to ``duration_step_h``, at least ``min_infusion_duration_h``. With both, the fixed
        duration is used and doses above the rate are excluded. Route "iv_infusion" needs one of them.
    loading_dose_options_mg : loading doses to consider (besides none), at most ``max_loading_dose_mg``
        (default ``max_dose_mg``); only for targets not at steady state.
    continuous_infusion : also consider continuous infusions (daily amount in steps of the dose step, up
        to the daily limit).
    start_h : time of the first dose of the regimen (record clock); with ``last_dose_h`` (the start of the
        patient's last dose), the earliest start: each intermittent candidate starts one of its own intervals
        after the last dose (a q24h regimen 24 h after it, a q8h one 8 h after it), never before ``start_h``.
    n_doses or horizon_h : number of maintenance doses, or the time span they cover; default: until
        further notice (steady-state targets) or until the end of the target window.
    """

    interval_options_h: tuple[float, ...] = ()
    dose_step_mg: float | None = None
    available_strengths_mg: tuple[float, ...] = ()
    max_units_per_dose: int = 4
    min_dose_mg: float | None = None
    max_dose_mg: float | None = None
    max_daily_dose_mg: float | None = None
    max_mg_per_kg_per_day: float | None = None
    weight_kg: float | None = None
    route: str = "iv_infusion"
    infusion_duration_h: float | None = None
    max_infusion_rate_mg_per_h: float | None = None
    min_infusion_duration_h: float | None = None
    duration_step_h: float = 0.5
    loading_dose_options_mg: tuple[float, ...] = ()
    max_loading_dose_mg: float | None = None
    continuous_infusion: bool = False
    start_h: float = 0.0
    last_dose_h: float | None = None
    n_doses: int | None = None
    horizon_h: float | None = None

    def __post_init__(self) -> None:
        p = "constraints."
        intervals = _positive_list(p + "interval_options_h", self.interval_options_h)
        object.__setattr__(self, "interval_options_h", intervals)
        if not intervals and not self.continuous_infusion:
            raise InvalidInputError(p + "interval_options_h", "give at least one dosing interval")
        strengths = _positive_list(p + "available_strengths_mg", self.available_strengths_mg)
        object.__setattr__(self, "available_strengths_mg", strengths)
        if (self.dose_step_mg is None) == (not strengths):
            raise InvalidInputError(
                p + "dose_step_mg", "give either dose_step_mg or available_strengths_mg (exactly one)"
            )
        if self.dose_step_mg is not None:
            object.__setattr__(self, "dose_step_mg", _positive(p + "dose_step_mg", self.dose_step_mg))
        if isinstance(self.max_units_per_dose, bool) or not isinstance(self.max_units_per_dose, int):
            raise InvalidInputError(p + "max_units_per_dose", "must be a whole number >= 1")
        if self.max_units_per_dose < 1:
            raise InvalidInputError(p + "max_units_per_dose", "must be a whole number >= 1")
        for name in (
            "min_dose_mg",
            "max_dose_mg",
            "max_daily_dose_mg",
            "max_mg_per_kg_per_day",
            "weight_kg",
            "infusion_duration_h",
            "max_infusion_rate_mg_per_h",
            "max_loading_dose_mg",
            "horizon_h",
        ):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _positive(p + name, value))
        if self.min_infusion_duration_h is not None:
            value = _positive(p + "min_infusion_duration_h", self.min_infusion_duration_h, allow_zero=True)
            object.__setattr__(self, "min_infusion_duration_h", value)
        object.__setattr__(self, "duration_step_h", _positive(p + "duration_step_h", self.duration_step_h))
        if isinstance(self.start_h, bool) or not isinstance(self.start_h, int | float):
            raise InvalidInputError(p + "start_h", f"expected a number, got {self.start_h!r}")
        if not math.isfinite(self.start_h):
            raise InvalidInputError(p + "start_h", f"expected a finite number, got {self.start_h!r}")
        object.__setattr__(self, "start_h", float(self.start_h))
        if self.last_dose_h is not None:
            if isinstance(self.last_dose_h, bool) or not isinstance(self.last_dose_h, int | float):
                raise InvalidInputError(p + "last_dose_h", f"expected a number, got {self.last_dose_h!r}")
            if not math.isfinite(self.last_dose_h):
                raise InvalidInputError(p + "last_dose_h", "expected a finite number")
            object.__setattr__(self, "last_dose_h", float(self.last_dose_h))
        if not isinstance(self.route, str) or not self.route:
            raise InvalidInputError(p + "route", "expected a route name")
        if self.n_doses is not None:
            if isinstance(self.n_doses, bool) or not isinstance(self.n_doses, int) or self.n_doses < 1:
                raise InvalidInputError(p + "n_doses", f"must be a whole number >= 1, got {self.n_doses!r}")
            if self.horizon_h is not None:
                raise InvalidInputError(p + "n_doses", "give n_doses or horizon_h, not both")
        if not isinstance(self.continuous_infusion, bool):
            raise InvalidInputError(
                p + "continuous_infusion", f"expected true or false, got {self.continuous_infusion!r}"
            )
        loading = _positive_list(p + "loading_dose_options_mg", self.loading_dose_options_mg)
        object.__setattr__(self, "loading_dose_options_mg", loading)

        # Per-dose range against the dose grid.
        smallest = self.dose_step_mg if self.dose_step_mg is not None else strengths[0]
        if self.min_dose_mg is not None:
            smallest = max(smallest, self.min_dose_mg)
        if intervals:
            if self.max_dose_mg is None:
                raise InvalidInputError(
                    p + "max_dose_mg", "required: the largest single dose that may be given"
                )
            if self.min_dose_mg is not None and self.min_dose_mg > self.max_dose_mg:
                raise InvalidInputError(
                    p + "min_dose_mg",
                    f"min_dose_mg {self.min_dose_mg:g} exceeds max_dose_mg {self.max_dose_mg:g}",
                )
            if self.max_dose_mg < smallest - _REL * smallest:
                what = "the dose step" if self.dose_step_mg is not None else "the smallest strength"
                raise InvalidInputError(
                    p + "max_dose_mg",
                    f"max_dose_mg {self.max_dose_mg:g} is below {what} ({smallest:g} mg): no dose fits",
                )
        # Daily limits.
        if self.max_mg_per_kg_per_day is not None and self.weight_kg is None:
            raise InvalidInputError(p + "weight_kg", "required with max_mg_per_kg_per_day")
        if self.weight_kg is not None and self.weight_kg > 700:
            raise InvalidInputError(p + "weight_kg", f"implausible weight {self.weight_kg:g} kg")
        daily = self.daily_limit_mg
        if daily is not None and daily < smallest * (1 - _REL):
            field_name = (
                "max_mg_per_kg_per_day"
                if self.max_mg_per_kg_per_day is not None
                and self.max_mg_per_kg_per_day * (self.weight_kg or 0) <= daily
                else "max_daily_dose_mg"
            )
            raise InvalidInputError(
                p + field_name,
                f"the daily limit ({daily:g} mg) is smaller than the smallest dose ({smallest:g} mg)",
            )
        # Infusion rule: only an infusion has a duration (a bolus "over 2 h" is a contradiction).
        if self.route != "iv_infusion":
            for name in ("infusion_duration_h", "max_infusion_rate_mg_per_h"):
                if getattr(self, name) is not None:
                    raise InvalidInputError(
                        p + name,
                        f"route {self.route} is not an infusion: no duration or rate (use iv_infusion)",
                    )
        if self.route == "iv_infusion" and self.infusion_duration_h is None:
            # A continuous infusion alone runs over its 24 h: only intermittent and loading doses need one.
            if self.max_infusion_rate_mg_per_h is None and (intervals or loading):
                raise InvalidInputError(
                    p + "infusion_duration_h",
                    "an infusion needs infusion_duration_h or max_infusion_rate_mg_per_h",
                )
        if self.min_infusion_duration_h is not None and self.max_infusion_rate_mg_per_h is None:
            raise InvalidInputError(
                p + "min_infusion_duration_h", "used only with max_infusion_rate_mg_per_h"
            )
        if self.infusion_duration_h is not None and intervals:
            if self.infusion_duration_h > intervals[-1]:
                raise InvalidInputError(
                    p + "infusion_duration_h",
                    f"{self.infusion_duration_h:g} h is longer than every dosing interval",
                )
            rate = self.max_infusion_rate_mg_per_h
            if rate is not None and smallest / self.infusion_duration_h > rate * (1 + _REL):
                raise InvalidInputError(
                    p + "max_infusion_rate_mg_per_h",
                    f"even the smallest dose ({smallest:g} mg over {self.infusion_duration_h:g} h) exceeds "
                    f"{rate:g} mg/h",
                )
        # Loading doses.
        max_loading = self.max_loading_dose_mg or self.max_dose_mg
        for value in loading:
            if max_loading is not None and value > max_loading * (1 + _REL):
                raise InvalidInputError(
                    p + "loading_dose_options_mg",
                    f"loading dose {value:g} mg exceeds the limit of {max_loading:g} mg",
                )
            if daily is not None and value > daily * (1 + _REL):
                raise InvalidInputError(
                    p + "loading_dose_options_mg",
                    f"loading dose {value:g} mg exceeds the daily limit of {daily:g} mg",
                )
        # Continuous infusion.
        if self.continuous_infusion:
            if daily is None:
                raise InvalidInputError(
                    p + "max_daily_dose_mg", "a continuous infusion needs a daily limit (max_daily_dose_mg)"
                )
            if self.infusion_duration_h is not None and not intervals:
                raise InvalidInputError(p + "infusion_duration_h", "not used by a continuous infusion")
        n_options = len(self.dose_options_mg()) if intervals else 0
        if n_options > MAX_DOSE_OPTIONS:
            raise InvalidInputError(
                p + ("dose_step_mg" if self.dose_step_mg is not None else "available_strengths_mg"),
                f"{n_options} dose levels per interval (at most {MAX_DOSE_OPTIONS}); use a coarser step",
            )

    # -- derived ----------------------------------------------------------------------------------------
    def start_for(self, interval_h: float) -> float:
        """When an intermittent regimen of this interval starts: one interval after the last dose."""
        if self.last_dose_h is None:
            return self.start_h
        return max(self.start_h, self.last_dose_h + interval_h)

    @property
    def daily_limit_mg(self) -> float | None:
        limits = []
        if self.max_daily_dose_mg is not None:
            limits.append(self.max_daily_dose_mg)
        if self.max_mg_per_kg_per_day is not None and self.weight_kg is not None:
            limits.append(self.max_mg_per_kg_per_day * self.weight_kg)
        return min(limits) if limits else None

    @property
    def is_infusion(self) -> bool:
        return (
            self.route == "iv_infusion"
            or self.infusion_duration_h is not None
            or self.max_infusion_rate_mg_per_h is not None
        )

    def dose_options_mg(self) -> list[float]:
        """Every dose level allowed per administration (sorted)."""
        top = self.max_dose_mg or 0.0
        low = self.min_dose_mg or 0.0
        if self.dose_step_mg is not None:
            step = self.dose_step_mg
            count = math.floor(top / step * (1 + _REL) + _REL)
            values = [round(step * k, 9) for k in range(1, count + 1)]
        else:
            sums: set[float] = set()
            for units in range(1, self.max_units_per_dose + 1):
                for combo in itertools.combinations_with_replacement(self.available_strengths_mg, units):
                    total = round(sum(combo), 9)
                    if total <= top * (1 + _REL):
                        sums.add(total)
            values = sorted(sums)
        return [v for v in values if v >= low * (1 - _REL)]

    def daily_options_mg(self) -> list[float]:
        """Daily amounts of a continuous infusion: multiples of the dose step (or smallest strength)."""
        daily = self.daily_limit_mg
        assert daily is not None
        step = self.dose_step_mg if self.dose_step_mg is not None else self.available_strengths_mg[0]
        count = math.floor(daily / step * (1 + _REL) + _REL)
        values = [round(step * k, 9) for k in range(1, count + 1)]
        return [v for v in values if v >= (self.min_dose_mg or 0.0) * (1 - _REL)]

    def duration_for(self, dose_mg: float) -> float:
        """Infusion duration (h) of a dose under the duration rule; 0 for a bolus or an oral dose."""
        if not self.is_infusion:
            return 0.0
        if self.infusion_duration_h is not None:
            return self.infusion_duration_h
        assert self.max_infusion_rate_mg_per_h is not None
        step = self.duration_step_h
        raw = dose_mg / self.max_infusion_rate_mg_per_h
        duration = math.ceil(raw / step - 1e-9) * step
        return max(duration, self.min_infusion_duration_h or 0.0, step)

    # -- hard limits --------------------------------------------------------------------------------------
    def violations(self, regimen: Regimen) -> list[str]:
        """Every hard limit the regimen breaks (empty when it may be given)."""
        problems: list[str] = []
        rate_limit = self.max_infusion_rate_mg_per_h
        if not regimen.continuous:
            if self.max_dose_mg is not None and regimen.dose_mg > self.max_dose_mg * (1 + _REL):
                problems.append(f"dose {regimen.dose_mg:g} mg exceeds max_dose_mg {self.max_dose_mg:g}")
            if regimen.duration_h > regimen.interval_h * (1 + _REL):
                problems.append(
                    f"infusion of {regimen.duration_h:g} h outlasts the interval {regimen.interval_h:g} h"
                )
        if regimen.loading_dose_mg is not None:
            max_loading = self.max_loading_dose_mg or self.max_dose_mg
            if max_loading is not None and regimen.loading_dose_mg > max_loading * (1 + _REL):
                problems.append(f"loading dose {regimen.loading_dose_mg:g} mg exceeds {max_loading:g} mg")
        if rate_limit is not None:
            for amount, duration, name in (
                (regimen.dose_mg, regimen.duration_h, "dose"),
                (regimen.loading_dose_mg, regimen.loading_duration_h, "loading dose"),
            ):
                if amount is None:
                    continue
                if duration <= 0 or amount / duration > rate_limit * (1 + _REL):
                    problems.append(f"{name} infused faster than {rate_limit:g} mg/h")
        if self.is_infusion and regimen.duration_h <= 0:
            problems.append("an infusion needs a positive duration")
        daily = self.daily_limit_mg
        if daily is not None:
            most = max_amount_in_24h(regimen)
            if most > daily * (1 + _REL):
                problems.append(f"{most:g} mg within 24 h exceeds the daily limit of {daily:g} mg")
        return problems

    def candidates(self, target: Target) -> tuple[list[Regimen], list[str]]:
        """Every regimen within the hard limits, and notes on what was left out."""
        notes: list[str] = []
        loading_options: list[float | None] = [None]
        if self.loading_dose_options_mg:
            if target.steady_state:
                notes.append(
                    "loading doses were not evaluated: a steady-state target does not depend on them"
                )
            else:
                loading_options += list(self.loading_dose_options_mg)
        result: list[Regimen] = []
        doses = self.dose_options_mg() if self.interval_options_h else []
        for interval in self.interval_options_h:
            n_doses = self.n_doses
            if n_doses is None and self.horizon_h is not None:
                n_doses = max(1, math.ceil(self.horizon_h / interval - 1e-9))
            for dose in doses:
                for loading in loading_options:
                    regimen = Regimen(
                        dose_mg=dose,
                        interval_h=interval,
                        start_h=self.start_for(interval),
                        route=self.route,
                        duration_h=self.duration_for(dose),
                        n_doses=n_doses,
                        loading_dose_mg=loading,
                        loading_duration_h=self.duration_for(loading) if loading is not None else 0.0,
                    )
                    if not self.violations(regimen):
                        result.append(regimen)
        if self.continuous_infusion:
            n_doses = None
            if self.n_doses is not None or self.horizon_h is not None:
                span = self.horizon_h if self.horizon_h is not None else 24.0 * (self.n_doses or 1)
                n_doses = max(1, math.ceil(span / 24.0 - 1e-9))
            for daily in self.daily_options_mg():
                for loading in loading_options:
                    regimen = Regimen(
                        dose_mg=daily,
                        interval_h=24.0,
                        start_h=self.start_h,
                        route=self.route,
                        duration_h=24.0,
                        n_doses=n_doses,
                        loading_dose_mg=loading,
                        loading_duration_h=self.duration_for(loading) if loading is not None else 0.0,
                        continuous=True,
                    )
                    if not self.violations(regimen):
                        result.append(regimen)
        if not result:
            raise InvalidInputError("constraints", "no regimen satisfies every limit; check the limits")
        return result, notes

    @classmethod
    def from_mapping(cls, document: Mapping[str, Any], *, path: str = "constraints") -> RegimenConstraints:
        if not isinstance(document, Mapping):
            raise InvalidInputError(path, "expected an object")
        values = {key: document[key] for key in _CONSTRAINT_FIELDS if key in document}
        for key in ("interval_options_h", "available_strengths_mg", "loading_dose_options_mg"):
            if isinstance(values.get(key), list):
                values[key] = tuple(values[key])
        try:
            return cls(**values)
        except InvalidInputError as exc:
            field_name = exc.path.removeprefix("constraints")
            raise InvalidInputError(f"{path}{field_name}", exc.message) from None


def max_amount_in_24h(regimen: Regimen) -> float:
    """Largest amount started (intermittent) or infused (continuous) within any 24 h of the regimen."""
    if regimen.continuous:
        rate = regimen.dose_mg / regimen.interval_h
        base = rate * 24.0
        if regimen.loading_dose_mg is None:
            return base
        return max(base, regimen.loading_dose_mg + rate * max(0.0, 24.0 - regimen.loading_duration_h))
    tau = regimen.interval_h
    count = regimen.n_doses if regimen.n_doses is not None else 2 * math.ceil(24.0 / tau) + 2
    times = [regimen.maintenance_start_h + k * tau for k in range(count)]
    amounts = [regimen.dose_mg] * count
    if regimen.loading_dose_mg is not None:
        times.insert(0, regimen.start_h)
        amounts.insert(0, regimen.loading_dose_mg)
    t = np.array(times)
    a = np.array(amounts)
    # Windows [t_i, t_i + 24): the maximum over all windows starts at an administration.
    inside = (t[None, :] >= t[:, None]) & (t[None, :] < t[:, None] + 24.0 - 1e-9)
    return float((inside * a[None, :]).sum(axis=1).max())


# -- the search ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CandidateResult:
    """One evaluated regimen: the metric over posterior draws and the probability of target attainment."""

    regimen: Regimen
    median: float
    ci_low: float  # 5th percentile over draws
    ci_high: float  # 95th percentile
    pta: float  # share of draws with low <= metric <= high
    p_toxic: float | None  # share of draws above any toxicity marker (None: the target has none)
    rationale: str
    p_toxic_by_limit: tuple[tuple[str, float], ...] = ()  # (marker, share of draws above it)
    exceeds_toxicity: bool = False  # P(toxic) above the target's limit
    exposure: tuple[dict[str, Any], ...] = ()  # AUC24, trough, peak (or Css): median and 90 % interval

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.regimen.as_dict(),
            "metric_median": self.median,
            "metric_ci90": [self.ci_low, self.ci_high],
            "pta": self.pta,
            "p_toxic": self.p_toxic,
            "p_toxic_by_limit": [{"label": label, "p": p} for label, p in self.p_toxic_by_limit],
            "exceeds_toxicity": self.exceeds_toxicity,
            "exposure": list(self.exposure),
            "rationale": self.rationale,
        }


@dataclass(frozen=True)
class RegimenSearchResult:
    """Ranked regimens (best first). ``success`` is False when the best PTA is below ``min_pta``."""

    success: bool
    message: str
    target: Target
    unit: str
    regimens: tuple[CandidateResult, ...]
    n_candidates: int
    n_evaluated: int
    n_draws: int
    n_simulations: int
    method: str  # "linear scaling" or "direct simulation"
    min_pta: float
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "message": self.message,
            "target": {**self.target.as_dict(), "unit": self.unit},
            "regimens": [c.as_dict() for c in self.regimens],
            "n_candidates": self.n_candidates,
            "n_evaluated": self.n_evaluated,
            "n_draws": self.n_draws,
            "method": self.method,
            "min_pta": self.min_pta,
            "warnings": list(self.warnings),
        }


class _Draws:
    """Posterior draws split into η, estimated κ, and fresh κ for later occasions (drawn once)."""

    def __init__(
        self,
        objective: Objective,
        theta: np.ndarray,
        past: PatientRecord,
        rng: np.random.Generator,
        extra_occasions: int,
    ):
        model = objective.model
        self.n = theta.shape[0]
        self.eta = theta[:, : model.n_eta]
        self.n_kappa = model.n_kappa
        self.n_est = objective.n_occasions_estimated
        self.estimated = None
        self.fresh = None
        # Steady-state measurements per unit dose, shared by the target, its toxicity markers and the exposure
        # of the best regimens (the same record up to the dose): see _evaluate_group_linear.
        self.per_unit_dose: dict[tuple, Any] = {}
        if self.n_kappa:
            self.estimated = theta[:, model.n_eta :].reshape(self.n, self.n_est, self.n_kappa)
            past_occasions = len({d.time_h for d in past.doses})
            n_fresh = max(0, past_occasions - self.n_est) + extra_occasions
            self.fresh = rng.multivariate_normal(
                np.zeros(self.n_kappa), model.iov_omega, size=(self.n, n_fresh), method="cholesky"
            )

    def kappa(self, simulator: PatientSimulator, *, with_past: bool) -> np.ndarray | None:
        """κ (S, n_occasions, n_kappa) for a candidate's record.

        A record that starts with the patient's past doses (``with_past``) keeps the estimated κ of the
        estimated occasions; a steady-state record (the past left out, see :func:`_record_for`) has only
        future occasions. Later occasions take the fresh κ in order, the same for every candidate.
        """
        if not self.n_kappa:
            return None
        assert self.estimated is not None and self.fresh is not None
        n_occ = simulator.n_occasions
        kappa = np.zeros((self.n, n_occ, self.n_kappa))
        n_est = min(self.n_est, n_occ) if with_past else 0
        kappa[:, :n_est] = self.estimated[:, :n_est]
        n_future = n_occ - n_est
        if n_future > self.fresh.shape[1]:  # pragma: no cover - sized for every candidate shape
            raise AssertionError("not enough inter-occasion draws")
        kappa[:, n_est:] = self.fresh[:, :n_future]
        return kappa


def _shape_key(regimen: Regimen) -> tuple:
    return (
        regimen.continuous,
        regimen.interval_h,
        regimen.duration_h,
        regimen.n_doses,
        regimen.loading_dose_mg is not None,
        regimen.loading_duration_h,
    )


_WHOLE_INTERVAL_AUC = frozenset({"auc_tau", "css", "auc_mic"})


def _duration_free(target: Target, past: PatientRecord, regimen: Regimen) -> bool:
    """True when the metric is the AUC over a whole steady-state interval with constant parameters."""
    whole_interval = target.metric in _WHOLE_INTERVAL_AUC or (
        target.metric == "auc24" and target.window_h is None
    )
    if not (target.steady_state and whole_interval):
        return False
    end = regimen.start_h + regimen.interval_h
    return not any(regimen.start_h <= c.time_h < end for c in past.covariate_changes)


def search_regimens(
    *,
    model: PopulationModel,
    record: PatientRecord,
    posterior_theta: np.ndarray,
    objective: Objective,
    target: Target,
    constraints: RegimenConstraints,
    rng: np.random.Generator,
    top: int = 5,
    min_pta: float = 0.5,
    pta_resolution: float = 0.01,
    use_linearity: bool = True,
    max_draws: int | None = None,
) -> RegimenSearchResult:
    """Rank the regimens allowed by ``constraints`` by their probability of reaching ``target``.

    Parameters
    ----------
    model, record : the patient (past doses, levels, covariates).
    posterior_theta : (S, dim) posterior draws θ = [η, κ of estimated occasions] (``PosteriorSample.theta``).
    objective : the patient's :class:`Objective` (for the layout of θ).
    target, constraints : what to reach, and what may be given.
    rng : for the κ of future occasions (IOV models) and the subset of draws (``max_draws``).
    top : number of regimens returned.
    min_pta : below this best PTA the search reports ``success=False`` (still listing the closest).
    pta_resolution : PTAs are compared after rounding to this resolution (whole percent by default).
    use_linearity : scale one simulation per shape for linear models (see the module docstring);
        False simulates every candidate.
    max_draws : use at most this many draws (a random subset) for nonlinear models or direct simulation.

    Returns
    -------
    :class:`RegimenSearchResult` with at most ``top`` regimens, best first, none breaking a hard limit.
    """
    if top < 1:
        raise InvalidInputError("top", f"must be at least 1, got {top}")
    if not 0 <= min_pta <= 1:
        raise InvalidInputError("min_pta", f"must lie in [0, 1], got {min_pta}")
    unit = target.check_model(model)
    if constraints.route not in model.routes:
        raise InvalidInputError(
            "constraints.route", f"unknown route '{constraints.route}' (model has {', '.join(model.routes)})"
        )
    theta = np.atleast_2d(np.asarray(posterior_theta, dtype=float))
    if theta.shape[1] != objective.dimension or theta.shape[0] < 1:
        raise InvalidInputError(
            "posterior_theta", f"expected draws of dimension {objective.dimension}, got shape {theta.shape}"
        )
    if not np.all(np.isfinite(theta)):
        raise InvalidInputError("posterior_theta", "contains non-finite values")
    start = constraints.start_h
    if record.observations:
        last_level = max(o.time_h for o in record.observations)
        if start < last_level - 1e-9:
            raise InvalidInputError(
                "constraints.start_h",
                f"the regimen starts at {start:g} h, before the last level ({last_level:g} h)",
            )
    warnings: list[str] = []
    past, dropped = truncate_record(record, start)
    if dropped:
        warnings.append(
            f"{dropped} administration(s) scheduled from {start:g} h on were replaced by the candidates"
        )
    candidates, notes = constraints.candidates(target)
    warnings += notes
    linear = use_linearity and model.is_linear
    if not linear and max_draws is not None and theta.shape[0] > max_draws:
        theta = theta[np.sort(rng.choice(theta.shape[0], size=max_draws, replace=False))]
    draws = _Draws(objective, theta, past, rng, extra_occasions=2)
    if not linear:
        warnings.append(
            "candidates simulated one by one"
            + (" (nonlinear model)" if not model.is_linear else "")
            + f" over {theta.shape[0]} draws"
        )

    evaluate = _MetricEvaluation(model=model, past=past, draws=draws, candidates=candidates, linear=linear)
    results = _score(target, evaluate, top=top)
    for result in results:
        if constraints.violations(result.regimen):  # pragma: no cover - candidates() keeps allowed ones
            raise AssertionError(f"candidate breaks a hard limit: {result.regimen}")
    toxic_limit = target.p_toxic_limit
    results.sort(key=lambda c: ranking_key(c, target, pta_resolution))
    best = [replace(c, rationale=rationale(c, target, unit)) for c in results[:top]]
    best = _with_exposure(best, model=model, past=past, draws=draws, linear=linear)
    success = best[0].pta >= min_pta and not best[0].exceeds_toxicity
    if best[0].exceeds_toxicity:
        message = (
            f"every candidate exceeds the toxicity limit (P(toxic) above {toxic_limit * 100:.0f} %); "
            f"closest: {best[0].rationale}"
        )
    else:
        message = "" if success else f"no candidate reaches the target; closest: {best[0].rationale}"
    n_simulations = evaluate.n_simulations
    return RegimenSearchResult(
        success=success,
        message=message,
        target=target,
        unit=unit,
        regimens=tuple(best),
        n_candidates=len(candidates),
        n_evaluated=len(results),
        n_draws=theta.shape[0],
        n_simulations=n_simulations,
        method="linear scaling" if linear else "direct simulation",
        min_pta=min_pta,
        warnings=tuple(warnings),
    )


def _score(target: Target, evaluate: _MetricEvaluation, *, top: int) -> list[CandidateResult]:
    """Every evaluated candidate with its metric quantiles, PTA and P(toxic) (unranked, no rationale)."""
    model = evaluate.model
    values = evaluate(target, top=top)
    evaluated = sorted(values)
    matrix = np.stack([values[i] for i in evaluated], axis=1)  # (S, K)
    if not np.all(np.isfinite(matrix)):
        raise ParameterValueError("the target metric is not finite for some posterior draws")
    quantiles = quantiles_over_draws(matrix, [0.05, 0.5, 0.95])
    pta = target.attained(matrix).mean(axis=0)
    # Toxicity: the share of draws above any marker, each marker's metric evaluated on the same draws.
    toxic_any = np.zeros(matrix.shape, dtype=bool)
    by_limit: list[tuple[str, np.ndarray]] = []
    for limit in target.safety_limits:
        limit.target.check_model(model)
        if limit.target == target.metric_only():
            marker = matrix
        else:
            marker_values = evaluate(limit.target, only=evaluated)
            marker = np.stack([marker_values[i] for i in evaluated], axis=1)
        over = marker > limit.above
        toxic_any |= over
        by_limit.append((limit.describe(model), over.mean(axis=0)))
    p_toxic = toxic_any.mean(axis=0) if by_limit else None
    toxic_limit = target.p_toxic_limit
    results = []
    for column, index in enumerate(evaluated):
        tox = None if p_toxic is None else float(p_toxic[column])
        results.append(
            CandidateResult(
                regimen=evaluate.candidates[index],
                median=float(quantiles[1, column]),
                ci_low=float(quantiles[0, column]),
                ci_high=float(quantiles[2, column]),
                pta=float(pta[column]),
                p_toxic=tox,
                rationale="",
                p_toxic_by_limit=tuple((label, float(p[column])) for label, p in by_limit),
                exceeds_toxicity=tox is not None and toxic_limit is not None and tox > toxic_limit + 1e-12,
            )
        )
    return results


# The exposure of a regimen in the order: daily AUC, trough and peak (Cmax) over a steady-state interval.
_EXPOSURE = (
    ("auc24", "AUC24", {}),
    ("trough", "trough", {}),
    ("cmax", "peak (Cmax)", {}),
)


def _with_exposure(
    results: list[CandidateResult],
    *,
    model: PopulationModel,
    past: PatientRecord,
    draws: _Draws,
    linear: bool,
) -> list[CandidateResult]:
    """The results with their steady-state AUC24, trough and peak (median, 90 % interval) on the same draws.

    A continuous infusion has no trough or peak: its steady-state concentration (Css) and AUC24 are given.
    """
    evaluate = _MetricEvaluation(
        model=model, past=past, draws=draws, candidates=[r.regimen for r in results], linear=linear
    )
    indexes = list(range(len(results)))
    exposure: list[list[dict[str, Any]]] = [[] for _ in results]
    metrics = list(_EXPOSURE)
    if any(r.regimen.continuous for r in results):
        metrics.append(("css", "Css", {}))
    for metric, label, extra in metrics:
        summary_target = Target(metric=metric, low=0.0, **extra)
        unit = summary_target.unit_for(model)
        values = evaluate(summary_target, only=indexes)
        for i, result in enumerate(results):
            continuous = result.regimen.continuous
            if (
                i not in values
                or (continuous and metric in ("trough", "cmax"))
                or (not continuous and metric == "css")
            ):
                continue
            low, median, high = np.quantile(values[i], [0.05, 0.5, 0.95])
            exposure[i].append(
                {
                    "metric": metric,
                    "label": label,
                    "unit": unit,
                    "median": float(median),
                    "ci90": [float(low), float(high)],
                }
            )
    return [replace(r, exposure=tuple(e)) for r, e in zip(results, exposure, strict=True)]


def evaluate_regimens(
    *,
    model: PopulationModel,
    record: PatientRecord,
    posterior_theta: np.ndarray,
    objective: Objective,
    target: Target,
    regimens: Sequence[Regimen],
    rng: np.random.Generator,
) -> list[CandidateResult]:
    """The figures of given regimens (a what-if, a pharmacist's change), as the search gives a candidate's.

    The regimens start at their own ``start_h`` (all the same); the record's administrations from then on are
    replaced by them. Returns one result per regimen, in order, with its rationale and exposure.
    """
    if not regimens:
        raise InvalidInputError("regimens", "give at least one regimen")
    starts = {r.start_h for r in regimens}
    if len(starts) != 1:
        raise InvalidInputError("regimens", "the regimens must start at the same time")
    unit = target.check_model(model)
    for r in regimens:
        if r.route not in model.routes:
            raise InvalidInputError(
                "regimen.route", f"unknown route '{r.route}' (model has {', '.join(model.routes)})"
            )
    theta = np.atleast_2d(np.asarray(posterior_theta, dtype=float))
    if theta.shape[1] != objective.dimension or not np.all(np.isfinite(theta)):
        raise InvalidInputError(
            "posterior_theta", f"expected finite draws of dimension {objective.dimension}"
        )
    past, _ = truncate_record(record, regimens[0].start_h)
    draws = _Draws(objective, theta, past, rng, extra_occasions=2)
    linear = model.is_linear
    evaluate = _MetricEvaluation(
        model=model, past=past, draws=draws, candidates=list(regimens), linear=linear
    )
    scored = _score(target, evaluate, top=len(regimens))
    scored = [replace(c, rationale=rationale(c, target, unit)) for c in scored]
    return _with_exposure(scored, model=model, past=past, draws=draws, linear=linear)


class _MetricEvaluation:
    """A metric (N draws) for every candidate regimen: by linear scaling where exact, else by simulation."""

    def __init__(
        self,
        *,
        model: PopulationModel,
        past: PatientRecord,
        draws: _Draws,
        candidates: list[Regimen],
        linear: bool,
    ) -> None:
        self.model, self.past, self.draws = model, past, draws
        self.candidates, self.linear = candidates, linear
        self.n_simulations = 0

    def __call__(
        self, target: Target, *, top: int = 5, only: Sequence[int] | None = None
    ) -> dict[int, np.ndarray]:
        """Values per candidate index; ``only``: the candidates needed (nonlinear models simulate no more)."""
        model, past, draws, candidates = self.model, self.past, self.draws, self.candidates
        output = target.output_name(model)
        groups: dict[tuple, list[int]] = {}
        for i, regimen in enumerate(candidates):
            if only is not None and not self.linear and i not in only:
                continue
            key = _shape_key(regimen)
            if self.linear and _duration_free(target, past, regimen):
                key = (regimen.continuous, regimen.interval_h, "any duration")
            groups.setdefault(key, []).append(i)
        values: dict[int, np.ndarray] = {}
        if self.linear and not target.steady_state and not model.n_kappa:
            self.n_simulations += _evaluate_by_superposition(
                target, model, past, draws, output, candidates, values
            )
            return values
        for members in groups.values():
            chosen = [candidates[i] for i in members]
            if self.linear:
                self.n_simulations += _evaluate_group_linear(
                    target, model, past, draws, output, chosen, members, values
                )
            else:
                self.n_simulations += _evaluate_group_direct(
                    target, model, past, draws, chosen, members, values, top, stop_early=only is None
                )
        return values


def ranking_key(candidate: CandidateResult, target: Target, pta_resolution: float = 0.01) -> tuple:
    """Sort key (ascending = better): within the toxicity limit, PTA (rounded), then P(toxic) (rounded),
    closeness to the middle, simplicity. A candidate whose P(toxic) exceeds the target's limit never ranks
    before one within it."""
    pta = round(candidate.pta / pta_resolution) if pta_resolution > 0 else candidate.pta
    middle = target.middle
    if math.isfinite(target.high) and target.high > target.low:
        spread = target.high - target.low
    else:
        spread = abs(middle) if middle > 0 else 1.0
    # Rounded so that equal exposures (e.g. the same daily dose split differently) tie up to floating-point
    # noise and simplicity decides.
    closeness = round(abs(candidate.median - middle) / spread, 6)
    regimen = candidate.regimen
    toxic = 0.0 if candidate.p_toxic is None else candidate.p_toxic
    if pta_resolution > 0:
        toxic = round(toxic / pta_resolution)
    return (
        candidate.exceeds_toxicity,
        -pta,
        toxic,  # equal PTA: the safer first
        closeness,
        regimen.continuous,
        -regimen.interval_h,
        regimen.dose_mg,
        regimen.loading_dose_mg or 0.0,
    )


def _number(value: float) -> str:
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def rationale(candidate: CandidateResult, target: Target, unit: str) -> str:
    """``PTA 87 %: AUC24 median 512 mg·h/L (90 % CrI 430-610); q12h 1250 mg over 1.5 h``.

    Fractions of the interval are shown in percent (``fT>MIC median 72 % (90 % CrI 55-90 %)``).
    """
    scale = 100.0 if unit == "fraction" else 1.0
    low, median, high = (scale * v for v in (candidate.ci_low, candidate.median, candidate.ci_high))
    if unit in ("fraction", "%"):
        shown = f"median {median:.0f} % (90 % CrI {low:.0f}-{high:.0f} %)"
    else:
        suffix = "" if unit == "ratio" else f" {unit}"
        shown = f"median {_number(median)}{suffix} (90 % CrI {_number(low)}-{_number(high)})"
    text = f"PTA {candidate.pta * 100:.0f} %: {target.label} {shown}; {candidate.regimen.describe()}"
    if candidate.p_toxic is not None:
        markers = " or ".join(label for label, _ in candidate.p_toxic_by_limit)
        text += f"; P(toxic: {markers}) {candidate.p_toxic * 100:.0f} %"
        if candidate.exceeds_toxicity:
            text += f", above the limit of {(target.p_toxic_limit or 0) * 100:.0f} %"
    return text


def _record_for(
    past: PatientRecord, regimen: Regimen, target: Target, until_h: float | None
) -> PatientRecord:
    """The record a candidate is evaluated on.

    At steady state the regimen's steady-state dose replaces every earlier amount, so the past doses are
    left out (exact, and it keeps the simulation small); covariates and their changes stay.
    """
    if target.steady_state:
        return replace(past, doses=regimen.doses(steady_state=True))
    return extend_record(past, regimen.doses(steady_state=False, until_h=until_h))


def _plan(target: Target, model: PopulationModel, record: PatientRecord, regimen: Regimen) -> MetricPlan:
    return plan_for_record(
        target,
        model,
        record,
        regimen_start_h=regimen.start_h,
        interval_h=regimen.interval_h,
        infusion_duration_h=regimen.duration_h,
    )


def _until(target: Target, model: PopulationModel, past: PatientRecord, regimen: Regimen) -> float | None:
    """End of the target window (absolute) for regimens without a dose count; None at steady state."""
    if target.steady_state or regimen.n_doses is not None:
        return None
    first = min((d.time_h for d in past.doses), default=regimen.start_h)
    plan = metric_plan(
        target,
        model,
        regimen_start_h=regimen.start_h,
        interval_h=regimen.interval_h,
        infusion_duration_h=regimen.duration_h,
        first_dose_h=first,
    )
    return plan.end_h


def _evaluate_group_linear(
    target: Target,
    model: PopulationModel,
    past: PatientRecord,
    draws: _Draws,
    output: str,
    regimens: list[Regimen],
    indexes: list[int],
    values: dict[int, np.ndarray],
) -> int:
    """Metric of every regimen of one shape from one or a few reference simulations (linear models)."""
    reference = regimens[len(regimens) // 2]
    until = _until(target, model, past, reference)

    def simulate(regimen: Regimen) -> tuple[PatientSimulator, MetricPlan, np.ndarray | None]:
        record = _record_for(past, regimen, target, until)
        simulator = PatientSimulator(model, record)
        return (
            simulator,
            _plan(target, model, record, regimen),
            draws.kappa(simulator, with_past=not target.steady_state),
        )

    if target.steady_state:
        # The steady-state dose replaces the past: the metric is proportional to the dose. A measurement per
        # unit dose is kept for the other targets and markers that measure the same regimen shape the same
        # way (e.g. a Cmax/MIC target and the exposure's Cmax, a trough marker and the exposure's trough).
        d_ref = reference.dose_mg
        record = _record_for(past, reference, target, until)
        plan = _plan(target, model, record, reference)
        key = (
            reference.continuous,
            reference.interval_h,
            reference.duration_h,
            reference.n_doses,
            reference.start_h,
            reference.route,
            plan.kind,
            plan.start_h,
            plan.end_h,
            output,
        )
        per_unit = draws.per_unit_dose.get(key)
        n_sim = 0
        if per_unit is None:
            simulator = PatientSimulator(model, record)
            kappa = draws.kappa(simulator, with_past=False)
            n_sim = 1
            if plan.kind == "time_above":
                grid, _, curve = measure_curve(plan, simulator, draws.eta, kappa, output)
                per_unit = (grid, curve / d_ref)
            else:
                per_unit = measure(plan, simulator, draws.eta, kappa, output) / d_ref
            draws.per_unit_dose[key] = per_unit
        if plan.kind == "time_above":
            assert plan.threshold is not None
            grid, curve = per_unit
            # The time above c for dose D: the unit-dose curve's time above c / D.
            thresholds = np.array([plan.threshold / regimen.dose_mg for regimen in regimens])
            hours = time_above_thresholds(grid, curve, thresholds)
            for column, index in enumerate(indexes):
                values[index] = plan.factor * hours[:, column]
        else:
            for regimen, index in zip(regimens, indexes, strict=True):
                values[index] = plan.factor * per_unit * regimen.dose_mg
        return n_sim
    # Not at steady state: past exposure + L·u_L + D·u_D (affine in the amounts).
    d_ref = reference.dose_mg
    l_ref = reference.loading_dose_mg
    simulator, plan, kappa = simulate(reference)
    if not plan.affine_in_dose:  # pragma: no cover - every metric not at steady state is an AUC
        raise AssertionError(plan.kind)
    base = plan.factor * measure(plan, simulator, draws.eta, kappa, output)
    simulator, plan_d, kappa = simulate(reference.with_dose(2 * d_ref))
    per_dose = (plan_d.factor * measure(plan_d, simulator, draws.eta, kappa, output) - base) / d_ref
    n_sim = 2
    per_loading = None
    if l_ref is not None:
        simulator, plan_l, kappa = simulate(reference.with_dose(d_ref, 2 * l_ref))
        per_loading = (plan_l.factor * measure(plan_l, simulator, draws.eta, kappa, output) - base) / l_ref
        n_sim += 1
    for regimen, index in zip(regimens, indexes, strict=True):
        value = base + (regimen.dose_mg - d_ref) * per_dose
        if per_loading is not None:
            assert regimen.loading_dose_mg is not None and l_ref is not None
            value = value + (regimen.loading_dose_mg - l_ref) * per_loading
        values[index] = value
    return n_sim


def _evaluate_by_superposition(
    target: Target,
    model: PopulationModel,
    past: PatientRecord,
    draws: _Draws,
    output: str,
    regimens: list[Regimen],
    values: dict[int, np.ndarray],
) -> int:
    """Targets not at steady state, linear model without IOV: metric = past + D·u_maintenance + L·u_loading.

    Without inter-occasion variability the parameters over time do not depend on the doses, so the
    contributions of the past doses, of a regimen's maintenance doses and of its loading dose can be
    simulated on separate records (same covariates and resets) and added: one simulation of the past, one
    per maintenance shape and one per loading infusion duration, each with few doses.
    """
    first = min((d.time_h for d in past.doses), default=regimens[0].start_h)

    def plan_of(regimen: Regimen) -> MetricPlan:
        return metric_plan(
            target,
            model,
            regimen_start_h=regimen.start_h,
            interval_h=regimen.interval_h,
            infusion_duration_h=regimen.duration_h,
            first_dose_h=first,
        )

    n_sim = 0
    # Candidates of different intervals may start at different times (one interval after the last dose), so
    # their windows differ: each window has its own baseline and contributions.
    by_plan: dict[MetricPlan, list[int]] = {}
    for index, regimen in enumerate(regimens):
        by_plan.setdefault(plan_of(regimen), []).append(index)
    for plan, members in by_plan.items():
        if not plan.affine_in_dose:  # pragma: no cover - every metric not at steady state is an AUC
            raise AssertionError(plan.kind)
        n_sim += _superpose(plan, model, past, draws, output, regimens, members, values)
    return n_sim


def _superpose(
    plan: MetricPlan,
    model: PopulationModel,
    past: PatientRecord,
    draws: _Draws,
    output: str,
    regimens: list[Regimen],
    members: list[int],
    values: dict[int, np.ndarray],
) -> int:
    """:func:`_evaluate_by_superposition` for the candidates that measure the same window."""
    n_sim = 0

    def contribution(doses: Sequence[Dose]) -> np.ndarray:
        nonlocal n_sim
        simulator = PatientSimulator(model, replace(past, doses=tuple(doses)))
        n_sim += 1
        return plan.factor * measure(plan, simulator, draws.eta, None, output)

    baseline = contribution(past.doses) if past.doses else np.zeros(draws.n)
    maintenance: dict[tuple, np.ndarray] = {}
    loading: dict[tuple[float, float], np.ndarray] = {}
    for index in members:
        regimen = regimens[index]
        shape = replace(regimen, loading_dose_mg=None, start_h=regimen.maintenance_start_h, dose_mg=1.0)
        key = (shape.start_h, shape.interval_h, shape.duration_h, shape.n_doses, shape.continuous)
        if key not in maintenance:
            doses = shape.doses(steady_state=False, until_h=plan.end_h)
            maintenance[key] = contribution(doses) if doses else np.zeros(draws.n)
        value = baseline + regimen.dose_mg * maintenance[key]
        if regimen.loading_dose_mg is not None:
            duration = regimen.loading_duration_h
            if (duration, regimen.start_h) not in loading:
                unit = Dose(regimen.start_h, 1.0, route=regimen.route, duration_h=duration or None)
                loading[(duration, regimen.start_h)] = contribution([unit])
            value = value + regimen.loading_dose_mg * loading[(duration, regimen.start_h)]
        values[index] = value
    return n_sim


def _evaluate_group_direct(
    target: Target,
    model: PopulationModel,
    past: PatientRecord,
    draws: _Draws,
    regimens: list[Regimen],
    indexes: list[int],
    values: dict[int, np.ndarray],
    top: int,
    *,
    stop_early: bool = True,
) -> int:
    """Simulate each regimen of one shape; stop raising the dose once every draw is above the range."""
    until = _until(target, model, past, regimens[0])
    by_loading: dict[float | None, list[tuple[Regimen, int]]] = {}
    for regimen, index in zip(regimens, indexes, strict=True):
        by_loading.setdefault(regimen.loading_dose_mg, []).append((regimen, index))
    n_sim = 0
    for members in by_loading.values():
        members.sort(key=lambda item: item[0].dose_mg)
        above_since = None
        for position, (regimen, index) in enumerate(members):
            if above_since is not None and position - above_since > top:
                break
            record = _record_for(past, regimen, target, until)
            simulator = PatientSimulator(model, record)
            result = metric_values(
                target,
                simulator,
                draws.eta,
                draws.kappa(simulator, with_past=not target.steady_state),
                regimen_start_h=regimen.start_h,
                interval_h=regimen.interval_h,
                infusion_duration_h=regimen.duration_h,
            )
            n_sim += 1
            values[index] = result
            if stop_early and above_since is None and np.all(result > target.high):
                above_since = position
    return n_sim


def parse_recommendation_request(
    document: Mapping[str, Any], *, path: str = "target"
) -> tuple[Target, RegimenConstraints]:
    """Split a case file's ``target`` object into the target and the regimen constraints.

    Keys belong to :class:`~mipd_engine.targets.Target` or to :class:`RegimenConstraints`; anything else is
    refused with its path.
    """
    if not isinstance(document, Mapping):
        raise InvalidInputError(path, "expected an object")
    unknown = set(document) - TARGET_FIELDS - CONSTRAINT_FIELDS
    if unknown:
        raise InvalidInputError(f"{path}.{sorted(unknown)[0]}", "unknown field")
    target = Target.from_mapping(document, path=path)
    constraints = RegimenConstraints.from_mapping(
        {k: v for k, v in document.items() if k in CONSTRAINT_FIELDS}, path=path
    )
    return target, constraints
