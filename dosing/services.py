"""Writes of the dosing workflow: courses, doses, levels, Bayesian updates and their recommendations.

Recording a dose, a level or a covariate asks for a Bayesian update of the course. The update row is created
in the same transaction and its task is enqueued after commit; a newer request supersedes updates of the
course that are still queued. The task claims its row and writes its results under the claim's token
(:mod:`dosing.claims`), so running it twice writes once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.roles import Role
from accounts.selectors import user_has_role
from dosing import (
    adapters,
    averaging,
    claims,
    eligibility,
    limits,
    plausibility,
    ranges,
    safety,
    signatures,
)
from dosing.administration import administration_problems, allowed_routes
from dosing.models import BayesianUpdate, DoseAdministration, DrugLevel, Recommendation, TherapyCourse
from dosing.orders import regimen_label
from dosing.results import (
    build_results,
    forecast_block,
    latest_weight_kg,
    plain_uncertainty,
    sampling_sentence,
)
from dosing.results import figures as results_figures
from dosing.transient import TRANSIENT_ERRORS
from mipd_engine import ENGINE_VERSION
from mipd_engine.case import parse_case
from mipd_engine.domain import DomainCheck
from mipd_engine.errors import EngineError
from mipd_engine.model import parse_model
from mipd_engine.reports import evaluate_case, recommend_case
from mipd_units import concentration as units
from models_catalog import integrity
from models_catalog.engine_adapter import target_from_document
from models_catalog.labels import is_infusion, route_label
from models_catalog.models import ModelVersion, TargetProtocol
from patients.clock import clinical_time
from patients.models import ConsentRecord, Patient
from patients.selectors import consent_status, latest_measurements

logger = logging.getLogger(__name__)
FUTURE_TOLERANCE = dt.timedelta(minutes=10)
PLANNED_DOSE_LIMIT = dt.timedelta(hours=1)  # a dose is recorded when given, not weeks ahead
START_GRACE_H = 0.25  # a first dose typed for "now" is not in the past
DUPLICATE_WINDOW = dt.timedelta(minutes=5)  # the same amount this close to a recorded dose: the same dose?
Status = BayesianUpdate.Status


def _require_clinician(user: AbstractBaseUser) -> None:
    if not user_has_role(user=user, role=Role.CLINICIAN):
        raise PermissionDenied("only clinicians record therapy data")


class ModelNotApplicable(ValidationError):
    """The patient lies outside the model's hard domain: ``stop`` says why and lists the models that fit."""

    def __init__(self, stop: safety.CaseStop) -> None:
        super().__init__({"model_version": [str(stop)]})
        self.stop = stop


class StopRequired(ValidationError):
    """The model may not be used for this patient now (a stop): the API answers 409 with the stop."""

    http_status = 409

    def __init__(self, stop: safety.CaseStop) -> None:
        super().__init__({"stop": [str(stop)]})
        self.stop = stop


class ConfirmationRequired(ValidationError):
    """The entry looks wrong (a duplicate, a rate above the limit): resend it with a confirmation reason."""

    http_status = 409  # the API answers 409 Conflict, naming the field


@transaction.atomic
def course_open(
    *,
    patient: Patient,
    model_version: ModelVersion,
    indication: str,
    user: AbstractBaseUser,
    target_protocol: TargetProtocol | None = None,
    target: dict[str, Any] | None = None,
    mic_mg_per_l: float | None = None,
    consent_override_reason: str = "",
    missing_data_reason: str = "",
    no_organ_support_confirmed: bool = False,
) -> TherapyCourse:
    """Open a course on a published model version that may be used for this patient.

    Refused, with the field named: a model outside whose hard domain the patient lies (the models whose domain
    fits are named), a model none of the drug's routes can be given by, a record that lacks what the model
    needs (unless a reason is given), an unconfirmed absence of dialysis, CRRT and ECMO when the model's
    domain or covariates depend on them, and model-based dosing without consent or a stated reason.
    """
    _require_clinician(user)
    if model_version.status != ModelVersion.Status.PUBLISHED:
        raise ValidationError(
            {"model_version": [f"{model_version} is {model_version.status}, not published"]}
        )
    try:  # never open a course on a model file that is not the published one
        integrity.document_for_dosing(model_version)
    except integrity.ModelIntegrityError as exc:
        raise ValidationError({"model_version": [str(exc)]}) from None
    if target_protocol is not None and target_protocol.drug_id != model_version.drug_id:
        raise ValidationError({"target_protocol": ["the protocol is for another drug"]})
    if target_protocol is not None and not target_protocol.active:
        raise ValidationError({"target_protocol": ["this protocol is no longer in use"]})
    if problem := ranges.target_problem(target):
        raise ValidationError({"target": [problem]})
    if mic_mg_per_l is not None:
        ranges.checked_number(mic_mg_per_l, ranges.MIC_MG_PER_L, field="mic_mg_per_l")
    target = dict(target or (target_protocol.target if target_protocol else {}))
    if not target:
        raise ValidationError({"target": ["choose a target protocol or give a target"]})
    target_from_document(target)
    consent = consent_status(patient=patient, scope=ConsentRecord.Scope.MODEL_BASED_DOSING)
    if consent in (ConsentRecord.Status.REFUSED, ConsentRecord.Status.WITHDRAWN):
        raise ValidationError(
            {"consent_override_reason": [f"the patient has {consent} consent to model-based dosing"]}
        )
    if consent != "granted" and not consent_override_reason.strip():
        raise ValidationError(
            {
                "consent_override_reason": [
                    f"consent to model-based dosing is {consent}: record the patient's consent, or state why "
                    "dosing proceeds without it"
                ]
            }
        )
    if mic_mg_per_l is not None and mic_mg_per_l <= 0:
        raise ValidationError({"mic_mg_per_l": ["must be positive"]})
    _check_model_fits_patient(
        patient=patient,
        version=model_version,
        missing_data_reason=missing_data_reason,
        no_organ_support_confirmed=no_organ_support_confirmed,
    )
    now = timezone.now()
    course = TherapyCourse(
        patient=patient,
        drug=model_version.drug,
        model_version=model_version,
        target_protocol=target_protocol,
        target=target,
        indication=indication.strip(),
        mic_mg_per_l=mic_mg_per_l,
        consent_override_reason=consent_override_reason.strip(),
        missing_data_reason=missing_data_reason.strip(),
        no_organ_support_confirmed_at=now if no_organ_support_confirmed else None,
        opened_by=user,
    )
    course.full_clean()
    course.save()
    update_request(course=course, user=user, trigger="course opened (a priori)")
    return course


def _uses_organ_support(version: ModelVersion, domain_keys: frozenset[str]) -> bool:
    sources = version.covariate_sources or {}
    return bool(domain_keys & {"renal_replacement", "ecmo"}) or any(
        spec.get("from") == "dialysis" for spec in sources.values() if isinstance(spec, dict)
    )


def _check_model_fits_patient(
    *, patient: Patient, version: ModelVersion, missing_data_reason: str, no_organ_support_confirmed: bool
) -> None:
    model = parse_model(version.document)
    drug = version.drug
    if not allowed_routes(drug, model):
        raise ValidationError(
            {
                "model_version": [
                    f"{version.title} cannot represent how {drug} is given "
                    f"({', '.join(route_label(r) for r in drug.routes)}): choose another model"
                ]
            }
        )
    if model.domain is None:
        raise ModelNotApplicable(safety.no_domain_stop(version))
    now = timezone.now()
    use_genotype = consent_status(patient=patient, scope=ConsentRecord.Scope.GENOTYPE_USE) == "granted"
    result = eligibility.eligibility(
        patient=patient, version=version, origin=now, now=now, use_genotype=use_genotype
    )
    outside = [finding for finding in result.check.hard if not finding.missing]
    if outside:
        alternatives = eligibility.eligible_alternatives(
            patient=patient, drug=drug, exclude=version, now=now, use_genotype=use_genotype
        )
        raise ModelNotApplicable(safety.domain_stop(version, result.check, alternatives))
    lacking = [result.missing.removeprefix("missing patient data: ")] if result.missing else []
    lacking += [finding.message for finding in result.check.hard if finding.missing and finding.key]
    if lacking and not missing_data_reason.strip():
        raise ValidationError(
            {
                "missing_data_reason": [
                    f"the record lacks what {version.title} needs: {'; '.join(dict.fromkeys(lacking))}. "
                    "Record it on the patient's page first, or state why the course opens without it "
                    "(no recommendation is made until it is recorded)"
                ]
            }
        )
    recorded = patient.support_sessions.filter(entered_in_error=False).exists()
    domain_keys = model.domain.keys if model.domain else frozenset()
    if _uses_organ_support(version, domain_keys) and not recorded and not no_organ_support_confirmed:
        raise ValidationError(
            {
                "no_organ_support_confirmed": [
                    f"{version.title} depends on dialysis, CRRT and ECMO, and none is recorded: confirm that "
                    "the patient receives none, or record the sessions on the patient's page"
                ]
            }
        )


@transaction.atomic
def dose_record(
    *,
    course: TherapyCourse,
    given_at: dt.datetime,
    amount_mg: float,
    route: str,
    user: AbstractBaseUser,
    infusion_duration_h: float | None = None,
    confirmation_reason: str = "",
) -> DoseAdministration:
    """Record a dose as given. Refused: a route the drug or the model does not have, a bolus with a duration,
    an infusion without one. Held for confirmation (:class:`ConfirmationRequired`, resend with a
    ``confirmation_reason``): a dose identical to one already recorded, or an infusion faster than the
    drug's maximum rate; the reason and what was unusual are kept on the dose."""
    _require_clinician(user)
    given_at = clinical_time(given_at, field="given_at")
    if given_at > timezone.now() + PLANNED_DOSE_LIMIT:
        raise ValidationError({"given_at": ["record a dose when it is given, not in advance"]})
    if amount_mg is None or amount_mg <= 0:
        raise ValidationError({"amount_mg": ["must be positive"]})
    ranges.checked_number(amount_mg, ranges.DOSE_MG, field="amount_mg")
    if infusion_duration_h is not None and infusion_duration_h > 0:
        ranges.checked_number(infusion_duration_h, ranges.INFUSION_DURATION_H, field="infusion_duration_h")
    drug = course.drug
    limit = drug.max_single_dose_mg
    if limit and amount_mg > 3 * limit:
        raise ValidationError(
            {"amount_mg": [f"{amount_mg:g} mg is over three times the maximum dose ({limit:g} mg)"]}
        )
    model = parse_model(course.model_version.document)
    if infusion_duration_h is not None and infusion_duration_h <= 0:
        raise ValidationError({"infusion_duration_h": ["must be positive"]})
    problems = administration_problems(
        drug=drug, model=model, route=route, dose_mg=None, duration_h=infusion_duration_h
    )
    if problems:
        raise ValidationError({field: [message] for field, message in problems.items()})
    if given_at.date() < course.patient.birth_date:
        raise ValidationError({"given_at": ["lies before the patient's birth"]})
    notices = _dose_notices(
        course=course, given_at=given_at, amount_mg=amount_mg, route=route, duration_h=infusion_duration_h
    )
    if notices and not confirmation_reason.strip():
        raise ConfirmationRequired(
            {
                "confirmation_reason": [
                    " ".join(notice["message"] for notice in notices)
                    + " If this is right, record the dose again with a confirmation reason."
                ]
            }
        )
    dose = DoseAdministration(
        course=course,
        given_at=given_at,
        amount_mg=amount_mg,
        route=route,
        infusion_duration_h=infusion_duration_h if is_infusion(route) else None,
        notices=[
            {**notice, "confirmed_by": str(user), "reason": confirmation_reason.strip()} for notice in notices
        ],
        recorded_by=user,
    )
    dose.full_clean()
    dose.save()
    update_request(course=course, user=user, trigger=f"dose {amount_mg:g} mg recorded")
    return dose


def _dose_notices(
    *, course: TherapyCourse, given_at: dt.datetime, amount_mg: float, route: str, duration_h: float | None
) -> list[dict[str, str]]:
    """What is unusual about a dose about to be recorded: a duplicate, an infusion above the rate limit."""
    notices = []
    duplicate = course.doses.filter(
        entered_in_error=False,
        given_at__gte=given_at - DUPLICATE_WINDOW,
        given_at__lte=given_at + DUPLICATE_WINDOW,
        amount_mg=amount_mg,
    ).first()
    if duplicate is not None:
        notices.append(
            {
                "code": "duplicate",
                "message": f"A dose of {amount_mg:g} mg at "
                f"{timezone.localtime(duplicate.given_at):%Y-%m-%d %H:%M}"
                " is already recorded: recording it again doubles the dose in the fit.",
            }
        )
    problems = administration_problems(
        drug=course.drug,
        model=parse_model(course.model_version.document),
        route=route,
        dose_mg=amount_mg,
        duration_h=duration_h,
    )
    if "infusion_duration_h" in problems:
        notices.append({"code": "rate_above_limit", "message": problems["infusion_duration_h"] + "."})
    return notices


@transaction.atomic
def level_record(
    *,
    course: TherapyCourse,
    sampled_at: dt.datetime,
    unit: str,
    user: AbstractBaseUser,
    value: float | None = None,
    lloq: float | None = None,
    below_lloq: bool = False,
    assay: str = "",
    model_output: str = "",
) -> DrugLevel:
    """Store a level with its value in the model's unit; refuse what cannot be right.

    A number below the LLOQ is stored as a result below the LLOQ (the number kept, with a notice); 0 is
    refused unless marked below the LLOQ. A level drawn during an infusion is flagged. The level enters the
    fit only after the next update has scored it against what the patient's model expects (held if not).
    """
    _require_clinician(user)
    sampled_at = clinical_time(sampled_at, field="sampled_at")
    if sampled_at > timezone.now() + FUTURE_TOLERANCE:
        raise ValidationError({"sampled_at": ["lies in the future"]})
    first = course.doses.filter(entered_in_error=False).order_by("given_at").first()
    if first is None:
        raise ValidationError({"sampled_at": ["record the doses first: the course has no dose yet"]})
    if sampled_at < first.given_at:
        raise ValidationError({"sampled_at": ["the level was sampled before the first dose"]})
    model = parse_model(course.model_version.document)
    output = model_output or model.default_output
    if output not in model.outputs:
        raise ValidationError({"model_output": [f"the model has no output '{output}'"]})
    model_unit = model.outputs[output].unit
    molar_mass = course.drug.molar_mass_g_per_mol
    if below_lloq:
        if value is not None:
            raise ValidationError({"value": ["a result below the LLOQ has no value"]})
        if lloq is None or lloq <= 0:
            raise ValidationError({"lloq": ["give the lower limit of quantification"]})
    elif value is None:
        raise ValidationError({"value": ["give the value, or mark the result below the LLOQ"]})
    elif value < 0:
        raise ValidationError({"value": ["a concentration cannot be negative"]})
    elif value == 0:
        raise ValidationError(
            {"value": ["0 is not a measured concentration: mark the result below the LLOQ and give the LLOQ"]}
        )
    notices: list[dict[str, str]] = []
    value_as_entered = None
    if lloq is not None and lloq <= 0:
        raise ValidationError({"lloq": ["must be positive"]})
    if value is not None:
        ranges.checked_number(value, ranges.LEVEL_VALUE, field="value")
    if lloq is not None:
        ranges.checked_number(lloq, ranges.LLOQ, field="lloq")
    if not below_lloq and value is not None and lloq is not None and value < lloq:
        notices.append(
            {
                "code": "below_lloq",
                "message": f"{value:g} {unit} is below the LLOQ ({lloq:g} {unit}): used as a result below "
                "the LLOQ, not as a number",
            }
        )
        value_as_entered, value, below_lloq = value, None, True
    try:
        value_model = (
            None if value is None else units.convert(value, unit, model_unit, molar_mass_g_per_mol=molar_mass)
        )
        lloq_model = (
            None if lloq is None else units.convert(lloq, unit, model_unit, molar_mass_g_per_mol=molar_mass)
        )
    except units.UnitError as exc:
        raise ValidationError({"unit": [str(exc)]}) from None
    ceiling = course.drug.max_plausible_concentration  # in the drug's concentration unit
    drug_unit = course.drug.concentration_unit
    value_drug = (
        None if value is None else units.convert(value, unit, drug_unit, molar_mass_g_per_mol=molar_mass)
    )
    if value_drug is not None and ceiling is not None and value_drug > ceiling:
        raise ValidationError(
            {
                "value": [
                    f"{value:g} {unit} is {value_drug:g} {drug_unit}, above the plausible maximum "
                    f"{ceiling:g} {drug_unit}: check the value and the unit"
                ]
            }
        )
    during = _infusion_running_at(course, sampled_at)
    if during is not None:
        end = during.given_at + dt.timedelta(hours=during.infusion_duration_h or 0.0)
        notices.append(
            {
                "code": "during_infusion",
                "message": f"the level at {timezone.localtime(sampled_at):%Y-%m-%d %H:%M} was drawn "
                "during the "
                f"infusion of {during.amount_mg:g} mg ({timezone.localtime(during.given_at):%H:%M}-"
                f"{timezone.localtime(end):%H:%M}): if it came from the infusion line or arm it is far too "
                "high; check the sampling site and time",
            }
        )
    level = DrugLevel(
        course=course,
        sampled_at=sampled_at,
        value=value,
        unit=unit.strip(),
        value_model_unit=value_model,
        lloq=lloq,
        lloq_model_unit=lloq_model,
        below_lloq=below_lloq,
        value_as_entered=value_as_entered,
        assay=assay.strip(),
        model_output="" if output == model.default_output else output,
        notices=notices,
        recorded_by=user,
    )
    level.full_clean()
    level.save()
    update_request(course=course, user=user, trigger="new level")
    return level


def _infusion_running_at(course: TherapyCourse, moment: dt.datetime) -> DoseAdministration | None:
    for dose in course.doses.filter(entered_in_error=False, infusion_duration_h__isnull=False):
        end = dose.given_at + dt.timedelta(hours=dose.infusion_duration_h or 0.0)
        if dose.given_at < moment < end:
            return dose
    return None


@transaction.atomic
def level_confirm(*, level: DrugLevel, reason: str, user: AbstractBaseUser) -> DrugLevel:
    """A clinician confirms a level held as implausible (e.g. re-measured): it enters the next fit."""
    _require_clinician(user)
    if not reason.strip():
        raise ValidationError({"reason": ["say why the level is right (e.g. re-measured, sampling checked)"]})
    level = DrugLevel.objects.select_for_update().get(pk=level.pk)
    if level.plausibility != DrugLevel.Plausibility.HELD or level.entered_in_error:
        raise ValidationError(
            {"reason": [f"this level is not held ({level.get_plausibility_display().lower()})"]}
        )
    level.plausibility = DrugLevel.Plausibility.CONFIRMED
    level.confirmation_reason = reason.strip()
    level.confirmed_by = user
    level.confirmed_at = timezone.now()
    level.full_clean()
    level.save(update_fields=["plausibility", "confirmation_reason", "confirmed_by", "confirmed_at"])
    update_request(course=level.course, user=user, trigger="held level confirmed")
    return level


@transaction.atomic
def level_exclude(*, level: DrugLevel, reason: str, user: AbstractBaseUser) -> DrugLevel:
    """Leave a valid measurement out of the fit (e.g. sampled from the infusion line), with the reason."""
    _require_clinician(user)
    if not reason.strip():
        raise ValidationError({"reason": ["say why the level is excluded"]})
    if level.excluded or level.entered_in_error:
        raise ValidationError({"reason": ["this level is already left out of the fit"]})
    level.excluded = True
    level.exclusion_reason = reason.strip()
    level.excluded_by = user
    level.excluded_at = timezone.now()
    level.save(update_fields=["excluded", "exclusion_reason", "excluded_by", "excluded_at"])
    update_request(course=level.course, user=user, trigger="level excluded")
    return level


@transaction.atomic
def entry_mark_in_error(*, entry: Any, reason: str, user: AbstractBaseUser) -> Any:
    """A dose, level or device series wrongly recorded: kept for the record, left out of every later fit."""
    _require_clinician(user)
    entry.mark_in_error(reason=reason, user=user)
    kind = {DoseAdministration: "dose", DrugLevel: "level"}.get(type(entry), "monitoring series")
    update_request(course=entry.course, user=user, trigger=f"{kind} entered in error")
    return entry


def update_request(*, course: TherapyCourse, user: AbstractBaseUser, trigger: str) -> BayesianUpdate:
    """Queue an update of the course; older queued ones are superseded. Runs after the transaction commits.

    New data makes the pending recommendation stale: it is superseded at once, so nobody approves a regimen
    computed without the latest dose, level, covariate or consent.
    """
    from dosing.outbox import outbox_add  # outbox imports tasks, which import services

    _require_clinician(user)
    with transaction.atomic():
        TherapyCourse.objects.select_for_update().filter(pk=course.pk).first()  # one request at a time
        now = timezone.now()
        course.updates.filter(status=Status.QUEUED).update(status=Status.SUPERSEDED, finished_at=now)
        updates_fail_stale(course.updates.all(), now)  # new data replaces a dead worker's update
        course.recommendations.filter(status=Recommendation.Status.PENDING_REVIEW).update(
            status=Recommendation.Status.SUPERSEDED
        )
        update = BayesianUpdate.objects.create(
            course=course, trigger=trigger[:200], requested_by=user, model_version=course.model_version
        )
        outbox_add(update=update)  # same transaction as the update: delivered on commit or later
    return update


def updates_fail_stale(updates: QuerySet[BayesianUpdate], now: dt.datetime) -> int:
    """RUNNING rows past the limit belong to a worker that died: failed with that reason, for a new update
    about to replace them (the periodic reaper requeues instead). Returns how many."""
    reason = f"the worker stopped before finishing (ran past the {settings.TASK_TIME_LIMIT_S} s limit)"
    return claims.release_stale(updates, now=now, reason=reason)


def updates_request_for_patient(*, patient: Patient, user: AbstractBaseUser, trigger: str) -> None:
    for course in patient.courses.filter(status=TherapyCourse.Status.ACTIVE):
        update_request(course=course, user=user, trigger=trigger)


def _fail(update: BayesianUpdate, message: str, *, stop: dict[str, Any] | None = None) -> BayesianUpdate:
    """Store a failure with its reason, if this run still holds the claim; a stop (why no recommendation,
    what to do) goes in the results."""
    results = {"stop": stop} if stop else {}
    claims.fenced(update).update(
        status=Status.FAILED, error=message[:5000], finished_at=timezone.now(), results=results
    )
    return BayesianUpdate.objects.get(pk=update.pk)


def model_based_dosing_blocked(course: TherapyCourse) -> str:
    """Why model-based dosing may not run for this course now, or "" when it may.

    Consent granted: it may. Otherwise the override reason recorded when the course was opened counts only
    while the patient has not refused or withdrawn consent since: a later refusal always blocks.
    """
    latest = (
        course.patient.consents.filter(scope=ConsentRecord.Scope.MODEL_BASED_DOSING)
        .order_by("-recorded_at", "-pk")
        .first()
    )
    if latest is not None and latest.status == ConsentRecord.Status.GRANTED:
        return ""
    status = latest.status if latest else "not recorded"
    if latest is not None and latest.recorded_at >= course.opened_at:
        return (
            f"model-based dosing is blocked: the patient's consent was {status} after the course was opened"
        )
    if not course.consent_override_reason:
        return f"model-based dosing is blocked: consent is {status} and no override reason is recorded"
    return ""


def update_run(*, update_id: int, task_id: str = "") -> BayesianUpdate | None:
    """Run one queued update: build the case, fit, band, search regimens, forecast; store everything.

    ``task_id`` is the delivering task's id: its redelivery may take the claim over. Returns None when this
    delivery may not run the update (claimed by another, finished, superseded, out of attempts) or lost its
    claim while running. Expected failures (missing covariates, a fit that does not converge) are stored
    with their reason; so is any unexpected error, so that no row stays RUNNING.
    """
    update = claims.update_claim(update_id=update_id, task_id=task_id)
    if update is None:
        return None
    course = update.course
    timings: dict[str, float] = {}
    started = time.perf_counter()
    blocked = model_based_dosing_blocked(course)
    if blocked:
        return _fail(update, blocked, stop={"code": "consent", "message": blocked, "action": _CONSENT_ACTION})
    try:
        case = adapters.course_case(course)
        case = plausibility.score_pending_levels(course, case, update_id=update.pk)
        check = eligibility.check(case.model, case.facts, case.covariates, now_h=case.now_h)
        _stop_when_not_applicable(course, case, check)
        owned = claims.fenced(update).update(
            inputs=case.document,
            inputs_sha256=case.inputs_sha256,
            seed=case.seed,
            origin=case.origin,
            engine_version=ENGINE_VERSION,
        )
        if not owned:  # reaped or taken over by a redelivery meanwhile: that run computes it
            return None
        engine_case = parse_case(case.document)
        timings["build_s"] = time.perf_counter() - started
        tic = time.perf_counter()
        strategy = averaging.strategy_of(course.drug)
        if strategy.mode == averaging.Mode.PINNED:  # the best regimen's forecast comes from the same draws
            recommended = recommend_case(engine_case, forecast=True)
        else:  # the drug's eligible models, selected or averaged (the course's own model among them)
            recommended = averaging.recommend_for_course(course=course, case=case, strategy=strategy)
        timings["engine_s"] = time.perf_counter() - tic
        forecast = recommended.get("forecast")
        alerts = safety.alerts_for(
            course=course,
            case=case,
            check=check,
            engine_warnings=list(recommended.get("warnings", [])),
            search=recommended,
        )
        results = build_results(
            case=case, course=course, recommended=recommended, forecast=forecast, alerts=alerts
        )
        if "averaging" in recommended:
            results["averaging"] = recommended["averaging"]
        timings["total_s"] = time.perf_counter() - started
        return _finish(update, recommended=recommended, results=results, timings=timings)
    except safety.CaseStop as stop:
        return _fail(update, str(stop), stop=stop.as_dict())
    except adapters.ModelIntegrityStop as exc:
        stop = {"code": "model_integrity", "message": str(exc), "action": _INTEGRITY_ACTION}
        return _fail(update, str(exc), stop=stop)
    except adapters.CaseBuildError as exc:
        return _fail(
            update,
            str(exc),
            stop={"code": "missing_data", "message": str(exc), "action": _MISSING_DATA_ACTION},
        )
    except EngineError as exc:  # an estimation failure: shown with its message, never retried
        return _fail(update, f"the engine refused the case: {exc}")
    except TRANSIENT_ERRORS:  # the database or the broker away: the task retries with backoff
        raise
    except Exception as exc:  # unexpected: keep the reason on the row, and the traceback in the log
        logger.exception("Bayesian update %s failed", update.pk)
        return _fail(update, f"internal error: {type(exc).__name__}: {exc}")


_CONSENT_ACTION = "Record the patient's consent on the patient page, or close the course"
_INTEGRITY_ACTION = (
    "Do not dose with this model version: tell the model curators and IT (the audit trail holds the alert); "
    "a new course on a checked version can be opened meanwhile"
)
_MISSING_DATA_ACTION = "Record the missing data on the patient page; the update then runs again by itself"


def _stop_if_not_applicable_now(course: TherapyCourse, case: adapters.CourseCase) -> None:
    """Every stop of an update, for anything computed from the course now (what-if): consent, the model's
    hard domain and the baseline covariates."""
    blocked = model_based_dosing_blocked(course)
    if blocked:
        raise safety.CaseStop("consent", blocked, _CONSENT_ACTION)
    check = eligibility.check(case.model, case.facts, case.covariates, now_h=case.now_h)
    _stop_when_not_applicable(course, case, check)


def _stop_when_not_applicable(course: TherapyCourse, case: adapters.CourseCase, check: DomainCheck) -> None:
    """Raise a :class:`safety.CaseStop` when the model may not be used for this patient as recorded now."""
    version = course.model_version
    if not check.declared:
        raise safety.no_domain_stop(version)
    conflicts = case.covariates.baseline_conflicts
    if check.eligible and not conflicts:
        return
    now = timezone.now()
    alternatives = eligibility.eligible_alternatives(
        patient=course.patient, drug=course.drug, exclude=version, now=now, use_genotype=case.genotype_used
    )
    if not check.eligible:
        raise safety.domain_stop(version, check, alternatives)
    stop = safety.baseline_stop(case, version, alternatives)
    assert stop is not None
    raise stop


def _finish(
    update: BayesianUpdate, *, recommended: dict[str, Any], results: dict[str, Any], timings: dict[str, float]
) -> BayesianUpdate:
    """Store the outcome with the status change in one transaction, only while this run holds the claim
    (not reaped, not taken over); a newer update that finished first makes it superseded."""
    with transaction.atomic():
        TherapyCourse.objects.select_for_update().filter(pk=update.course_id).first()
        owned = claims.fenced(update).select_for_update().first()
        if owned is None:  # reaped, or taken over by a redelivery: the run holding the token writes
            return BayesianUpdate.objects.get(pk=update.pk)
        update = owned
        newer = update.course.updates.filter(pk__gt=update.pk, status=Status.SUCCEEDED).exists()
        if newer:
            update.status = Status.SUPERSEDED
            update.error = "a newer update finished first; this one's results are kept for the record only"
        elif not recommended["success"]:
            update.status = Status.FAILED
            update.error = "the fit did not converge: " + (recommended.get("message") or "no reason given")
        else:
            update.status = Status.SUCCEEDED
        update.results = results
        update.timings_s = timings
        update.finished_at = timezone.now()
        update.save()
        if update.status == Status.SUCCEEDED and results.get("recommendation"):
            _recommendation_store(update, results)
    return update


def _recommendation_store(update: BayesianUpdate, results: dict[str, Any]) -> Recommendation:
    course = update.course
    course.recommendations.filter(
        status=Recommendation.Status.PENDING_REVIEW, update__pk__lt=update.pk
    ).update(status=Recommendation.Status.SUPERSEDED)
    best = results["recommendation"]
    return Recommendation.objects.create(
        course=course,
        update=update,
        basis=results["basis"],
        regimen=best["regimen"],
        predicted=best["predicted"],
        probability_of_target=best["pta"],
        probability_of_toxicity=best.get("p_toxic"),
        rationale=best["rationale"],
        uncertainty_text=plain_uncertainty(best["predicted"], best["pta"]),
        warnings=results["warnings"],
        alerts=results["alerts"],
        candidates=results["regimens"],
    )


def what_if(*, course: TherapyCourse, regimen: dict[str, Any]) -> dict[str, Any]:
    """The forecast of a regimen the clinician types, on the course as recorded now (not stored).

    The regimen obeys the same administration rules as an order: the drug's routes only, no duration for a
    bolus, no infusion faster than the drug's rate limit.
    """
    problems = administration_problems(
        drug=course.drug,
        model=parse_model(course.model_version.document),
        route=str(regimen.get("route", "")),
        dose_mg=float(regimen["dose_mg"]),
        duration_h=float(regimen.get("duration_h") or 0.0) or None,
    )
    if problems:
        raise ValidationError(
            {
                ("duration_h" if field == "infusion_duration_h" else field): [m]
                for field, m in problems.items()
            }
        )
    interval_h, n_doses = float(regimen["interval_h"]), regimen.get("n_doses")
    limits.check_horizon(drug=course.drug, interval_h=interval_h, n_doses=n_doses, lead_h=None)
    try:
        case = adapters.course_case(course)
        _stop_if_not_applicable_now(course, case)
        start_h = adapters.regimen_start_hour(case, interval_h)
        if regimen.get("start_at"):
            start_h = _start_hour(regimen["start_at"], origin=case.origin, doses=case.document["doses"])
        limits.check_horizon(
            drug=course.drug, interval_h=interval_h, n_doses=n_doses, lead_h=start_h - case.now_h
        )
        evaluated = regimen_figures(case, {**regimen, "start_h": start_h})
    except safety.CaseStop as stop:
        raise StopRequired(stop) from None
    except adapters.CaseBuildError as exc:
        raise ValidationError(str(exc)) from None
    except EngineError as exc:
        raise ValidationError(f"the engine refused this regimen: {exc}") from None
    if not evaluated["success"]:
        raise ValidationError("the fit did not converge: " + (evaluated.get("message") or ""))
    return {
        "case": case,
        "start_h": start_h,
        "forecast": evaluated["forecast"],
        "fit": evaluated,
        "target": evaluated.get("target"),
        "figures": results_figures(
            evaluated["regimens"][0],
            drug=course.drug,
            origin=case.origin,
            weight_kg=latest_weight_kg(case),
        ),
    }


def _start_hour(
    start_at: dt.datetime, *, origin: dt.datetime, doses: list[dict[str, Any]], field: str = "start_at"
) -> float:
    """A typed first-dose time as record hours: not in the past, nor before the last recorded dose ends."""
    start_h = adapters.hours(clinical_time(start_at, field="start_at"), origin)
    now_h = adapters.hours(timezone.now(), origin)
    ends = [dose["time_h"] + dose.get("duration_h", 0.0) for dose in doses]
    if start_h < now_h - START_GRACE_H or (ends and start_h < max(ends) - 1e-9):
        raise ValidationError(
            {field: ["the first dose cannot start in the past or before the last dose has ended"]}
        )
    return start_h


def regimen_figures(case: adapters.CourseCase, regimen: dict[str, Any]) -> dict[str, Any]:
    """The engine's figures and forecast of one regimen on the course's case (same draws as its update)."""
    return evaluate_case(parse_case(case.document), [adapters.regimen_from_dict(regimen)])


def _checked_regimen(recommendation: Recommendation, regimen: dict[str, Any]) -> dict[str, Any]:
    """A pharmacist's changed regimen within the same hard limits as the engine's (route and start kept)."""
    drug = recommendation.course.drug
    if regimen.get("dose_mg") is None or regimen.get("interval_h") is None:
        raise ValidationError({"final_regimen": ["give the dose (mg) and the interval (h)"]})
    dose_mg = ranges.checked_number(regimen["dose_mg"], ranges.DOSE_MG, field="final_regimen", part="dose_mg")
    interval_h = ranges.checked_number(
        regimen["interval_h"], ranges.INTERVAL_H, field="final_regimen", part="interval_h"
    )
    duration_h = ranges.checked_number(
        regimen.get("duration_h") or 0.0,
        ranges.INFUSION_DURATION_H,
        field="final_regimen",
        part="duration_h",
    )
    if duration_h > interval_h + 1e-9:  # the ranges above already hold dose, interval and duration
        raise ValidationError({"final_regimen": ["duration_h: the infusion must end within the interval"]})
    proposed = recommendation.regimen
    start_h = proposed.get("start_h")
    start_at = regimen.get("start_at")
    if isinstance(start_at, str):  # from the API's JSON
        start_at = parse_datetime(start_at)
        if start_at is None:
            raise ValidationError({"final_regimen": ["start_at: give a date and time (ISO 8601)"]})
    if start_at:
        start_h = _start_hour(
            start_at,
            origin=recommendation.update.origin,
            doses=recommendation.update.inputs.get("doses", []),
            field="final_regimen",
        )
    daily_mg = dose_mg * 24.0 / interval_h
    if drug.max_single_dose_mg and dose_mg > drug.max_single_dose_mg:
        raise ValidationError(
            {"final_regimen": [f"{dose_mg:g} mg exceeds the maximum dose {drug.max_single_dose_mg:g} mg"]}
        )
    if drug.max_daily_dose_mg and daily_mg > drug.max_daily_dose_mg + 1e-9:
        raise ValidationError(
            {"final_regimen": [f"{daily_mg:g} mg/day exceeds the maximum {drug.max_daily_dose_mg:g} mg/day"]}
        )
    route = recommendation.regimen.get("route", "")
    problems = administration_problems(
        drug=drug,
        model=parse_model(recommendation.course.model_version.document),
        route=route,
        dose_mg=dose_mg,
        duration_h=duration_h or None,
    )
    if problems:
        raise ValidationError({"final_regimen": list(problems.values())})
    # The clinical limits above speak first; then the bounds of what the engine simulates for it.
    now_h = adapters.hours(timezone.now(), recommendation.update.origin)
    limits.check_horizon(
        drug=drug,
        interval_h=interval_h,
        n_doses=proposed.get("n_doses"),
        lead_h=None if start_h is None else float(start_h) - now_h,
        within="final_regimen",
    )
    continuous = bool(proposed.get("continuous"))
    if continuous:  # a continuous infusion stays one: the dose is the amount per interval, infused over it
        duration_h = interval_h
    return {
        "dose_mg": dose_mg,
        "interval_h": interval_h,
        "duration_h": duration_h or None,
        "route": route,
        "start_h": start_h,
        "daily_dose_mg": daily_mg,
        "continuous": continuous,
        # A loading dose and a dose count of the proposal are kept: the change is to the maintenance dose.
        "loading_dose_mg": proposed.get("loading_dose_mg"),
        "loading_duration_h": proposed.get("loading_duration_h"),
        "n_doses": proposed.get("n_doses"),
    }


def _final_figures(recommendation: Recommendation, regimen: dict[str, Any]) -> dict[str, Any]:
    """The approved regimen's figures and forecast: the engine recomputes a pharmacist's change on the
    recommendation's own inputs (the same data, the same draws); an approval keeps the proposal's."""
    update = recommendation.update
    course = recommendation.course
    results = update.results or {}
    proposed = results.get("recommendation") or {}
    if regimen == recommendation.regimen:
        return {
            "regimen": regimen,
            "order": proposed.get("order"),
            "pta": recommendation.probability_of_target,
            "p_toxic": recommendation.probability_of_toxicity,
            "metric_median": proposed.get("predicted", {}).get("median"),
            "metric_ci90": proposed.get("predicted", {}).get("ci90"),
            "exposure": proposed.get("exposure", []),
            "forecast": (results.get("plot") or {}).get("forecast"),
        }
    engine_regimen = adapters.regimen_from_dict({**regimen, "duration_h": regimen.get("duration_h") or 0.0})
    try:
        evaluated = evaluate_case(parse_case(update.inputs), [engine_regimen])
    except EngineError as exc:
        raise ValidationError({"final_regimen": [f"the engine refused this regimen: {exc}"]}) from None
    if not evaluated["success"]:
        raise ValidationError(
            {"final_regimen": ["the fit did not converge: " + evaluated.get("message", "")]}
        )
    weight = latest_measurements(patient=course.patient).get("weight")
    advice = evaluated.get("sampling_advice") or {}
    next_level = advice.get("best") if advice.get("success") else None
    shown = results_figures(
        evaluated["regimens"][0],
        drug=course.drug,
        origin=update.origin,
        weight_kg=weight.value if weight else None,
        next_level=next_level,
    )
    if next_level:
        shown["sampling_advice"] = {**advice, "plain_words": sampling_sentence(advice, origin=update.origin)}
    target = evaluated.get("target") or {}
    shown["uncertainty_text"] = plain_uncertainty(
        {"label": target.get("label", ""), "unit": target.get("unit", ""), "ci90": shown["metric_ci90"]},
        shown["pta"],
    )
    output = parse_model(update.inputs["model"]).default_output
    shown["regimen"] = regimen
    shown["forecast"] = forecast_block(
        evaluated["forecast"],
        output=output,
        start_h=float(regimen["start_h"]),
        label=f"approved: {regimen_label(evaluated['regimens'][0])}",
    )
    return shown


def modification_preview(
    *, recommendation: Recommendation, user: AbstractBaseUser, final_regimen: dict[str, Any]
) -> dict[str, Any]:
    """What a pharmacist's changed regimen would give (order, P(target), P(toxic), exposure, forecast),
    recomputed by the engine before anything is signed; nothing is stored."""
    if not user_has_role(user=user, role=Role.PHARMACIST):
        raise PermissionDenied("only pharmacists review recommendations")
    if recommendation.status != Recommendation.Status.PENDING_REVIEW:
        raise ValidationError(f"this recommendation is {recommendation.get_status_display().lower()}")
    checked = _checked_regimen(recommendation, final_regimen)
    return {
        **_final_figures(recommendation, checked),
        "preview_token": preview_token(recommendation, checked),
    }


def _refuse_a_start_in_the_past(recommendation: Recommendation, regimen: dict[str, Any]) -> None:
    start = recommendation.update.origin + dt.timedelta(hours=float(regimen.get("start_h") or 0.0))
    if start < timezone.now() - dt.timedelta(hours=START_GRACE_H):
        raise ValidationError(
            {
                "start_at": [
                    f"the first dose was due at {timezone.localtime(start):%d %b %H:%M}, which has passed: "
                    "run the update again for a new proposal, or approve with changes and a new first dose "
                    "time"
                ]
            }
        )


def preview_token(recommendation: Recommendation, regimen: dict[str, Any]) -> str:
    """Binds a signature to the change the pharmacist saw forecast: the recommendation, its inputs, the
    regimen (a different regimen, or new data, gives another token)."""
    text = json.dumps(
        {
            "recommendation": recommendation.pk,
            "inputs": recommendation.update.inputs_sha256,
            "regimen": regimen,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


MODIFIED_TOXICITY = "modified_toxicity"  # the acknowledgement of a change above the toxicity limit


@transaction.atomic
def recommendation_review(
    *,
    recommendation: Recommendation,
    user: AbstractBaseUser,
    decision: str,
    password: str,
    note: str = "",
    final_regimen: dict[str, Any] | None = None,
    acknowledged_alerts: list[str] | None = None,
    forecast_token: str = "",
    otp_code: str = "",
) -> Recommendation:
    """A pharmacist approves, modifies or rejects a recommendation with an electronic signature.

    The signature is a re-authentication at the moment of the decision, password and authenticator code
    (``dosing.signatures``: Part 11 record, segregation of duties); a modification states the regimen
    actually approved, a rejection says why. Approving (with or without changes) needs every red warning of
    the recommendation acknowledged, by its code.
    """
    if not user_has_role(user=user, role=Role.PHARMACIST):
        raise PermissionDenied("only pharmacists review recommendations")
    method = signatures.authenticate_signer(
        user=user, password=password, otp_code=otp_code, recommendation=recommendation
    )
    recommendation = Recommendation.objects.select_for_update().get(pk=recommendation.pk)
    if recommendation.status != Recommendation.Status.PENDING_REVIEW:
        raise ValidationError(f"this recommendation is {recommendation.get_status_display().lower()}")
    statuses = {
        "approve": Recommendation.Status.APPROVED,
        "modify": Recommendation.Status.MODIFIED,
        "reject": Recommendation.Status.REJECTED,
    }
    if decision not in statuses:
        raise ValidationError({"decision": ["approve, modify or reject"]})
    signatures.require_segregation(recommendation=recommendation, user=user)
    if decision == "modify" and not final_regimen:
        raise ValidationError({"final_regimen": ["state the regimen you approve instead"]})
    if decision == "modify":
        final_regimen = _checked_regimen(recommendation, final_regimen or {})
        if preview_token(recommendation, final_regimen) != (forecast_token or ""):
            raise ValidationError(
                {
                    "preview_token": [
                        "forecast this change before signing it (Forecast the change): the figures you sign "
                        "must be the ones you saw"
                    ]
                }
            )
    if decision in ("modify", "reject") and not note.strip():
        raise ValidationError({"note": ["say why"]})
    if decision != "reject":
        _refuse_a_start_in_the_past(recommendation, final_regimen or recommendation.regimen)
    required = [alert["code"] for alert in recommendation.alerts]
    acknowledged = [code for code in (acknowledged_alerts or []) if code in required]
    final_figures = None
    if decision == "modify":
        final_figures = _final_figures(recommendation, final_regimen)
        if final_figures.get("exceeds_toxicity"):
            if MODIFIED_TOXICITY not in (acknowledged_alerts or []):
                raise ValidationError(
                    {
                        "acknowledged_alerts": [
                            f"the changed regimen's P(toxic) is {final_figures['p_toxic'] * 100:.0f} %, "
                            "above the protocol's limit: acknowledge it to sign it"
                        ]
                    }
                )
            acknowledged.append(MODIFIED_TOXICITY)
    if decision != "reject":
        unread = [alert["message"] for alert in recommendation.alerts if alert["code"] not in acknowledged]
        if unread:
            raise ValidationError(
                {
                    "acknowledged_alerts": [
                        f"acknowledge each red warning before approving: {'; '.join(unread)}"
                    ]
                }
            )
    recommendation.acknowledged_alerts = acknowledged
    recommendation.status = statuses[decision]
    recommendation.reviewed_by = user
    recommendation.reviewed_at = timezone.now()
    recommendation.review_note = note.strip()
    recommendation.final_regimen = (
        final_regimen if decision == "modify" else (recommendation.regimen if decision == "approve" else None)
    )
    if final_figures is not None:
        recommendation.final_figures = final_figures
    elif recommendation.final_regimen is not None:
        recommendation.final_figures = _final_figures(recommendation, recommendation.final_regimen)
    recommendation.save()
    signatures.sign(recommendation=recommendation, user=user, method=method)
    return recommendation
