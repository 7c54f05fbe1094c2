"""Where each model covariate comes from in a patient's record, and its values over time.

A catalog model declares, next to its model file, ``covariate_sources``: for each covariate, a measurement
(weight, height, albumin, dialysis, or any clinician-entered quantity), a demographic fact (age, sex), a
genotype-derived phenotype, or a clinical equation (Cockcroft-Gault with the model's weight rule, cap and
creatinine floor; CKD-EPI 2021; bedside Schwartz; body surface area). :func:`resolve_covariates` turns the
patient's facts into the piecewise-constant covariates of a case (a value at time 0 and changes later), with
every derivation and every assumption stated so the clinician can check it.

Semantics: a measured value holds from its time until the next one (last observation carried forward).
Before the first measurement the first value is used, and a note says so. Derived covariates are recomputed
at every time one of their inputs changes. Times are hours from the case origin (the first dose).
"""

from __future__ import annotations

import bisect
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
    "dialysis": "flag",
}
SOURCE_FORMS = frozenset(
    {
        "weight",
        "height",
        "age",
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
    "albumin": ("albumin",),
    "dialysis": ("dialysis",),
    "bsa": ("weight", "height"),
    "cockcroft_gault": ("weight", "serum_creatinine"),
    "ckd_epi_2021": ("serum_creatinine",),
    "schwartz_bedside": ("height", "serum_creatinine"),
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
    ``(time_h, value)`` pairs; ``phenotypes`` maps a gene to the phenotype the PGx tables called.
    """

    age_years_at_origin: float | None
    sex: str | None  # "male", "female", or None when unknown
    measurements: Mapping[str, Sequence[tuple[float, float]]] = field(default_factory=dict)
    phenotypes: Mapping[str, str] = field(default_factory=dict)


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
class ResolvedCovariates:
    success: bool
    message: str
    initial: dict[str, float]
    changes: tuple[tuple[float, dict[str, float]], ...]
    derivations: tuple[CovariateDerivation, ...]  # at the latest time, for display
    notes: tuple[str, ...]
    missing: tuple[str, ...]  # what the clinician must record, in words

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
            raise _Missing(f"{name} needs a {kind.replace('_', ' ')} measurement")
        return _value_at(series[kind], time_h)

    def age() -> float:
        if facts.age_years_at_origin is None:
            raise _Missing(f"{name} needs the birth date")
        return facts.age_years_at_origin + time_h / (24 * 365.25)

    def sex() -> str:
        if facts.sex not in ("male", "female"):
            raise _Missing(f"{name} needs the patient's sex (male or female) for its equation")
        return facts.sex

    if form in ("weight", "height", "albumin", "dialysis"):
        value = measured(form)
        return CovariateDerivation(name, value, CANONICAL_UNITS[form], f"{form} as measured")
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
    """Covariate values at time 0 and at every later time an input changes."""
    series = {kind: sorted(values) for kind, values in facts.measurements.items() if values}
    names = [name for name in sources if name in model.covariates]
    change_times = sorted({t for kind in series for t, _ in series[kind] if t > 0})
    notes: list[str] = []
    for kind, values in series.items():
        if values[0][0] > 0:
            notes.append(
                f"{kind.replace('_', ' ')}: the first value, recorded {values[0][0]:.1f} h after the first "
                "dose, is also used before it"
            )
    missing: list[str] = []
    initial: dict[str, float] = {}
    latest: dict[str, CovariateDerivation] = {}
    changes: list[tuple[float, dict[str, float]]] = []
    for time_h in [0.0, *change_times]:
        values: dict[str, float] = {}
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
            latest[name] = derivation
            values[name] = derivation.value
        if time_h == 0.0:
            initial = values
        else:
            changed = {
                name: value for name, value in values.items() if _last_value(changes, initial, name) != value
            }
            if changed:
                changes.append((time_h, changed))
    if missing:
        return ResolvedCovariates(
            False,
            "missing patient data: " + "; ".join(missing),
            initial,
            tuple(changes),
            (),
            tuple(notes),
            tuple(missing),
        )
    return ResolvedCovariates(True, "", initial, tuple(changes), tuple(latest.values()), tuple(notes), ())


def _last_value(
    changes: Sequence[tuple[float, Mapping[str, float]]], initial: Mapping[str, float], name: str
) -> float | None:
    for _, values in reversed(changes):
        if name in values:
            return values[name]
    return initial.get(name)
