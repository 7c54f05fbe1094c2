"""Therapeutic targets and the exposure metric each one measures, for a batch of parameter sets.

A :class:`Target` names a metric, a target range ``[low, high]`` (``high`` may be infinite for a one-sided
target), an optional toxicity limit on the same metric, and the parameters the metric needs.

Time reference: every time a target states (``window_h``, ``until_h``, ``peak_after_end_h``) counts in hours
from the start of the regimen being evaluated, ``regimen_start_h`` on the record's clock, i.e. the first
dose of the new regimen.

Metrics (``unit`` in brackets, for an output in mg/L; the units follow the model output's unit):

================  ==========================================================================================
``auc24``          AUC over 24 h at steady state: AUC over one interval × 24/τ (the daily average, also for
                   τ > 24 h) [mg·h/L]; with ``window_h`` (24 h long): the AUC over that window as given from
                   the patient's current state (not at steady state).
``auc_tau``        AUC over one dosing interval at steady state [mg·h/L].
``auc_window``     AUC over ``window_h`` = [start, end] as given from the current state [mg·h/L].
``auc_cumulative`` AUC from the first dose of the record (past doses included) to ``until_h`` (e.g.
                   busulfan's cumulative exposure) [mg·h/L].
``trough``         concentration just before the next dose at steady state [mg/L].
``peak``           concentration ``peak_after_end_h`` after the end of the infusion (after the dose for a
                   bolus or an oral dose) at steady state [mg/L].
``cmax``           the highest concentration over the steady-state interval (an oral dose's absorption
                   peak, a bolus right after the dose, an infusion's end) [mg/L].
``css``            steady-state concentration of a continuous infusion; for intermittent doses the average
                   concentration over the interval, AUCτ/τ [mg/L].
``cmax_mic``       fu × Cmax at steady state / MIC [ratio].
``auc_mic``        fu × AUC24 at steady state / MIC [ratio; h implied, as usual].
``ft_above_mic``   fraction of the steady-state interval with fu × concentration above the MIC
                   [fraction 0-1, or % with ``unit="%"``].
================  ==========================================================================================

``fu`` is ``unbound_fraction`` (default 1: total concentrations). Set it for free-drug targets (fAUC/MIC,
fT>MIC). The MIC is in mg/L and converted to the output's unit (mg/L, ug/mL, ug/L, ng/mL...).

Steady-state metrics are evaluated over the interval that starts at ``regimen_start_h``, on a record whose
regimen is given there as a steady-state dose (``Dose(..., interval_h=tau, steady_state=True)``, NONMEM
SS=1): the exact steady state, independent of earlier doses. :func:`metric_values` checks that the record has
such a dose.

Cmax and time above a threshold use a dense grid (``step_h``) that contains every dose time and infusion end
of the typical patient. A maximum at such a breakpoint is taken as is (an infusion end); an interior maximum
is refined by the maximum of the quartic through the five grid points around it (error far below 1e-6
relative for absorption peaks; the tests state it). Threshold crossings are interpolated linearly between
grid points, as in :func:`mipd_engine.exposure.time_above`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .errors import InvalidInputError
from .events import PatientRecord
from .exposure import Window, auc, dense_grid, peak_of_curve
from .model import PopulationModel
from .simulation import PatientSimulator


@dataclass(frozen=True)
class MetricInfo:
    label: str
    kind: str  # "auc" | "concentration" | "ratio" | "fraction"
    steady_state: bool
    needs_mic: bool


METRICS: dict[str, MetricInfo] = {
    "auc24": MetricInfo("AUC24", "auc", True, False),
    "auc_tau": MetricInfo("AUCtau", "auc", True, False),
    "auc_window": MetricInfo("AUC", "auc", False, False),
    "auc_cumulative": MetricInfo("cumulative AUC", "auc", False, False),
    "trough": MetricInfo("trough", "concentration", True, False),
    "peak": MetricInfo("peak", "concentration", True, False),
    "cmax": MetricInfo("Cmax", "concentration", True, False),
    "css": MetricInfo("Css", "concentration", True, False),
    "cmax_mic": MetricInfo("Cmax/MIC", "ratio", True, True),
    "auc_mic": MetricInfo("AUC24/MIC", "ratio", True, True),
    "ft_above_mic": MetricInfo("fT>MIC", "fraction", True, True),
}

_TARGET_FIELDS = (
    "metric",
    "low",
    "high",
    "toxicity_limit",
    "safety",
    "max_p_toxic",
    "unit",
    "mic_mg_per_l",
    "unbound_fraction",
    "peak_after_end_h",
    "window_h",
    "until_h",
    "output",
)

# Concentration units: factor converting a value in mg/L into the unit (normalised spelling).
_PER_MG_PER_L = {
    "mg/l": 1.0,
    "ug/ml": 1.0,
    "g/l": 1e-3,
    "mg/ml": 1e-3,
    "ug/l": 1e3,
    "ng/ml": 1e3,
    "ng/l": 1e6,
}


def _normalise_unit(unit: str) -> str:
    text = unit.strip().replace("µ", "u").replace("μ", "u").replace("mcg", "ug")
    for separator in ("*", "×", ".", " "):
        text = text.replace(separator, "·")
    return text


def _auc_unit(concentration_unit: str) -> str:
    if "/" in concentration_unit:
        amount, volume = concentration_unit.split("/", 1)
        return f"{amount}·h/{volume}"
    return f"{concentration_unit}·h"


def _require_number(path: str, value: Any, *, allow_inf: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise InvalidInputError(path, f"expected a number, got {value!r}")
    if not allow_inf and not math.isfinite(value):
        raise InvalidInputError(path, f"expected a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Target:
    """A therapeutic target: ``low <= metric <= high``; see the module docstring for the metrics.

    Parameters
    ----------
    metric : one of :data:`METRICS`.
    low, high : target range in the metric's unit (``high`` may be ``math.inf`` for "at least ``low``").
    toxicity_limit : optional value of the same metric above which toxicity is feared (>= ``high``).
    safety : toxicity markers, each a metric and the value above which it counts as toxic (e.g. an
        aminoglycoside's trough above 1 mg/L, vancomycin's AUC24 above 600 mg·h/L); a case-file target
        gives them as ``[{"metric": "trough", "above": 1, "source": "..."}, ...]`` with the metric's own
        parameters. ``toxicity_limit`` is one more such marker, on the target's own metric. P(toxic) is the
        share of posterior draws above any marker.
    max_p_toxic : the largest P(toxic) a recommended regimen may have (default :data:`DEFAULT_MAX_P_TOXIC`
        when markers are given); candidates above it are never ranked before those within it.
    unit : the unit the range is stated in; checked against the model output's unit (``"mg·h/L"``,
        ``"mg/L"``, ``"ratio"``, ``"fraction"`` or ``"%"``). ``None``: the output's unit.
    mic_mg_per_l : MIC in mg/L (MIC metrics only).
    unbound_fraction : fu in (0, 1] applied to concentrations for MIC metrics (default 1).
    peak_after_end_h : ``peak`` only: hours after the end of the infusion (default 0).
    window_h : ``auc_window`` (required) and ``auc24`` (optional, 24 h long): [start, end] in hours from the
        regimen start.
    until_h : ``auc_cumulative`` (required): end of the cumulative AUC, hours from the regimen start.
    output : model output (default: the model's first output).
    """

    metric: str
    low: float
    high: float = math.inf
    toxicity_limit: float | None = None
    unit: str | None = None
    mic_mg_per_l: float | None = None
    unbound_fraction: float = 1.0
    peak_after_end_h: float | None = None
    window_h: tuple[float, float] | None = None
    until_h: float | None = None
    output: str | None = None
    safety: tuple[SafetyLimit, ...] = ()
    max_p_toxic: float | None = None

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise InvalidInputError(
                "target.metric", f"unknown metric {self.metric!r} (one of {', '.join(METRICS)})"
            )
        info = METRICS[self.metric]
        if self.unit is not None and not isinstance(self.unit, str):
            raise InvalidInputError("target.unit", f"expected a unit name, got {self.unit!r}")
        low = _require_number("target.low", self.low)
        high = _require_number("target.high", self.high, allow_inf=True)
        if low < 0:
            raise InvalidInputError("target.low", f"must not be negative, got {low:g}")
        if high < 0:
            raise InvalidInputError("target.high", f"must not be negative, got {high:g}")
        if low > high:
            raise InvalidInputError("target.low", f"low {low:g} exceeds high {high:g}")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        if info.kind == "fraction":
            if self.unit not in (None, "fraction", "%"):
                raise InvalidInputError("target.unit", f"{self.metric} is a 'fraction' (0-1) or '%' (0-100)")
            top = 100.0 if self.unit == "%" else 1.0
            # An open upper end (inf) is "at least low", as for any one-sided target (metric_only() opens it).
            if math.isfinite(high) and high > top:
                raise InvalidInputError(
                    "target.high", f"a fraction of the interval cannot exceed {top:g}, got {high:g}"
                )
        elif info.kind == "ratio" and self.unit not in (None, "ratio"):
            raise InvalidInputError("target.unit", f"{self.metric} is a ratio (unit 'ratio')")
        if self.toxicity_limit is not None:
            limit = _require_number("target.toxicity_limit", self.toxicity_limit)
            if math.isfinite(high) and limit < high:
                raise InvalidInputError(
                    "target.toxicity_limit",
                    f"{limit:g} lies inside the target range [{low:g}, {high:g}]; it must be >= high",
                )
            if limit <= low:
                raise InvalidInputError("target.toxicity_limit", f"{limit:g} must exceed low {low:g}")
            object.__setattr__(self, "toxicity_limit", limit)
        # Parameters: required where the metric uses them, refused where it does not (a silently ignored
        # field would hide a mistake, e.g. an MIC given with an AUC24 target meant as AUC/MIC).
        if info.needs_mic:
            if self.mic_mg_per_l is None:
                raise InvalidInputError("target.mic_mg_per_l", f"{self.metric} needs the MIC (mg/L)")
            mic = _require_number("target.mic_mg_per_l", self.mic_mg_per_l)
            if mic <= 0:
                raise InvalidInputError("target.mic_mg_per_l", f"must be positive, got {mic:g}")
            object.__setattr__(self, "mic_mg_per_l", mic)
        elif self.mic_mg_per_l is not None:
            raise InvalidInputError("target.mic_mg_per_l", f"not used by metric '{self.metric}'")
        fu = _require_number("target.unbound_fraction", self.unbound_fraction)
        if not 0 < fu <= 1:
            raise InvalidInputError("target.unbound_fraction", f"must lie in (0, 1], got {fu:g}")
        if fu != 1.0 and not info.needs_mic:
            raise InvalidInputError("target.unbound_fraction", f"not used by metric '{self.metric}'")
        object.__setattr__(self, "unbound_fraction", fu)
        if self.metric == "peak":
            after = 0.0 if self.peak_after_end_h is None else self.peak_after_end_h
            after = _require_number("target.peak_after_end_h", after)
            if after < 0:
                raise InvalidInputError("target.peak_after_end_h", f"must not be negative, got {after:g}")
            object.__setattr__(self, "peak_after_end_h", after)
        elif self.peak_after_end_h is not None:
            raise InvalidInputError("target.peak_after_end_h", f"not used by metric '{self.metric}'")
        if self.metric in ("auc_window", "auc24"):
            if self.window_h is None:
                if self.metric == "auc_window":
                    raise InvalidInputError("target.window_h", "auc_window needs window_h = [start, end]")
            else:
                window = _window("target.window_h", self.window_h)
                if self.metric == "auc24" and abs((window[1] - window[0]) - 24.0) > 1e-9:
                    raise InvalidInputError(
                        "target.window_h", "an auc24 window must be 24 h long (use auc_window otherwise)"
                    )
                object.__setattr__(self, "window_h", window)
        elif self.window_h is not None:
            raise InvalidInputError("target.window_h", f"not used by metric '{self.metric}'")
        if self.metric == "auc_cumulative":
            if self.until_h is None:
                raise InvalidInputError(
                    "target.until_h", "auc_cumulative needs until_h (h from the regimen start)"
                )
            until = _require_number("target.until_h", self.until_h)
            if until <= 0:
                raise InvalidInputError("target.until_h", f"must be positive, got {until:g}")
            object.__setattr__(self, "until_h", until)
        elif self.until_h is not None:
            raise InvalidInputError("target.until_h", f"not used by metric '{self.metric}'")
        if self.output is not None and not isinstance(self.output, str):
            raise InvalidInputError("target.output", f"expected an output name, got {self.output!r}")
        if not isinstance(self.safety, tuple) or not all(isinstance(s, SafetyLimit) for s in self.safety):
            raise InvalidInputError("target.safety", "expected toxicity markers (SafetyLimit)")
        if self.max_p_toxic is not None:
            limit = _require_number("target.max_p_toxic", self.max_p_toxic)
            if not 0 < limit <= 1:
                raise InvalidInputError("target.max_p_toxic", f"must lie in (0, 1], got {limit:g}")
            object.__setattr__(self, "max_p_toxic", limit)

    # -- properties -------------------------------------------------------------------------------------
    @property
    def info(self) -> MetricInfo:
        return METRICS[self.metric]

    @property
    def steady_state(self) -> bool:
        """True when the metric is evaluated at steady state (over the interval starting at the regimen)."""
        return self.info.steady_state and not (self.metric == "auc24" and self.window_h is not None)

    @property
    def label(self) -> str:
        if self.metric == "auc_window" and self.window_h is not None:
            return f"AUC({self.window_h[0]:g}-{self.window_h[1]:g} h)"
        if self.metric == "auc_cumulative":
            return f"cumulative AUC (to {self.until_h:g} h)"
        return self.info.label

    @property
    def safety_limits(self) -> tuple[SafetyLimit, ...]:
        """Every toxicity marker: ``safety``, and ``toxicity_limit`` on the target's own metric."""
        own: tuple[SafetyLimit, ...] = ()
        if self.toxicity_limit is not None:
            own = (SafetyLimit(self.metric_only(), self.toxicity_limit, "the target's toxicity limit"),)
        return (*self.safety, *own)

    @property
    def p_toxic_limit(self) -> float | None:
        """The largest acceptable P(toxic), when the target has toxicity markers."""
        if not self.safety_limits:
            return None
        return self.max_p_toxic if self.max_p_toxic is not None else DEFAULT_MAX_P_TOXIC

    def metric_only(self) -> Target:
        """The same metric (and its parameters) without range, markers or limits: for evaluation alone."""
        return replace(self, low=0.0, high=math.inf, toxicity_limit=None, safety=(), max_p_toxic=None)

    @property
    def middle(self) -> float:
        """Middle of the range; the lower bound for a one-sided target."""
        return 0.5 * (self.low + self.high) if math.isfinite(self.high) else self.low

    def output_name(self, model: PopulationModel) -> str:
        name = self.output or model.default_output
        if name not in model.outputs:
            raise InvalidInputError(
                "target.output", f"unknown output '{name}' (model has {', '.join(model.outputs)})"
            )
        return name

    def unit_for(self, model: PopulationModel) -> str:
        """The metric's unit for this model's output; raises when ``unit`` contradicts it."""
        kind = self.info.kind
        if kind == "fraction":
            return self.unit or "fraction"
        if kind == "ratio":
            return "ratio"
        output_unit = model.outputs[self.output_name(model)].unit
        expected = _auc_unit(output_unit) if kind == "auc" else output_unit
        if self.unit is not None:
            if not output_unit:
                raise InvalidInputError(
                    "target.unit",
                    f"the model output '{self.output_name(model)}' declares no unit to check against",
                )
            if _normalise_unit(self.unit) != _normalise_unit(expected):
                raise InvalidInputError(
                    "target.unit",
                    f"target in {self.unit} but the model predicts {expected}; convert the range",
                )
        return expected

    def mic_in_output_unit(self, model: PopulationModel) -> float:
        """The MIC (mg/L) in the unit of the model's output."""
        assert self.mic_mg_per_l is not None
        output_unit = model.outputs[self.output_name(model)].unit
        factor = _PER_MG_PER_L.get(_normalise_unit(output_unit).lower())
        if factor is None:
            raise InvalidInputError(
                "target.mic_mg_per_l",
                f"cannot convert an MIC in mg/L to the output unit {output_unit!r} "
                f"(known: {', '.join(sorted(_PER_MG_PER_L))})",
            )
        return self.mic_mg_per_l * factor

    def check_model(self, model: PopulationModel) -> str:
        """Check output, unit and MIC conversion against the model; returns the metric's unit."""
        unit = self.unit_for(model)
        if self.info.needs_mic:
            self.mic_in_output_unit(model)
        return unit

    def attained(self, values: np.ndarray) -> np.ndarray:
        """Boolean array: ``low <= value <= high``."""
        values = np.asarray(values, dtype=float)
        return (values >= self.low) & (values <= self.high)

    def describe(self, model: PopulationModel | None = None) -> str:
        """``AUC24 400-600 mg·h/L``, ``Cmax/MIC ≥ 8 (MIC 2 mg/L)``; toxicity markers after a semicolon."""
        unit = self.unit_for(model) if model is not None else (self.unit or "")
        shown_unit = "" if unit in ("ratio", "") else f" {unit}"
        if math.isfinite(self.high):
            text = f"{self.label} {self.low:g}-{self.high:g}{shown_unit}"
        else:
            text = f"{self.label} ≥ {self.low:g}{shown_unit}"
        if self.mic_mg_per_l is not None:
            text += f" (MIC {self.mic_mg_per_l:g} mg/L)"
        if self.safety_limits:
            markers = " or ".join(limit.describe(model) for limit in self.safety_limits)
            text += f"; toxic if {markers}"
        return text

    def as_dict(self, model: PopulationModel | None = None) -> dict[str, Any]:
        """The target as reported: range, unit, MIC, toxicity markers and the P(toxic) limit."""
        return {
            "metric": self.metric,
            "label": self.label,
            "low": self.low,
            "high": self.high if math.isfinite(self.high) else None,
            "toxicity_limit": self.toxicity_limit,
            "safety": [limit.as_dict() for limit in self.safety_limits],
            "max_p_toxic": self.p_toxic_limit,
            "mic_mg_per_l": self.mic_mg_per_l,
            "description": self.describe(model),
            "unit": self.unit_for(model) if model is not None else (self.unit or ""),
        }

    @classmethod
    def from_mapping(cls, document: Mapping[str, Any], *, path: str = "target") -> Target:
        """A target from a case-file object; keys outside the target's fields are left to the caller."""
        if not isinstance(document, Mapping):
            raise InvalidInputError(path, "expected an object")
        values = {key: document[key] for key in _TARGET_FIELDS if key in document}
        if "metric" not in values:
            raise InvalidInputError(f"{path}.metric", "required field is missing")
        if "low" not in values:
            raise InvalidInputError(f"{path}.low", "required field is missing")
        if values.get("high") is None:
            values["high"] = math.inf
        if isinstance(values.get("window_h"), list):
            values["window_h"] = tuple(values["window_h"])
        try:
            if "safety" in values:
                values["safety"] = _safety_limits(values["safety"], document, path=f"{path}.safety")
            return cls(**values)
        except InvalidInputError as exc:
            field = exc.path.removeprefix("target")
            raise InvalidInputError(f"{path}{field}", exc.message) from None


TARGET_FIELDS = frozenset(_TARGET_FIELDS)
DEFAULT_MAX_P_TOXIC = 0.25
_SAFETY_FIELDS = frozenset({"metric", "above", "unit", "source", *_TARGET_FIELDS} - {"low", "high", "safety"})


@dataclass(frozen=True)
class SafetyLimit:
    """A toxicity marker: ``target``'s metric above ``above`` counts as toxic (e.g. trough > 1 mg/L)."""

    target: Target  # the metric and its parameters (range unused)
    above: float
    source: str = ""

    def describe(self, model: PopulationModel | None = None) -> str:
        unit = self.target.unit_for(model) if model is not None else (self.target.unit or "")
        shown = "" if unit in ("ratio", "") else f" {unit}"
        return f"{self.target.label} > {self.above:g}{shown}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.target.metric,
            "above": self.above,
            "label": self.describe(),
            "source": self.source,
        }


def _safety_limits(value: Any, parent: Mapping[str, Any], *, path: str) -> tuple[SafetyLimit, ...]:
    """The ``safety`` list of a target document; a marker inherits the target's output, and its MIC and
    free fraction when it needs them."""
    if not isinstance(value, list | tuple):
        raise InvalidInputError(path, "expected a list of toxicity markers {metric, above, source}")
    limits = []
    for i, item in enumerate(value):
        where = f"{path}[{i}]"
        if not isinstance(item, Mapping):
            raise InvalidInputError(where, "expected an object {metric, above, source}")
        unknown = set(item) - _SAFETY_FIELDS
        if unknown:
            raise InvalidInputError(f"{where}.{sorted(unknown)[0]}", "unknown field")
        if "above" not in item:
            raise InvalidInputError(f"{where}.above", "required: the value above which the metric is toxic")
        above = _require_number(f"{where}.above", item["above"])
        fields = {k: v for k, v in item.items() if k not in ("above", "source")}
        metric = METRICS.get(str(fields.get("metric", "")))
        if metric is not None and metric.needs_mic:  # the target's MIC and free fraction, unless stated
            fields.setdefault("mic_mg_per_l", parent.get("mic_mg_per_l"))
            if parent.get("unbound_fraction") is not None:
                fields.setdefault("unbound_fraction", parent["unbound_fraction"])
        if parent.get("output") is not None:  # the same assay as the target, unless stated
            fields.setdefault("output", parent["output"])
        try:
            target = Target.from_mapping({**fields, "low": 0.0}, path=where)
        except InvalidInputError:
            raise
        if above <= 0:
            raise InvalidInputError(f"{where}.above", f"must be positive, got {above:g}")
        source = item.get("source", "")
        if not isinstance(source, str):
            raise InvalidInputError(f"{where}.source", "expected text")
        limits.append(SafetyLimit(target, above, source))
    return tuple(limits)


def _window(path: str, value: Any) -> tuple[float, float]:
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise InvalidInputError(path, f"expected [start, end] in hours, got {value!r}")
    start = _require_number(path, value[0])
    end = _require_number(path, value[1])
    if start < 0 or end <= start:
        raise InvalidInputError(path, f"need 0 <= start < end, got [{start:g}, {end:g}]")
    return (start, end)


# -- what to measure -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricPlan:
    """What a target measures on a record, in absolute time: metric = ``factor`` × raw measurement.

    ``kind``: ``"auc"`` (area over [start_h, end_h]), ``"concentration"`` (at ``start_h``), ``"cmax"``
    (maximum over [start_h, end_h]) or ``"time_above"`` (hours above ``threshold`` over [start_h, end_h]).
    For a linear model AUCs and concentrations are affine in the dose amounts; Cmax and time above a
    threshold are not, but at steady state (no earlier doses) Cmax is proportional to the dose and the time
    above c for dose D is the time above c·D_ref/D for dose D_ref.
    """

    kind: str
    start_h: float
    end_h: float
    factor: float
    threshold: float | None = None

    @property
    def affine_in_dose(self) -> bool:
        return self.kind in ("auc", "concentration")


def metric_plan(
    target: Target,
    model: PopulationModel,
    *,
    regimen_start_h: float,
    interval_h: float | None = None,
    infusion_duration_h: float = 0.0,
    first_dose_h: float | None = None,
) -> MetricPlan:
    """The measurement a target asks for, for a regimen starting at ``regimen_start_h`` (record clock)."""
    start = float(regimen_start_h)
    metric = target.metric
    if target.steady_state or metric == "auc_mic":
        if interval_h is None or not interval_h > 0:
            raise InvalidInputError("interval_h", f"{metric} at steady state needs the dosing interval")
        tau = float(interval_h)
        end = start + tau
    if metric == "auc24":
        if target.window_h is not None:
            return MetricPlan("auc", start + target.window_h[0], start + target.window_h[1], 1.0)
        return MetricPlan("auc", start, end, 24.0 / tau)
    if metric == "auc_tau":
        return MetricPlan("auc", start, end, 1.0)
    if metric == "auc_window":
        assert target.window_h is not None
        return MetricPlan("auc", start + target.window_h[0], start + target.window_h[1], 1.0)
    if metric == "auc_cumulative":
        assert target.until_h is not None
        if first_dose_h is None:
            raise InvalidInputError("target.metric", "a cumulative AUC needs the time of the first dose")
        return MetricPlan("auc", min(first_dose_h, start), start + target.until_h, 1.0)
    if metric == "trough":
        return MetricPlan("concentration", end, end, 1.0)
    if metric == "peak":
        assert target.peak_after_end_h is not None
        time = start + infusion_duration_h + target.peak_after_end_h
        if time > end + 1e-9:
            raise InvalidInputError(
                "target.peak_after_end_h",
                f"the peak time ({infusion_duration_h + target.peak_after_end_h:g} h after the dose) lies "
                f"beyond the dosing interval ({tau:g} h)",
            )
        return MetricPlan("concentration", time, time, 1.0)
    if metric == "css":
        return MetricPlan("auc", start, end, 1.0 / tau)
    if metric == "cmax":
        return MetricPlan("cmax", start, end, 1.0)
    fu = target.unbound_fraction
    mic = target.mic_in_output_unit(model)
    if metric == "cmax_mic":
        return MetricPlan("cmax", start, end, fu / mic)
    if metric == "auc_mic":
        return MetricPlan("auc", start, end, 24.0 / tau * fu / mic)
    if metric == "ft_above_mic":
        scale = 100.0 if target.unit == "%" else 1.0
        return MetricPlan("time_above", start, end, scale / tau, threshold=mic / fu)
    raise AssertionError(metric)  # pragma: no cover - METRICS and this function list the same metrics


def require_steady_state_dose(record: PatientRecord, start_h: float, interval_h: float) -> None:
    """Raise unless the record gives a steady-state dose at ``start_h`` with interval ``interval_h``."""
    for dose in record.doses:
        if (
            dose.steady_state
            and abs(dose.time_h - start_h) <= 1e-9
            and dose.interval_h is not None
            and abs(dose.interval_h - interval_h) <= 1e-9
        ):
            return
    raise InvalidInputError(
        "target.metric",
        f"a steady-state metric needs the regimen at steady state: a dose with steady_state=true and "
        f"interval_h={interval_h:g} at {start_h:g} h",
    )


# -- measurements ----------------------------------------------------------------------------------------


def time_above_curve(grid: np.ndarray, values: np.ndarray, threshold: float) -> np.ndarray:
    """Hours (N,) with ``values`` (N, T) above ``threshold`` (crossings interpolated linearly)."""
    return time_above_thresholds(grid, values, np.array([threshold]))[:, 0]


def time_above_thresholds(grid: np.ndarray, values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Hours (N, K) with ``values`` (N, T) above each of K thresholds, crossings interpolated linearly.

    Between two grid points the linear interpolant lies above a threshold c for the share
    clip((hi − c)/(hi − lo), 0, 1) of the step (hi, lo: the larger and smaller end value), which is what
    :func:`mipd_engine.exposure.time_above` computes crossing by crossing. The segment ends are computed
    once for all thresholds.
    """
    left, right = values[:, :-1], values[:, 1:]
    high = np.maximum(left, right)
    width = high - np.minimum(left, right)
    # A flat segment (a continuous infusion at steady state) is above the threshold entirely or not at all.
    # The excess is clipped to [0, width] before dividing, so no ratio can overflow, however thin the ramp.
    ramp = width > 0
    denominator = np.where(ramp, width, 1.0)
    dt = np.diff(grid)
    result = np.empty((values.shape[0], len(thresholds)))
    for k, threshold in enumerate(np.asarray(thresholds, dtype=float)):
        excess = high - threshold
        share = np.where(ramp, np.clip(excess, 0.0, width) / denominator, excess > 0)
        result[:, k] = share @ dt
    return result


CURVE_STEP_H = 0.05


def measure(
    plan: MetricPlan,
    simulator: PatientSimulator,
    eta: np.ndarray,
    kappa: np.ndarray | None,
    output: str,
    *,
    step_h: float = CURVE_STEP_H,
) -> np.ndarray:
    """The raw measurement (N,) of a plan: AUC, concentration or Cmax; for ``time_above`` see
    :func:`measure_curve`."""
    if plan.kind == "auc":
        return auc(simulator, Window(plan.start_h, plan.end_h), eta=eta, kappa=kappa, output=output)
    if plan.kind == "concentration":
        return simulator.predict([plan.start_h], eta, kappa, outputs=[output]).outputs[output][:, 0]
    if plan.kind == "cmax":
        grid, points, values = measure_curve(plan, simulator, eta, kappa, output, step_h=step_h)
        return peak_of_curve(grid, values, points)
    if plan.kind == "time_above":
        assert plan.threshold is not None
        grid, _, values = measure_curve(plan, simulator, eta, kappa, output, step_h=step_h)
        return time_above_curve(grid, values, plan.threshold)
    raise AssertionError(plan.kind)  # pragma: no cover


def measure_curve(
    plan: MetricPlan,
    simulator: PatientSimulator,
    eta: np.ndarray,
    kappa: np.ndarray | None,
    output: str,
    *,
    step_h: float = CURVE_STEP_H,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(grid, breakpoints, concentrations (N, T)) over the plan's window."""
    grid, points = dense_grid(simulator, plan.start_h, plan.end_h, step_h)
    values = simulator.predict(grid, eta, kappa, outputs=[output]).outputs[output]
    return grid, points, values


def plan_for_record(
    target: Target,
    model: PopulationModel,
    record: PatientRecord,
    *,
    regimen_start_h: float,
    interval_h: float | None = None,
    infusion_duration_h: float = 0.0,
) -> MetricPlan:
    """:func:`metric_plan` for a record that holds the regimen, after checking that the record fits the
    metric (a steady-state dose at the regimen start for steady-state metrics; no steady-state dose for a
    cumulative AUC)."""
    if target.steady_state:
        if interval_h is None:
            raise InvalidInputError("interval_h", f"{target.metric} at steady state needs the interval")
        require_steady_state_dose(record, regimen_start_h, interval_h)
    first_dose_h = None
    if target.metric == "auc_cumulative":
        if any(d.steady_state for d in record.doses):
            raise InvalidInputError(
                "target.metric", "a cumulative AUC is undefined for a record with steady-state doses"
            )
        first_dose_h = min((d.time_h for d in record.doses), default=regimen_start_h)
    return metric_plan(
        target,
        model,
        regimen_start_h=regimen_start_h,
        interval_h=interval_h,
        infusion_duration_h=infusion_duration_h,
        first_dose_h=first_dose_h,
    )


def metric_values(
    target: Target,
    simulator: PatientSimulator,
    eta: np.ndarray | None,
    kappa: np.ndarray | None = None,
    *,
    regimen_start_h: float,
    interval_h: float | None = None,
    infusion_duration_h: float = 0.0,
    step_h: float = CURVE_STEP_H,
) -> np.ndarray:
    """The target's metric (N,) for each parameter set, by direct simulation of ``simulator``'s record.

    Parameters
    ----------
    simulator : built on the record that holds the regimen (past doses plus the regimen's doses; for a
        steady-state metric, the regimen as a steady-state dose at ``regimen_start_h``).
    eta : (N, n_eta) random effects; kappa : (N, n_occasions, n_kappa) of the simulator's occasions, or None.
    regimen_start_h : time of the regimen's first dose (record clock); target times count from it.
    interval_h : the regimen's dosing interval (steady-state metrics); infusion_duration_h : its infusion
        duration (``peak``).
    step_h : grid step for Cmax and time above the MIC.

    Returns
    -------
    (N,) values in the target's unit (:meth:`Target.unit_for`).
    """
    model = simulator.model
    target.check_model(model)
    output = target.output_name(model)
    plan = plan_for_record(
        target,
        model,
        simulator.record,
        regimen_start_h=regimen_start_h,
        interval_h=interval_h,
        infusion_duration_h=infusion_duration_h,
    )
    if eta is None:
        eta = np.zeros((1, model.n_eta))
    eta = np.atleast_2d(np.asarray(eta, dtype=float))
    return plan.factor * measure(plan, simulator, eta, kappa, output, step_h=step_h)
