"""Where each model covariate comes from in a patient's record, and its values over time.

A catalog model declares, next to its model file, ``covariate_sources``: for each covariate, a measurement
(weight, height, serum creatinine, albumin, dialysis, or any clinician-entered quantity), a demographic fact
(age, sex), a genotype-derived phenotype, or a clinical equation (Cockcroft-Gault with the model's weight
rule, cap and creatinine floor; CKD-EPI 2021; bedside Schwartz; body surface area; postmenstrual age from the
gestational age at birth and the birth date). :func:`resolve_covariates` turns the
patient's facts into the piecewise-constant covariates of a case (a value at time 0 and changes later), with
every derivation and every assumption stated so the clinician can check it.

Semantics follow each covariate's ``variation`` in the model file:

* ``carried_forward`` (default): a measured value holds from its time until the next one (last observation
  carried forward). Derived covariates are recomputed at every time one of their inputs changes.
* ``interpolated``: linear between consecutive values, approximated by steps of at most
  :data:`INTERPOLATION_STEP_H` hours, each holding the value at its midpoint (case files are piecewise
  constant).
* ``baseline``: the value at time 0 holds for the whole course. A later value that differs is not used: it is
  reported in ``baseline_conflicts`` (the caller must stop: a new course, or another model, is needed).

Postmenstrual age advances with the clock, not with measurements: it is recomputed every
:data:`AGE_STEP_H` hours up to the time the facts are as of (a neonate's clearance matures by several per
cent a week).

Before the first measurement the first value is used, and a note says so. Times are hours from the case
origin (the first dose).

Renal replacement and ECMO are recorded as sessions with a start and an end (``PatientFacts.sessions``), not
as measurements. The ``dialysis`` form is the patient-level flag "on intermittent haemodialysis": 1 from the
start of a haemodialysis session until :data:`DIALYSIS_STATUS_H` hours after its end (a patient dialysed
three times a week stays "on haemodialysis" between sessions), else 0; with no session recorded it is 0.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import clinical_equations as eq
from .errors import InvalidInputError
from .model import PopulationModel

# Measurement kinds with a fixed canonical unit: what callers must convert to before calling.
CANONICAL_UNITS = {
    "weight": "kg",
    "height": "cm",
    "serum_creatinine": "mg/dL",
    "albumin": "g/L",
    "gestational_age_at_birth": "weeks",
}
INTERPOLATION_STEP_H = 6.0
DIALYSIS_STATUS_H = 7 * 24.0
AGE_STEP_H = 24.0
DAYS_PER_YEAR = 365.25  # the age in years is days since birth / 365.25 (as the patient record computes it)
SOURCE_FORMS = frozenset(
    {
        "weight",
        "height",
        "serum_creatinine",
        "age",
        "postmenstrual_age",
        "albumin",
        "dialysis",
        "bsa",
        "sex",
        "cockcroft_gault",
        "ckd_epi_2021",
        "schwartz_bedside",
        "phenotype",
        "measurement",
    }
)
_INPUTS = {  # the measurement kinds each form reads
    "weight": ("weight",),
    "height": ("height",),
    "serum_creatinine": ("serum_creatinine",),
    "albumin": ("albumin",),
    "bsa": ("weight", "height"),
    "cockcroft_gault": ("weight", "serum_creatinine"),
    "ckd_epi_2021": ("serum_creatinine",),
    "schwartz_bedside": ("height", "serum_creatinine"),
    "postmenstrual_age": ("gestational_age_at_birth",),
}
_OPTIONS = {
    "bsa": {"method"},
    "sex": {"codes"},
    "cockcroft_gault": {"weight_basis", "cap_ml_per_min", "scr_floor_mg_per_dl", "scr_floor_min_age_years"},
    "ckd_epi_2021": {"deindexed"},
    "phenotype": {"gene", "codes"},
    "measurement": {"kind", "unit"},
}


@dataclass(frozen=True)
class PatientFacts:
    """What the record holds, in canonical units; times in hours from the case origin.

    ``measurements`` maps a kind (``weight``, ``serum_creatinine``, or a model-specific slug) to its
    ``(time_h, value)`` pairs; ``phenotypes`` maps a gene to the phenotype the PGx tables called;
    ``sessions`` are renal replacement and ECMO sessions as ``(modality, start_h, end_h or None if ongoing)``.
    """

    age_years_at_origin: float | None
    sex: str | None  # "male", "female", or None when unknown
    measurements: Mapping[str, Sequence[tuple[float, float]]] = field(default_factory=dict)
    phenotypes: Mapping[str, str] = field(default_factory=dict)
    sessions: Sequence[tuple[str, float, float | None]] = ()
    now_h: float | None = None  # facts are as recorded now: nothing changes after it (None: no limit)

    def on_haemodialysis(self, time_h: float) -> bool:
        """Within an intermittent haemodialysis session, or less than DIALYSIS_STATUS_H after one."""
        return any(
            start <= time_h <= (end if end is not None else float("inf")) + DIALYSIS_STATUS_H
            for modality, start, end in self.sessions
            if modality == "intermittent_haemodialysis"
        )


@dataclass(frozen=True)
class CovariateDerivation:
    """How one covariate got its current value: the formula, the inputs and the caveats."""

    name: str
    value: float
    unit: str
    formula: str
    source: str = ""
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class BaselineConflict:
    """A baseline covariate whose value changes after time 0 (the later value is not used)."""

    name: str
    time_h: float
    initial: float
    later: float
    formula: str


@dataclass(frozen=True)
class ResolvedCovariates:
    success: bool
    message: str
    initial: dict[str, float]
    changes: tuple[tuple[float, dict[str, float]], ...]
    derivations: tuple[CovariateDerivation, ...]  # at the latest time, for display
    notes: tuple[str, ...]
    missing: tuple[str, ...]  # what the clinician must record, in words
    baseline_conflicts: tuple[BaselineConflict, ...] = ()

    def case_covariates(self) -> tuple[dict[str, float], list[dict[str, float]]]:
        """``covariates`` and ``covariate_changes`` of a case file."""
        return dict(self.initial), [{"time_h": time_h, **values} for time_h, values in self.changes]


def parse_covariate_sources(document: Any, model: PopulationModel) -> dict[str, dict[str, Any]]:
    """Check a ``covariate_sources`` object against the model; errors name the field path."""
    if not isinstance(document, Mapping):
        raise InvalidInputError("covariate_sources", "expected an object: covariate name -> source")
    sources: dict[str, dict[str, Any]] = {}
    for name, spec in document.items():
        path = f"covariate_sources.{name}"
        if name not in model.covariates:
            raise InvalidInputError(path, f"the model has no covariate '{name}'")
        if not isinstance(spec, Mapping) or spec.get("from") not in SOURCE_FORMS:
            raise InvalidInputError(f"{path}.from", f"expected one of {', '.join(sorted(SOURCE_FORMS))}")
        form = spec["from"]
        unknown = set(spec) - {"from"} - _OPTIONS.get(form, set())
        if unknown:
            raise InvalidInputError(path, f"unknown option(s) {', '.join(sorted(unknown))} for '{form}'")
        if form in ("sex", "phenotype") and not isinstance(spec.get("codes"), Mapping):
            raise InvalidInputError(f"{path}.codes", "map each value to the model's numeric code")
        if form == "phenotype" and not isinstance(spec.get("gene"), str):
            raise InvalidInputError(f"{path}.gene", "name the gene")
        if form == "measurement" and not isinstance(spec.get("kind"), str):
            raise InvalidInputError(f"{path}.kind", "name the measurement kind (a lowercase slug)")
        sources[name] = dict(spec)
    used = [name for name in model.covariates if name in model.block.used_inputs]
    undeclared = [name for name in used if name not in sources]
    if undeclared:
        raise InvalidInputError("covariate_sources", f"no source for covariate(s) {', '.join(undeclared)}")
    return sources


def required_kinds(sources: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Measurement kinds the record needs for these sources, with their units (for entry forms)."""
    kinds: dict[str, str] = {}
    for spec in sources.values():
        form = spec["from"]
        for kind in _INPUTS.get(form, ()):
            kinds[kind] = CANONICAL_UNITS[kind]
        if form == "measurement":
            kinds[spec["kind"]] = str(spec.get("unit", ""))
        if form == "cockcroft_gault" and spec.get("weight_basis", "total") != "total":
            kinds["height"] = "cm"
    return kinds


def _value_at(series: Sequence[tuple[float, float]], time_h: float) -> float:
    times = [t for t, _ in series]
    index = bisect.bisect_right(times, time_h) - 1
    return series[max(index, 0)][1]


class _Missing(Exception):
    pass


def _derive(
    name: str, spec: Mapping[str, Any], facts: PatientFacts, series: Mapping[str, Sequence], time_h: float
) -> CovariateDerivation:
    form = spec["from"]

    def measured(kind: str) -> float:
        if not series.get(kind):
            unit = CANONICAL_UNITS.get(kind) or (spec.get("unit") if form == "measurement" else "")
            shown = f" (in {unit})" if unit else ""
            raise _Missing(f"{name} needs a {kind.replace('_', ' ')} measurement{shown}")
        return _value_at(series[kind], time_h)

    def age() -> float:
        if facts.age_years_at_origin is None:
            raise _Missing(f"{name} needs the birth date")
        return facts.age_years_at_origin + time_h / (24 * DAYS_PER_YEAR)

    def sex() -> str:
        if facts.sex not in ("male", "female"):
            raise _Missing(f"{name} needs the patient's sex (male or female) for its equation")
        return facts.sex

    if form in ("weight", "height", "serum_creatinine", "albumin"):
        value = measured(form)
        return CovariateDerivation(name, value, CANONICAL_UNITS[form], f"{form} as measured")
    if form == "dialysis":
        on = facts.on_haemodialysis(time_h)
        sessions = sum(1 for modality, *_ in facts.sessions if modality == "intermittent_haemodialysis")
        formula = (
            "on intermittent haemodialysis (a session within the last 7 days)"
            if on
            else "not on intermittent haemodialysis"
            + (" (no session within the last 7 days)" if sessions else " (no session recorded)")
        )
        return CovariateDerivation(name, 1.0 if on else 0.0, "flag", formula)
    if form == "measurement":
        return CovariateDerivation(name, measured(spec["kind"]), str(spec.get("unit", "")), "as recorded")
    if form == "age":
        return CovariateDerivation(name, age(), "years", "age from the birth date")
    if form == "sex":
        code = spec["codes"].get(sex())
        if code is None:
            raise _Missing(f"{name}: the model has no code for sex '{facts.sex}'")
        return CovariateDerivation(name, float(code), "", f"sex {facts.sex} coded {code}")
    if form == "phenotype":
        gene = spec["gene"]
        phenotype = facts.phenotypes.get(gene)
        if phenotype is None:
            raise _Missing(f"{name} needs a {gene} genotype (or a phenotype called from it)")
        code = spec["codes"].get(phenotype)
        if code is None:
            raise _Missing(f"{name}: the model has no code for {gene} phenotype '{phenotype}'")
        return CovariateDerivation(name, float(code), "", f"{gene} {phenotype} coded {code}")
    if form == "bsa":
        result = eq.bsa_m2(
            weight_kg=measured("weight"), height_cm=measured("height"), method=spec.get("method", "mosteller")
        )
    elif form == "cockcroft_gault":
        patient_age = age()
        floor = spec.get("scr_floor_mg_per_dl")
        floor_age = spec.get("scr_floor_min_age_years")
        if floor is not None and floor_age is not None and patient_age < floor_age:
            floor = None
        basis = spec.get("weight_basis", "total")
        result = eq.cockcroft_gault(
            age_years=patient_age,
            weight_kg=measured("weight"),
            scr_mg_per_dl=measured("serum_creatinine"),
            sex=sex(),
            weight_basis=basis,
            height_cm=measured("height") if basis != "total" else None,
            scr_floor_mg_per_dl=floor,
            cap_ml_per_min=spec.get("cap_ml_per_min"),
        )
    elif form == "ckd_epi_2021":
        result = eq.ckd_epi_2021(age_years=age(), scr_mg_per_dl=measured("serum_creatinine"), sex=sex())
        if spec.get("deindexed"):
            bsa = eq.bsa_m2(weight_kg=measured("weight"), height_cm=measured("height"))
            result = eq.deindexed_egfr_ml_per_min(egfr_ml_per_min_per_1_73m2=result.value, bsa_m2=bsa.value)
    elif form == "postmenstrual_age":
        result = eq.postmenstrual_age_weeks(
            gestational_age_at_birth_weeks=measured("gestational_age_at_birth"),
            postnatal_age_days=age() * DAYS_PER_YEAR,
        )
    elif form == "schwartz_bedside":
        result = eq.schwartz_bedside(
            height_cm=measured("height"), scr_mg_per_dl=measured("serum_creatinine"), age_years=age()
        )
    else:  # pragma: no cover - parse_covariate_sources only lets known forms through
        raise InvalidInputError(f"covariate_sources.{name}.from", f"unknown form '{form}'")
    return CovariateDerivation(name, result.value, result.unit, result.formula, result.source, result.notes)


def resolve_covariates(
    sources: Mapping[str, Mapping[str, Any]], model: PopulationModel, facts: PatientFacts
) -> ResolvedCovariates:
    """Covariate values at time 0 and at every later time an input changes (see the module docstring)."""
    series = {kind: sorted(values) for kind, values in facts.measurements.items() if values}
    names = [name for name in sources if name in model.covariates]
    session_times = {
        t
        for modality, start, end in facts.sessions
        if modality == "intermittent_haemodialysis"
        for t in (start, None if end is None else end + DIALYSIS_STATUS_H + 1e-6)
        if t is not None and t > 0
    }
    horizon = float("inf") if facts.now_h is None else facts.now_h
    clock_times: set[float] = set()
    if math.isfinite(horizon) and any(sources[name]["from"] == "postmenstrual_age" for name in names):
        clock_times = {AGE_STEP_H * k for k in range(1, math.ceil(horizon / AGE_STEP_H))}
    change_times = sorted(
        t
        for t in {t for kind in series for t, _ in series[kind] if t > 0} | session_times | clock_times
        if t <= horizon
    )
    notes: list[str] = []
    for kind, values in series.items():
        if values[0][0] > 0:
            notes.append(
                f"{kind.replace('_', ' ')}: the first value, recorded {values[0][0]:.1f} h after the first "
                "dose, is also used before it"
            )
    missing: list[str] = []
    latest: dict[str, CovariateDerivation] = {}
    steps: dict[str, list[tuple[float, float]]] = {name: [] for name in names}  # raw piecewise values
    formulas: dict[tuple[str, float], str] = {}
    for time_h in [0.0, *change_times]:
        for name in names:
            try:
                derivation = _derive(name, sources[name], facts, series, time_h)
            except _Missing as exc:
                if str(exc) not in missing:
                    missing.append(str(exc))
                continue
            except InvalidInputError as exc:
                message = f"{name} at {time_h:.1f} h: {exc}"
                return ResolvedCovariates(False, message, {}, (), (), tuple(notes), tuple(missing))
            if not steps[name] or steps[name][-1][1] != derivation.value:
                steps[name].append((time_h, derivation.value))
                formulas[(name, time_h)] = derivation.formula
            if model.covariates[name].variation != "baseline" or time_h == 0.0:
                latest[name] = derivation
    initial = {name: values[0][1] for name, values in steps.items() if values and values[0][0] == 0.0}
    timeline: dict[float, dict[str, float]] = {}
    conflicts: list[BaselineConflict] = []
    for name, values in steps.items():
        variation = model.covariates[name].variation
        later = values[1:] if name in initial else values
        if variation == "baseline":
            if later and name in initial:
                time_h, value = later[0]
                conflicts.append(
                    BaselineConflict(name, time_h, initial[name], value, formulas[(name, time_h)])
                )
            continue
        if variation == "interpolated" and name in initial:
            anchors = _anchors(name, sources[name], facts, series, horizon)
            if anchors:
                initial[name], later = _interpolated(anchors)
        for time_h, value in later:
            timeline.setdefault(time_h, {})[name] = value
    changes = tuple((time_h, timeline[time_h]) for time_h in sorted(timeline))
    if missing:
        return ResolvedCovariates(
            False,
            "missing patient data: " + "; ".join(missing),
            initial,
            changes,
            (),
            tuple(notes),
            tuple(missing),
            tuple(conflicts),
        )
    return ResolvedCovariates(
        True, "", initial, changes, tuple(latest.values()), tuple(notes), (), tuple(conflicts)
    )


def _input_kinds(spec: Mapping[str, Any]) -> tuple[str, ...]:
    form = spec["from"]
    if form == "measurement":
        return (str(spec["kind"]),)
    kinds = _INPUTS.get(form, ())
    if form == "cockcroft_gault" and spec.get("weight_basis", "total") != "total":
        kinds = (*kinds, "height")
    return kinds


def _anchors(
    name: str, spec: Mapping[str, Any], facts: PatientFacts, series: Mapping[str, Sequence], horizon: float
) -> list[tuple[float, float]]:
    """The covariate's value at each time one of its inputs was measured (the points interpolated)."""
    times = sorted({t for kind in _input_kinds(spec) for t, _ in series.get(kind, ()) if t <= horizon})
    anchors = []
    for time_h in times:
        try:
            anchors.append((time_h, _derive(name, spec, facts, series, time_h).value))
        except (_Missing, InvalidInputError):
            continue  # an input not yet measured at that time: no point there
    return anchors


def _interpolated(anchors: Sequence[tuple[float, float]]) -> tuple[float, list[tuple[float, float]]]:
    """(value at time 0, changes after it) of the linear interpolation between measured points.

    Before the first point and after the last one the value is flat. Between two points the line is
    approximated by steps of at most INTERPOLATION_STEP_H hours, each holding the value at its midpoint.
    """
    steps: list[tuple[float, float]] = [(-math.inf, anchors[0][1])]
    for (t_a, v_a), (t_b, v_b) in itertools.pairwise(anchors):
        n = max(1, math.ceil((t_b - t_a) / INTERPOLATION_STEP_H - 1e-9))
        width = (t_b - t_a) / n
        for k in range(n):
            begin = t_a + k * width
            middle = begin + width / 2.0
            steps.append((begin, v_a + (v_b - v_a) * (middle - t_a) / (t_b - t_a)))
    steps.append((anchors[-1][0], anchors[-1][1]))
    initial = next(value for begin, value in reversed(steps) if begin <= 0.0)
    changes: list[tuple[float, float]] = []
    for begin, value in steps:
        if begin > 0.0 and (changes[-1][1] if changes else initial) != value:
            changes.append((begin, value))
    return initial, changes
