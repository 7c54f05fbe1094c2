"""May this model be used for this patient? The model's validity domain against the patient's record.

The facts come from the record at the time of the check: age, the latest weight, height and creatinine, the
postmenstrual age (when the gestational age at birth is recorded), a
model-independent Cockcroft-Gault clearance, the model's own covariate values over the course, and the
dialysis, CRRT and ECMO sessions of the course (from a week before its origin: a patient on maintenance
haemodialysis is "on haemodialysis" between sessions). When a model's hard domain excludes the patient, the
published models of the same drug whose domain fits are offered instead.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from dosing.adapters import CaseBuildError, model_covariates, patient_facts
from dosing.administration import allowed_routes
from mipd_engine import clinical_equations as eq
from mipd_engine.covariate_sources import DAYS_PER_YEAR, DIALYSIS_STATUS_H, PatientFacts, ResolvedCovariates
from mipd_engine.domain import DomainCheck, DomainFacts, check_domain
from mipd_engine.errors import InvalidInputError
from mipd_engine.model import PopulationModel, parse_model
from models_catalog.models import Drug, ModelVersion
from patients.models import Patient

RENAL_MODALITIES = frozenset({"intermittent_haemodialysis", "crrt", "peritoneal_dialysis"})


def _latest(facts: PatientFacts, kind: str, at_h: float) -> float | None:
    values = [value for time_h, value in facts.measurements.get(kind, ()) if time_h <= at_h + 1e-9]
    return values[-1] if values else None


def domain_facts(facts: PatientFacts, resolved: ResolvedCovariates | None, *, now_h: float) -> DomainFacts:
    """What the domain check reads, at ``now_h`` (hours from the case origin)."""
    age = (
        None
        if facts.age_years_at_origin is None
        else facts.age_years_at_origin + now_h / (24 * DAYS_PER_YEAR)
    )
    weight = _latest(facts, "weight", now_h)
    height = _latest(facts, "height", now_h)
    scr = _latest(facts, "serum_creatinine", now_h)
    gestational_age = _latest(facts, "gestational_age_at_birth", now_h)
    pma = None
    if age is not None and gestational_age is not None:
        try:
            pma = eq.postmenstrual_age_weeks(
                gestational_age_at_birth_weeks=gestational_age, postnatal_age_days=age * DAYS_PER_YEAR
            ).value
        except InvalidInputError:
            pma = None
    crcl = None
    if None not in (age, weight, scr) and facts.sex in ("male", "female"):
        try:
            crcl = eq.cockcroft_gault(age_years=age, weight_kg=weight, scr_mg_per_dl=scr, sex=facts.sex).value  # type: ignore[arg-type]
        except InvalidInputError:
            crcl = None
    values: dict[str, list[float]] = {
        key: [value]
        for key, value in (
            ("age_years", age),
            ("weight_kg", weight),
            ("height_cm", height),
            ("postmenstrual_age_weeks", pma),
            ("serum_creatinine_mg_per_dl", scr),
            ("crcl_ml_per_min", crcl),
        )
        if value is not None
    }
    if resolved is not None:
        for name, value in resolved.initial.items():
            values.setdefault(name, []).append(value)
        for _, changed in resolved.changes:
            for name, value in changed.items():
                values.setdefault(name, []).append(value)
    # In force now: a session running, one that ended less than a week ago for intermittent haemodialysis
    # (a patient dialysed three times a week stays dialysis-dependent between sessions), less than a day
    # ago for CRRT, peritoneal dialysis and ECMO.
    during = {
        modality
        for modality, start, end in facts.sessions
        if start <= now_h
        and (
            end is None
            or end >= now_h - (DIALYSIS_STATUS_H if modality == "intermittent_haemodialysis" else 24.0)
        )
    }
    renal = frozenset(during & RENAL_MODALITIES) or frozenset({"none"})
    return DomainFacts(values=values, renal_replacement=renal, ecmo="ecmo" in during)


def check(
    model: PopulationModel, facts: PatientFacts, resolved: ResolvedCovariates | None, *, now_h: float
) -> DomainCheck:
    units = {name: spec.unit for name, spec in model.covariates.items()}
    return check_domain(model.domain, domain_facts(facts, resolved, now_h=now_h), covariate_units=units)


@dataclass(frozen=True)
class Eligibility:
    version: ModelVersion
    check: DomainCheck
    missing: str = ""  # the record lacks what the model needs (its covariates cannot be computed)


def eligibility(
    *, patient: Patient, version: ModelVersion, origin: dt.datetime, now: dt.datetime, use_genotype: bool
) -> Eligibility:
    """The domain check of ``version`` for ``patient``, for a course starting at ``origin``."""
    model = parse_model(version.document)
    facts = patient_facts(patient, origin, use_genotype=use_genotype, now=now)
    now_h = (now - origin).total_seconds() / 3600.0
    try:
        resolved = model_covariates(version, model, facts)
    except CaseBuildError as exc:
        return Eligibility(version, check(model, facts, None, now_h=now_h), str(exc))
    missing = "" if resolved.success else resolved.message
    return Eligibility(
        version, check(model, facts, resolved if resolved.success else None, now_h=now_h), missing
    )


def eligible_alternatives(
    *, patient: Patient, drug: Drug, exclude: ModelVersion | None, now: dt.datetime, use_genotype: bool
) -> list[ModelVersion]:
    """Published models of ``drug`` whose hard domain fits the patient now (for a course starting now)."""
    versions = ModelVersion.objects.published().filter(drug=drug).order_by("model_id", "-published_at")
    fitting = []
    for version in versions:
        if exclude is not None and version.pk == exclude.pk:
            continue
        if not allowed_routes(drug, parse_model(version.document)):
            continue  # the model cannot represent how the drug is given
        result = eligibility(patient=patient, version=version, origin=now, now=now, use_genotype=use_genotype)
        if result.check.declared and result.check.eligible and not result.missing:
            fitting.append(version)  # usable now: its domain fits and the record holds what it needs
    return fitting
