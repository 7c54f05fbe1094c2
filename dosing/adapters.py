"""The only place where a therapy course's rows become the engine's case document.

Clock times become hours from the course's origin (its first dose; "now" when no dose is recorded yet).
Levels go in the model output's unit; doses and levels entered in error, and excluded levels, stay out.
Covariates come from the patient's record through the model version's ``covariate_sources``; a genotype is
used only when the patient consented to its use for dosing.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from dosing.models import DoseAdministration, DrugLevel, TherapyCourse
from mipd_engine.covariate_sources import (
    PatientFacts,
    ResolvedCovariates,
    parse_covariate_sources,
    resolve_covariates,
)
from mipd_engine.errors import InvalidInputError
from mipd_engine.model import PopulationModel, parse_model
from mipd_engine.regimens import Regimen
from mipd_engine.targets import METRICS
from models_catalog import integrity
from patients.models import ConsentRecord, Patient
from patients.selectors import consent_status

FORECAST_HORIZON_H = 72.0
GRID_POINTS = 400
BAND_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


class CaseBuildError(Exception):
    """The record cannot become a case (missing covariates, no covariate sources); says what is missing."""


@dataclass(frozen=True)
class CourseCase:
    document: dict[str, Any]  # the case file given to the engine (model inline)
    origin: dt.datetime  # clock time of t = 0 h
    now_h: float
    next_dose_h: float
    model: PopulationModel
    covariates: ResolvedCovariates
    genotype_used: bool
    warnings: list[str] = field(default_factory=list)


def hours(moment: dt.datetime, origin: dt.datetime) -> float:
    return (moment - origin).total_seconds() / 3600.0


def _age_years(birth_date: dt.date, at: dt.datetime) -> float:
    local = timezone.localtime(at).date()
    return (local - birth_date).days / 365.25


def patient_facts(patient: Patient, origin: dt.datetime, *, use_genotype: bool) -> PatientFacts:
    measurements: dict[str, list[tuple[float, float]]] = {}
    for row in patient.measurements.filter(entered_in_error=False).order_by("measured_at", "pk"):
        measurements.setdefault(row.kind, []).append((hours(row.measured_at, origin), row.value))
    phenotypes: dict[str, str] = {}
    if use_genotype:
        for genotype in patient.genotypes.filter(entered_in_error=False).order_by(
            "gene", "-reported_on", "-pk"
        ):
            phenotypes.setdefault(genotype.gene, genotype.phenotype)
    sex = patient.sex if patient.sex in (Patient.Sex.MALE, Patient.Sex.FEMALE) else None
    return PatientFacts(
        age_years_at_origin=_age_years(patient.birth_date, origin),
        sex=sex,
        measurements=measurements,
        phenotypes=phenotypes,
    )


def _dose_document(dose: DoseAdministration, origin: dt.datetime) -> dict[str, Any]:
    document: dict[str, Any] = {
        "time_h": hours(dose.given_at, origin),
        "amount_mg": dose.amount_mg,
        "route": dose.route,
    }
    if dose.infusion_duration_h:
        document["duration_h"] = dose.infusion_duration_h
    return document


def _level_document(level: DrugLevel, origin: dt.datetime, model: PopulationModel) -> dict[str, Any]:
    document: dict[str, Any] = {"time_h": hours(level.sampled_at, origin)}
    if level.below_lloq:
        document.update(value=None, lloq=level.lloq_model_unit)
    else:
        document["value"] = level.value_model_unit
    if level.model_output and level.model_output != model.default_output:
        document["output"] = level.model_output
    return document


def next_dose_hour(
    dose_ends_h: list[tuple[float, float]], now_h: float, interval_options_h: list[float]
) -> float:
    """When the next dose is due: never before the last recorded dose has ended, nor before now.

    ``dose_ends_h`` are (start, end) times of the recorded doses. With two or more, the last interval is
    repeated; with one, the shortest interval the drug allows. "Now" is rounded up to the half hour.
    """
    soon = math.ceil(now_h * 2.0) / 2.0
    if not dose_ends_h:
        return soon
    last_start, last_end = dose_ends_h[-1]
    starts = [start for start, _ in dose_ends_h]
    gaps = [b - a for a, b in itertools.pairwise(starts) if b - a > 0.1]
    interval = gaps[-1] if gaps else (min(interval_options_h) if interval_options_h else 0.0)
    due = last_start + interval
    return max(due, last_end, soon)  # the schedule's own time, or the next half hour from now


def population_warnings(model: PopulationModel, facts: PatientFacts, weight_kg: float | None) -> list[str]:
    """The model's population (age, weight) compared with the patient's: a warning when outside."""
    warnings = []
    population = model.population or {}
    age_range = population.get("age_years")
    if isinstance(age_range, list) and len(age_range) == 2 and facts.age_years_at_origin is not None:
        low, high = age_range
        if not low <= facts.age_years_at_origin <= high:
            warnings.append(
                f"age {facts.age_years_at_origin:.0f} years lies outside the population the model was "
                f"built on ({low:g}-{high:g} years)"
            )
    weight_range = population.get("weight_kg")
    if isinstance(weight_range, list) and len(weight_range) == 2 and weight_kg is not None:
        low, high = weight_range
        if not low <= weight_kg <= high:
            warnings.append(
                f"weight {weight_kg:g} kg lies outside the population the model was built on "
                f"({low:g}-{high:g} kg)"
            )
    return warnings


def _constraints(
    course: TherapyCourse, doses: list[DoseAdministration], model: PopulationModel, weight_kg: float | None
) -> dict[str, Any]:
    drug = course.drug
    route = doses[-1].route if doses else (drug.routes[0] if drug.routes else next(iter(model.routes)))
    constraints: dict[str, Any] = {"route": route}
    intervals = list(drug.interval_options_h or [])
    if not intervals and len(doses) >= 2:
        # The interval in use (doses recorded twice at one time would give 0: skip those).
        gaps = [hours(b.given_at, a.given_at) for a, b in itertools.pairwise(doses)]
        positive = [gap for gap in gaps if gap > 0.1]
        intervals = [round(positive[-1], 2)] if positive else []
    if intervals:
        constraints["interval_options_h"] = intervals
    if drug.strengths_mg:
        constraints["available_strengths_mg"] = list(drug.strengths_mg)
    elif drug.dose_step_mg:
        constraints["dose_step_mg"] = drug.dose_step_mg
    if drug.max_single_dose_mg:
        constraints["max_dose_mg"] = drug.max_single_dose_mg
    if drug.max_daily_dose_mg:
        constraints["max_daily_dose_mg"] = drug.max_daily_dose_mg
    if drug.max_daily_dose_mg_per_kg and weight_kg is not None:
        constraints.update(max_mg_per_kg_per_day=drug.max_daily_dose_mg_per_kg, weight_kg=weight_kg)
    if route == "iv_infusion":
        if drug.max_infusion_rate_mg_per_h:
            constraints["max_infusion_rate_mg_per_h"] = drug.max_infusion_rate_mg_per_h
        elif doses and doses[-1].infusion_duration_h:
            constraints["infusion_duration_h"] = doses[-1].infusion_duration_h
        if drug.continuous_infusion:
            constraints["continuous_infusion"] = True
    return constraints


# Hard limits: a course may narrow the drug's, never lift them.
_CEILINGS = ("max_dose_mg", "max_daily_dose_mg", "max_infusion_rate_mg_per_h", "max_mg_per_kg_per_day")


def _merge_limits(drug_constraints: dict[str, Any], course_target: dict[str, Any]) -> dict[str, Any]:
    merged = {**drug_constraints, **course_target}
    for key in _CEILINGS:
        values = [
            float(source[key]) for source in (drug_constraints, course_target) if source.get(key) is not None
        ]
        if values:
            merged[key] = min(values)
    return merged


def course_case(course: TherapyCourse, *, now: dt.datetime | None = None, seed: int = 1) -> CourseCase:
    """The course's case document as recorded now: fit, bands, regimen search from the next dose."""
    now = now or timezone.now()
    version = course.model_version
    try:  # the published file, checked against its seal at every use (models_catalog.integrity)
        model_document = integrity.document_for_dosing(version)
    except integrity.ModelIntegrityError as exc:
        raise CaseBuildError(str(exc)) from None
    model = parse_model(model_document)
    try:  # a model without covariates needs no source; one that uses covariates needs all of them
        sources = parse_covariate_sources(version.covariate_sources or {}, model)
    except InvalidInputError as exc:
        raise CaseBuildError(
            f"{version}: {exc}; a curator must complete the model's covariate sources"
        ) from None
    doses = list(course.doses.filter(entered_in_error=False).order_by("given_at", "pk"))
    origin = doses[0].given_at if doses else now
    genotype_used = (
        consent_status(patient=course.patient, scope=ConsentRecord.Scope.GENOTYPE_USE) == "granted"
    )
    facts = patient_facts(course.patient, origin, use_genotype=genotype_used)
    resolved = resolve_covariates(sources, model, facts)
    if not resolved.success:
        raise CaseBuildError(resolved.message)
    covariates, changes = resolved.case_covariates()
    levels = course.levels.filter(entered_in_error=False, excluded=False).order_by("sampled_at", "pk")
    now_h = hours(now, origin)
    dose_times = [hours(dose.given_at, origin) for dose in doses]
    dose_ends = [
        (t, t + (dose.infusion_duration_h or 0.0)) for t, dose in zip(dose_times, doses, strict=True)
    ]
    next_dose = next_dose_hour(dose_ends, now_h, list(course.drug.interval_options_h or []))
    end_h = max(now_h, next_dose, dose_times[-1] if dose_times else 0.0) + FORECAST_HORIZON_H
    target = dict(course.target)
    info = METRICS.get(str(target.get("metric", "")))
    if course.mic_mg_per_l and info is not None and info.needs_mic:
        target.setdefault("mic_mg_per_l", course.mic_mg_per_l)
    weights = facts.measurements.get("weight") or []
    latest_weight = weights[-1][1] if weights else None
    target = {
        **_merge_limits(_constraints(course, doses, model, latest_weight), target),
        "start_h": next_dose,
    }
    if "max_dose_mg" not in target:  # the regimen search never proposes a dose without a hard ceiling
        raise CaseBuildError(
            f"{course.drug}: the catalog gives no maximum single dose; a curator sets one for the drug "
            "(or the course's target states max_dose_mg)"
        )
    document = {
        "model": model_document,
        "covariates": covariates,
        "covariate_changes": changes,
        "doses": [_dose_document(dose, origin) for dose in doses],
        "observations": [_level_document(level, origin, model) for level in levels],
        "predict": {"from_h": 0.0, "to_h": end_h, "step_h": end_h / GRID_POINTS},
        "posterior": {"samples": 2000, "seed": seed, "quantiles": list(BAND_QUANTILES)},
        "target": target,
    }
    warnings = list(resolved.notes) + population_warnings(model, facts, latest_weight)
    if not genotype_used and course.patient.genotypes.filter(entered_in_error=False).exists():
        warnings.append("the patient's genotype is not used: no consent to use it for dosing")
    return CourseCase(
        document=document,
        origin=origin,
        now_h=now_h,
        next_dose_h=next_dose,
        model=model,
        covariates=resolved,
        genotype_used=genotype_used,
        warnings=warnings,
    )


def regimen_from_dict(document: dict[str, Any]) -> Regimen:
    """The engine's regimen from its ``as_dict`` form (or from a what-if form)."""
    return Regimen(
        dose_mg=float(document["dose_mg"]),
        interval_h=float(document["interval_h"]),
        start_h=float(document["start_h"]),
        route=str(document.get("route", "iv_infusion")),
        duration_h=float(document.get("duration_h") or 0.0),
        n_doses=document.get("n_doses"),
        loading_dose_mg=document.get("loading_dose_mg"),
        loading_duration_h=float(document.get("loading_duration_h") or 0.0),
        continuous=bool(document.get("continuous", False)),
    )


def regimen_doses(regimen: Regimen, *, until_h: float) -> list[dict[str, Any]]:
    """Case-file doses of a regimen, given until ``until_h`` when it runs until further notice."""
    documents = []
    for dose in regimen.doses(until_h=until_h):
        document: dict[str, Any] = {"time_h": dose.time_h, "amount_mg": dose.amount_mg, "route": dose.route}
        if dose.duration_h:
            document["duration_h"] = dose.duration_h
        if dose.additional:
            document.update(interval_h=dose.interval_h, additional=dose.additional)
        documents.append(document)
    return documents
