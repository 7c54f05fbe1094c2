"""A patient's record as the engine sees it: doses, observations and covariates over time.

All times are in hours from an arbitrary origin (usually the first dose); amounts in mg.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from .errors import InvalidInputError

if TYPE_CHECKING:
    from .model import ErrorModel


@dataclass(frozen=True)
class Dose:
    """One dose record (NONMEM's EVID=1 row, possibly repeated).

    Parameters
    ----------
    time_h : administration time of the first dose, h.
    amount_mg : amount per dose, mg (> 0).
    route : a route of the model (``"iv_infusion"``, ``"oral"``...), or None when ``compartment`` is given.
    compartment : the compartment the dose enters (instead of a route).
    duration_h : infusion duration, h; ``None`` or 0 for a bolus or a first-order absorption dose.
    rate_mg_per_h : infusion rate (NONMEM RATE > 0), alternative to ``duration_h``.
    modeled_duration : the duration comes from the model's ``inputs.<cmt>.duration_h`` (NONMEM RATE=-2).
    interval_h : dosing interval for repeated doses (NONMEM II).
    additional : number of additional doses after the first (NONMEM ADDL).
    steady_state : the system is at steady state on this regimen when the dose is given (NONMEM SS=1:
        amounts from earlier doses are replaced by the steady-state amounts).
    """

    time_h: float
    amount_mg: float
    route: str | None = None
    compartment: str | None = None
    duration_h: float | None = None
    rate_mg_per_h: float | None = None
    modeled_duration: bool = False
    interval_h: float | None = None
    additional: int = 0
    steady_state: bool = False

    def __post_init__(self) -> None:
        _require_finite("time_h", self.time_h)
        _require_finite("amount_mg", self.amount_mg)
        if self.amount_mg <= 0:
            raise InvalidInputError("amount_mg", f"a dose must be positive, got {self.amount_mg} mg")
        if self.route is None and self.compartment is None:
            raise InvalidInputError("route", "a dose needs a route or a compartment")
        if self.duration_h is not None:
            _require_finite("duration_h", self.duration_h)
            if self.duration_h < 0:
                raise InvalidInputError("duration_h", f"must not be negative, got {self.duration_h}")
        if self.rate_mg_per_h is not None:
            _require_finite("rate_mg_per_h", self.rate_mg_per_h)
            if self.rate_mg_per_h <= 0:
                raise InvalidInputError("rate_mg_per_h", f"must be positive, got {self.rate_mg_per_h}")
            if self.duration_h:
                raise InvalidInputError("rate_mg_per_h", "give either a rate or a duration, not both")
        if self.additional < 0 or int(self.additional) != self.additional:
            raise InvalidInputError("additional", "must be a whole number >= 0")
        if self.additional > 0 or self.steady_state:
            if self.interval_h is None or not self.interval_h > 0:
                raise InvalidInputError(
                    "interval_h", "repeated or steady-state doses need a positive interval_h"
                )

    @property
    def infusion_duration_h(self) -> float:
        """Duration of a zero-order input given by the record (0 for a bolus); modeled durations excluded."""
        if self.rate_mg_per_h is not None:
            return self.amount_mg / self.rate_mg_per_h
        return float(self.duration_h or 0.0)

    def administration_times_h(self) -> list[float]:
        """Times of every administration this record stands for."""
        step = self.interval_h or 0.0
        return [self.time_h + i * step for i in range(int(self.additional) + 1)]


@dataclass(frozen=True)
class Observation:
    """One measured level. ``value`` None with an ``lloq`` means 'below the limit of quantification'.

    ``error`` (optional) is the residual error of this measurement when it is not the output's: a point of a
    continuous monitoring device carries the device's declared error model instead of the assay's.
    """

    time_h: float
    value: float | None
    output: str | None = None
    lloq: float | None = None
    error: ErrorModel | None = None

    def __post_init__(self) -> None:
        _require_finite("time_h", self.time_h)
        if self.value is None:
            if self.lloq is None:
                raise InvalidInputError("value", "an observation needs a value, or null with an lloq")
        else:
            _require_finite("value", self.value)
            if self.value < 0:
                raise InvalidInputError("value", f"a concentration cannot be negative, got {self.value}")
        if self.lloq is not None:
            _require_finite("lloq", self.lloq)
            if self.lloq <= 0:
                raise InvalidInputError("lloq", f"must be positive, got {self.lloq}")

    @property
    def below_lloq(self) -> bool:
        return self.value is None


@dataclass(frozen=True)
class CovariateChange:
    """New covariate values that apply for times strictly after ``time_h``."""

    time_h: float
    values: Mapping[str, float]

    def __post_init__(self) -> None:
        _require_finite("time_h", self.time_h)
        object.__setattr__(self, "values", MappingProxyType(dict(self.values)))


@dataclass(frozen=True)
class PatientRecord:
    """Everything the engine needs about one patient (one NONMEM ID).

    ``covariates`` are the values at the start; ``covariate_changes`` apply from their time on (strictly
    after it, so an observation at the change time still uses the earlier values, as NONMEM does).
    ``resets_h`` are times at which every compartment is emptied (NONMEM EVID 3 and 4).
    """

    covariates: Mapping[str, float] = field(default_factory=dict)
    doses: tuple[Dose, ...] = ()
    observations: tuple[Observation, ...] = ()
    covariate_changes: tuple[CovariateChange, ...] = ()
    resets_h: tuple[float, ...] = ()
    id: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "covariates", MappingProxyType(dict(self.covariates)))
        object.__setattr__(self, "doses", tuple(sorted(self.doses, key=lambda d: d.time_h)))
        object.__setattr__(self, "observations", tuple(self.observations))
        object.__setattr__(
            self, "covariate_changes", tuple(sorted(self.covariate_changes, key=lambda c: c.time_h))
        )
        object.__setattr__(self, "resets_h", tuple(sorted(self.resets_h)))

    def covariate_schedule(self) -> list[tuple[float, dict[str, float]]]:
        """Piecewise-constant covariates as ``[(start_h, values), ...]``; values hold for t > start_h.

        The first entry starts at -inf.
        """
        current = dict(self.covariates)
        schedule: list[tuple[float, dict[str, float]]] = [(-math.inf, dict(current))]
        for change in self.covariate_changes:
            current = {**current, **change.values}
            if schedule[-1][0] == change.time_h:
                schedule[-1] = (change.time_h, dict(current))
            else:
                schedule.append((change.time_h, dict(current)))
        return schedule


def _require_finite(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInputError(name, f"must be a finite number, got {value!r}")
