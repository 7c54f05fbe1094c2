"""The only place where a therapy course's rows become the engine's case document.

Clock times become hours from the course's origin: its first dose, or, before any dose, the next half-hour
slot (the planned first dose), so that the same record gives the same document until that slot passes.
Levels go in the model output's unit; only levels in the fit (not entered in error, not excluded, and
accepted or confirmed by the plausibility check) are included. Covariates come from the patient's record
through the model version's ``covariate_sources``; a genotype is used only when the patient consented to its
use for dosing.

Reproducibility: the posterior seed is derived from the document itself (SHA-256 of its canonical JSON
without the seed), so the same record always gives the same document, the same hash and the same results.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from dosing.administration import allowed_routes, usual_route
from dosing.models import DoseAdministration, DrugLevel, TherapyCourse
from dosing.monitoring import series_in_fit, series_observations
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
from models_catalog.labels import is_infusion
from models_catalog.models import ModelVersion
from patients.models import ConsentRecord, Patient
from patients.selectors import consent_status

FORECAST_HORIZON_H = 72.0
GRID_POINTS = 400
BAND_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
POSTERIOR_SAMPLES = 2000
SLOT_H = 0.5  # next doses are proposed on the half hour
SAMPLING_HOURS = (8.0, 18.0)  # random-time levels are proposed within the laboratory's working day


class CaseBuildError(Exception):
    """The record cannot become a case (missing covariates, no covariate sources); says what is missing."""


class ModelIntegrityStop(CaseBuildError):
    """The course's model file no longer matches its seal: nothing may be computed with it."""


@dataclass(frozen=True)
class CourseCase:
    document: dict[str, Any]  # the case file given to the engine (model inline), seed included
    origin: dt.datetime  # clock time of t = 0 h
    now_h: float
    next_dose_h: float  # the earliest start of a new regimen (see earliest_start_hour)
    model: PopulationModel
    covariates: ResolvedCovariates
    facts: PatientFacts
    genotype_used: bool
    levels: tuple[DrugLevel, ...]  # the levels in the document, in its order
    seed: int
    inputs_sha256: str
    warnings: list[str] = field(default_factory=list)
    last_dose_h: float | None = None  # the start of the last recorded dose


def hours(moment: dt.datetime, origin: dt.datetime) -> float:
    return (moment - origin).total_seconds() / 3600.0


def canonical_sha256(document: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def seed_from(document: dict[str, Any]) -> int:
    """A seed determined by the case's content (its posterior block's seed left out)."""
    unseeded = {
        **document,
        "posterior": {k: v for k, v in document.get("posterior", {}).items() if k != "seed"},
    }
    return int(canonical_sha256(unseeded)[:15], 16)


def _age_years(birth_date: dt.date, at: dt.datetime) -> float:
    local = timezone.localtime(at).date()
    return (local - birth_date).days / 365.25


def _local_hour(moment: dt.datetime) -> float:
    local = timezone.localtime(moment)
    return local.hour + local.minute / 60.0 + local.second / 3600.0


def next_slot(moment: dt.datetime) -> dt.datetime:
    """The next half hour at or after ``moment`` (seconds dropped)."""
    slot = dt.timedelta(hours=SLOT_H)
    epoch = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    steps = math.ceil((moment - epoch) / slot - 1e-9)
    return epoch + steps * slot


def patient_facts(
    patient: Patient, origin: dt.datetime, *, use_genotype: bool, now: dt.datetime | None = None
) -> PatientFacts:
    measurements: dict[str, list[tuple[float, float]]] = {}
    for row in patient.measurements.filter(entered_in_error=False).order_by("measured_at", "pk"):
        measurements.setdefault(row.kind, []).append((hours(row.measured_at, origin), row.value))
    phenotypes: dict[str, str] = {}
    if use_genotype:
        for genotype in patient.genotypes.filter(entered_in_error=False).order_by(
            "gene", "-reported_on", "-pk"
        ):
            phenotypes.setdefault(genotype.gene, genotype.phenotype)
    sessions = [
        (
            session.modality,
            hours(session.started_at, origin),
            None if session.ended_at is None else hours(session.ended_at, origin),
        )
        for session in patient.support_sessions.filter(entered_in_error=False).order_by("started_at", "pk")
    ]
    sex = patient.sex if patient.sex in (Patient.Sex.MALE, Patient.Sex.FEMALE) else None
    return PatientFacts(
        age_years_at_origin=_age_years(patient.birth_date, origin),
        sex=sex,
        measurements=measurements,
        phenotypes=phenotypes,
        sessions=sessions,
        now_h=hours(now or timezone.now(), origin),
    )


def _dose_document(dose: DoseAdministration, origin: dt.datetime) -> dict[str, Any]:
    document: dict[str, Any] = {
        "time_h": hours(dose.given_at, origin),
        "amount_mg": dose.amount_mg,
        "route": dose.route,
    }
    if dose.infusion_duration_h and is_infusion(dose.route):
        document["duration_h"] = dose.infusion_duration_h
    return document


def level_document(level: DrugLevel, origin: dt.datetime, model: PopulationModel) -> dict[str, Any]:
    document: dict[str, Any] = {"time_h": hours(level.sampled_at, origin)}
    if level.below_lloq:
        document.update(value=None, lloq=level.lloq_model_unit)
    else:
        document["value"] = level.value_model_unit
    if level.model_output and level.model_output != model.default_output:
        document["output"] = level.model_output
    return document


def _dense_observations(
    course: TherapyCourse, origin: dt.datetime, first_dose_h: float | None
) -> tuple[list[dict[str, Any]], list[str]]:
    """The monitoring devices' points (each with its device's error model), and what was left out and why."""
    observations: list[dict[str, Any]] = []
    notes = []
    for series in series_in_fit(course):
        points = series_observations(series, origin)
        kept = [p for p in points if first_dose_h is not None and p["time_h"] >= first_dose_h]
        if len(kept) < len(points):
            notes.append(
                f"{len(points) - len(kept)} of the {len(points)} points of the {series.device} series "
                "precede the first dose now recorded: left out of the fit"
            )
        observations.extend(kept)
    return observations, notes


def levels_in_fit(course: TherapyCourse) -> list[DrugLevel]:
    return list(
        course.levels.filter(
            entered_in_error=False,
            excluded=False,
            plausibility__in=[DrugLevel.Plausibility.ACCEPTED, DrugLevel.Plausibility.CONFIRMED],
        ).order_by("sampled_at", "pk")
    )


def pending_levels(course: TherapyCourse) -> list[DrugLevel]:
    """Levels not yet scored for plausibility, in the order they were recorded."""
    return list(
        course.levels.filter(
            entered_in_error=False, excluded=False, plausibility=DrugLevel.Plausibility.PENDING
        ).order_by("recorded_at", "pk")
    )


def earliest_start_hour(dose_ends_h: list[tuple[float, float]], now_h: float) -> float:
    """The earliest a new regimen may start: the next half hour from now, never before the last dose ends.

    ``dose_ends_h`` are (start, end) times of the recorded doses. A regimen of interval τ starts τ after the
    last dose's start when that is later (``RegimenConstraints.last_dose_h``, :func:`regimen_start_hour`):
    after a loading dose, a q24h regimen starts 24 h later and a q8h one 8 h later.
    """
    soon = math.ceil(now_h / SLOT_H - 1e-9) * SLOT_H
    if not dose_ends_h:
        return soon
    return max(dose_ends_h[-1][1], soon)


def regimen_start_hour(case: CourseCase, interval_h: float | None) -> float:
    """When a regimen of ``interval_h`` starts on this course: one interval after the last dose, or now."""
    if interval_h is None or case.last_dose_h is None:
        return case.next_dose_h
    return max(case.next_dose_h, case.last_dose_h + interval_h)


def _constraints(
    course: TherapyCourse, doses: list[DoseAdministration], model: PopulationModel, weight_kg: float | None
) -> dict[str, Any]:
    drug = course.drug
    routes = allowed_routes(drug, model)
    if not routes:
        raise CaseBuildError(
            f"{drug}: none of the drug's routes ({', '.join(drug.routes)}) is a route of the model "
            f"({', '.join(model.routes)}); choose another model"
        )
    last = doses[-1].route if doses else None
    route = last if last in routes else usual_route(drug, model)
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
    if is_infusion(str(route)):
        if drug.max_infusion_rate_mg_per_h:
            constraints["max_infusion_rate_mg_per_h"] = drug.max_infusion_rate_mg_per_h
            if drug.usual_infusion_duration_h:
                constraints["min_infusion_duration_h"] = drug.usual_infusion_duration_h
        elif doses and doses[-1].infusion_duration_h:
            constraints["infusion_duration_h"] = doses[-1].infusion_duration_h
        elif drug.usual_infusion_duration_h:
            constraints["infusion_duration_h"] = drug.usual_infusion_duration_h
        else:
            raise CaseBuildError(
                f"{drug}: the catalog gives neither a maximum infusion rate nor a usual infusion duration, "
                "so no infusion can be proposed before a dose is recorded; a curator sets one on the drug's "
                "limits"
            )
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
    merged["route"] = drug_constraints["route"]  # a course target never changes how the drug is given
    if merged.get("continuous_infusion") and merged.get("interval_options_h") == []:
        # A continuous-infusion-only target: the drug's or the last dose's infusion duration describes
        # intermittent doses (the engine refuses it there); one the course target states is kept and refused.
        if "infusion_duration_h" not in course_target:
            merged.pop("infusion_duration_h", None)
    return merged


def model_covariates(
    version: ModelVersion, model: PopulationModel, facts: PatientFacts
) -> ResolvedCovariates:
    """The model's covariates from the patient's facts, through the version's covariate sources."""
    try:  # a model without covariates needs no source; one that uses covariates needs all of them
        sources = parse_covariate_sources(version.covariate_sources or {}, model)
    except InvalidInputError as exc:
        raise CaseBuildError(
            f"{version}: {exc}; a curator must complete the model's covariate sources"
        ) from None
    return resolve_covariates(sources, model, facts)


def course_origin(course: TherapyCourse, now: dt.datetime) -> tuple[dt.datetime, list[DoseAdministration]]:
    doses = list(course.doses.filter(entered_in_error=False).order_by("given_at", "pk"))
    return (doses[0].given_at if doses else next_slot(now)), doses


def course_case(
    course: TherapyCourse, *, now: dt.datetime | None = None, version: ModelVersion | None = None
) -> CourseCase:
    """The course's case document as recorded now: fit, bands, regimen search from the next dose.

    ``version``: another published model of the drug for the same record (model averaging); the course's own
    pinned version by default."""
    now = now or timezone.now()
    version = version or course.model_version
    try:  # the published file, checked against its seal at every use (models_catalog.integrity)
        model_document = integrity.document_for_dosing(version)
    except integrity.ModelIntegrityError as exc:
        raise ModelIntegrityStop(str(exc)) from None
    model = parse_model(model_document)
    origin, doses = course_origin(course, now)
    genotype_used = (
        consent_status(patient=course.patient, scope=ConsentRecord.Scope.GENOTYPE_USE) == "granted"
    )
    facts = patient_facts(course.patient, origin, use_genotype=genotype_used, now=now)
    resolved = model_covariates(version, model, facts)
    if not resolved.success:
        raise CaseBuildError(resolved.message)
    covariates, changes = resolved.case_covariates()
    levels = levels_in_fit(course)
    now_h = hours(now, origin)
    first_dose_h = min((hours(dose.given_at, origin) for dose in doses), default=None)
    dense, dense_notes = _dense_observations(course, origin, first_dose_h)
    dose_times = [hours(dose.given_at, origin) for dose in doses]
    dose_ends = [
        (t, t + (dose.infusion_duration_h or 0.0)) for t, dose in zip(dose_times, doses, strict=True)
    ]
    next_dose = earliest_start_hour(dose_ends, now_h)
    last_dose_h = dose_times[-1] if dose_times else None
    # The horizon follows the next dose (on the half hour), not the clock: the same record, the same grid.
    longest = max(course.drug.interval_options_h or [24.0])
    end_h = max(next_dose, (last_dose_h or 0.0) + longest) + FORECAST_HORIZON_H
    target = dict(course.target)
    info = METRICS.get(str(target.get("metric", "")))
    if course.mic_mg_per_l and info is not None and info.needs_mic:
        target["mic_mg_per_l"] = course.mic_mg_per_l  # the isolate's MIC, over the protocol's default
    weights = facts.measurements.get("weight") or []
    latest_weight = weights[-1][1] if weights else None
    target = {
        **_merge_limits(_constraints(course, doses, model, latest_weight), target),
        "start_h": next_dose,
    }
    if last_dose_h is not None:
        target["last_dose_h"] = last_dose_h
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
        "observations": [level_document(level, origin, model) for level in levels] + dense,
        "predict": {"from_h": 0.0, "to_h": end_h, "step_h": end_h / GRID_POINTS},
        "posterior": {"samples": POSTERIOR_SAMPLES, "quantiles": list(BAND_QUANTILES)},
        "target": target,
        "sampling": {"working_hours": list(SAMPLING_HOURS), "clock_offset_h": _local_hour(origin)},
    }
    seed = seed_from(document)
    document["posterior"] = {"samples": POSTERIOR_SAMPLES, "seed": seed, "quantiles": list(BAND_QUANTILES)}
    warnings = list(resolved.notes) + dense_notes
    if not genotype_used and course.patient.genotypes.filter(entered_in_error=False).exists():
        warnings.append("the patient's genotype is not used: no consent to use it for dosing")
    return CourseCase(
        document=document,
        origin=origin,
        now_h=now_h,
        next_dose_h=next_dose,
        model=model,
        covariates=resolved,
        facts=facts,
        genotype_used=genotype_used,
        levels=tuple(levels),
        seed=seed,
        inputs_sha256=canonical_sha256(document),
        warnings=warnings,
        last_dose_h=last_dose_h,
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
