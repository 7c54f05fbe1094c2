"""Writes of the dosing workflow: courses, doses, levels, Bayesian updates and their recommendations.

Recording a dose, a level or a covariate asks for a Bayesian update of the course. The update row is created
in the same transaction and its task is enqueued after commit; a newer request supersedes updates of the
course that are still queued. The task claims its row with a conditional UPDATE, so running it twice is safe.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import socket
import time
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.roles import Role
from accounts.selectors import user_has_role
from dosing import adapters, signatures, units
from dosing.models import BayesianUpdate, DoseAdministration, DrugLevel, Recommendation, TherapyCourse
from dosing.results import build_results, plain_uncertainty
from mipd_engine import ENGINE_VERSION
from mipd_engine.case import parse_case
from mipd_engine.errors import EngineError
from mipd_engine.reports import fit_case, recommend_case
from models_catalog import integrity
from models_catalog.engine_adapter import target_from_document
from models_catalog.models import ModelVersion, TargetProtocol
from patients.clock import clinical_time
from patients.models import ConsentRecord, Patient
from patients.selectors import consent_status

logger = logging.getLogger(__name__)
FUTURE_TOLERANCE = dt.timedelta(minutes=10)
PLANNED_DOSE_LIMIT = dt.timedelta(hours=1)  # a dose is recorded when given, not weeks ahead
STALE_AFTER = dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)
Status = BayesianUpdate.Status


def _require_clinician(user: AbstractBaseUser) -> None:
    if not user_has_role(user=user, role=Role.CLINICIAN):
        raise PermissionDenied("only clinicians record therapy data")


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
) -> TherapyCourse:
    """Open a course on a published model version; model-based dosing needs consent or a stated reason."""
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
    course = TherapyCourse(
        patient=patient,
        drug=model_version.drug,
        model_version=model_version,
        target_protocol=target_protocol,
        target=target,
        indication=indication.strip(),
        mic_mg_per_l=mic_mg_per_l,
        consent_override_reason=consent_override_reason.strip(),
        opened_by=user,
    )
    course.full_clean()
    course.save()
    update_request(course=course, user=user, trigger="course opened (a priori)")
    return course


@transaction.atomic
def dose_record(
    *,
    course: TherapyCourse,
    given_at: dt.datetime,
    amount_mg: float,
    route: str,
    user: AbstractBaseUser,
    infusion_duration_h: float | None = None,
) -> DoseAdministration:
    _require_clinician(user)
    given_at = clinical_time(given_at, field="given_at")
    if given_at > timezone.now() + PLANNED_DOSE_LIMIT:
        raise ValidationError({"given_at": ["record a dose when it is given, not in advance"]})
    if amount_mg is None or amount_mg <= 0:
        raise ValidationError({"amount_mg": ["must be positive"]})
    limit = course.drug.max_single_dose_mg
    if limit and amount_mg > 3 * limit:
        raise ValidationError(
            {"amount_mg": [f"{amount_mg:g} mg is over three times the maximum dose ({limit:g} mg)"]}
        )
    model = adapters.parse_model(course.model_version.document)
    if route not in model.routes:
        raise ValidationError({"route": [f"the model has no route '{route}' ({', '.join(model.routes)})"]})
    if route == "iv_infusion" and not infusion_duration_h:
        raise ValidationError({"infusion_duration_h": ["an infusion needs its duration"]})
    if infusion_duration_h is not None and infusion_duration_h <= 0:
        raise ValidationError({"infusion_duration_h": ["must be positive"]})
    if given_at.date() < course.patient.birth_date:
        raise ValidationError({"given_at": ["lies before the patient's birth"]})
    dose = DoseAdministration(
        course=course,
        given_at=given_at,
        amount_mg=amount_mg,
        route=route,
        infusion_duration_h=infusion_duration_h,
        recorded_by=user,
    )
    dose.full_clean()
    dose.save()
    update_request(course=course, user=user, trigger=f"dose {amount_mg:g} mg recorded")
    return dose


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
    """Store a level with its value in the model's unit; refuse what cannot be right."""
    _require_clinician(user)
    sampled_at = clinical_time(sampled_at, field="sampled_at")
    if sampled_at > timezone.now() + FUTURE_TOLERANCE:
        raise ValidationError({"sampled_at": ["lies in the future"]})
    first = course.doses.filter(entered_in_error=False).order_by("given_at").first()
    if first is None:
        raise ValidationError({"sampled_at": ["record the doses first: the course has no dose yet"]})
    if sampled_at < first.given_at:
        raise ValidationError({"sampled_at": ["the level was sampled before the first dose"]})
    model = adapters.parse_model(course.model_version.document)
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
    level = DrugLevel(
        course=course,
        sampled_at=sampled_at,
        value=value,
        unit=unit.strip(),
        value_model_unit=value_model,
        lloq=lloq,
        lloq_model_unit=lloq_model,
        below_lloq=below_lloq,
        assay=assay.strip(),
        model_output="" if output == model.default_output else output,
        recorded_by=user,
    )
    level.full_clean()
    level.save()
    update_request(course=course, user=user, trigger="new level")
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
def entry_mark_in_error(
    *, entry: DoseAdministration | DrugLevel, reason: str, user: AbstractBaseUser
) -> DoseAdministration | DrugLevel:
    """A dose or level that was wrongly recorded: kept for the record, left out of every later fit."""
    _require_clinician(user)
    entry.mark_in_error(reason=reason, user=user)
    kind = "dose" if isinstance(entry, DoseAdministration) else "level"
    update_request(course=entry.course, user=user, trigger=f"{kind} entered in error")
    return entry


def update_request(*, course: TherapyCourse, user: AbstractBaseUser, trigger: str) -> BayesianUpdate:
    """Queue an update of the course; older queued ones are superseded. Runs after the transaction commits.

    New data makes the pending recommendation stale: it is superseded at once, so nobody approves a regimen
    computed without the latest dose, level, covariate or consent.
    """
    from dosing.tasks import run_bayesian_update  # tasks import services: import here to avoid a cycle

    _require_clinician(user)
    with transaction.atomic():
        TherapyCourse.objects.select_for_update().filter(pk=course.pk).first()  # one request at a time
        now = timezone.now()
        course.updates.filter(status=Status.QUEUED).update(status=Status.SUPERSEDED, finished_at=now)
        _reap_stale(course, now)
        course.recommendations.filter(status=Recommendation.Status.PENDING_REVIEW).update(
            status=Recommendation.Status.SUPERSEDED
        )
        update = BayesianUpdate.objects.create(
            course=course, trigger=trigger[:200], requested_by=user, model_version=course.model_version
        )
        run_bayesian_update.delay_on_commit(update_id=update.pk)
    return update


def _reap_stale(course: TherapyCourse, now: dt.datetime) -> None:
    """A RUNNING row older than the hard time limit belongs to a worker that died: say so."""
    course.updates.filter(status=Status.RUNNING, started_at__lt=now - STALE_AFTER).update(
        status=Status.FAILED, finished_at=now, error="the worker stopped before finishing"
    )


def updates_request_for_patient(*, patient: Patient, user: AbstractBaseUser, trigger: str) -> None:
    for course in patient.courses.filter(status=TherapyCourse.Status.ACTIVE):
        update_request(course=course, user=user, trigger=trigger)


def _claim(update_id: int) -> BayesianUpdate | None:
    """Take a queued update, or one left RUNNING by a worker that died (acks_late redelivers it)."""
    stale_before = timezone.now() - STALE_AFTER
    claimable = Q(status=Status.QUEUED) | Q(status=Status.RUNNING, started_at__lt=stale_before)
    claimed = BayesianUpdate.objects.filter(claimable, pk=update_id).update(
        status=Status.RUNNING, started_at=timezone.now(), worker=socket.gethostname()[:200]
    )
    if not claimed:
        return None
    return BayesianUpdate.objects.select_related(
        "course__patient", "course__drug", "course__model_version"
    ).get(pk=update_id)


def _fail(update: BayesianUpdate, message: str) -> BayesianUpdate:
    BayesianUpdate.objects.filter(pk=update.pk, status=Status.RUNNING).update(
        status=Status.FAILED, error=message[:5000], finished_at=timezone.now()
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


def update_run(*, update_id: int) -> BayesianUpdate | None:
    """Run one queued update: build the case, fit, band, search regimens, forecast; store everything.

    Returns None when the update was already claimed, finished or superseded (a second delivery).
    Expected failures (missing covariates, a fit that does not converge) are stored with their reason; so is
    any unexpected error, so that no row stays RUNNING.
    """
    update = _claim(update_id)
    if update is None:
        return None
    course = update.course
    timings: dict[str, float] = {}
    started = time.perf_counter()
    blocked = model_based_dosing_blocked(course)
    if blocked:
        return _fail(update, blocked)
    try:
        case = adapters.course_case(course, seed=update.pk)
        inputs_sha = hashlib.sha256(json.dumps(case.document, sort_keys=True).encode()).hexdigest()
        BayesianUpdate.objects.filter(pk=update.pk).update(
            inputs=case.document, inputs_sha256=inputs_sha, origin=case.origin, engine_version=ENGINE_VERSION
        )
        engine_case = parse_case(case.document)
        timings["build_s"] = time.perf_counter() - started
        tic = time.perf_counter()
        recommended = recommend_case(engine_case, forecast=True)  # the best regimen's forecast, same draws
        timings["engine_s"] = time.perf_counter() - tic
        forecast = recommended.get("forecast")
        results = build_results(case=case, course=course, recommended=recommended, forecast=forecast)
        timings["total_s"] = time.perf_counter() - started
        return _finish(update, recommended=recommended, results=results, timings=timings)
    except adapters.CaseBuildError as exc:
        return _fail(update, str(exc))
    except EngineError as exc:
        return _fail(update, f"the engine refused the case: {exc}")
    except Exception as exc:  # unexpected: keep the reason on the row, and the traceback in the log
        logger.exception("Bayesian update %s failed", update.pk)
        return _fail(update, f"internal error: {type(exc).__name__}: {exc}")


def _finish(
    update: BayesianUpdate, *, recommended: dict[str, Any], results: dict[str, Any], timings: dict[str, float]
) -> BayesianUpdate:
    """Store the outcome, unless the row was reaped meanwhile or a newer update finished first."""
    with transaction.atomic():
        TherapyCourse.objects.select_for_update().filter(pk=update.course_id).first()
        update = BayesianUpdate.objects.select_for_update().get(pk=update.pk)
        if update.status != Status.RUNNING:
            return update  # reaped as stale: another update owns the course now
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


def _forecast(case: adapters.CourseCase, regimen_document: dict[str, Any]) -> dict[str, Any]:
    """Fit again with the regimen appended: its forecast with credible bands (same seed, same MAP)."""
    regimen = adapters.regimen_from_dict(regimen_document)
    end_h = case.document["predict"]["to_h"]
    document = dict(case.document)
    document.pop("target")
    document["doses"] = [
        *[dose for dose in case.document["doses"] if dose["time_h"] < regimen.start_h],
        *adapters.regimen_doses(regimen, until_h=end_h),
    ]
    return fit_case(parse_case(document))


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
        candidates=results["regimens"],
    )


def what_if(*, course: TherapyCourse, regimen: dict[str, Any]) -> dict[str, Any]:
    """The forecast of a regimen the clinician types, on the course as recorded now (not stored)."""
    try:
        case = adapters.course_case(course)
        forecast = _forecast(case, {**regimen, "start_h": case.next_dose_h})
    except adapters.CaseBuildError as exc:
        raise ValidationError(str(exc)) from None
    except EngineError as exc:
        raise ValidationError(f"the engine refused this regimen: {exc}") from None
    if not forecast["success"]:
        raise ValidationError("the fit did not converge: " + (forecast.get("message") or ""))
    return {"case": case, "forecast": forecast}


def _checked_regimen(recommendation: Recommendation, regimen: dict[str, Any]) -> dict[str, Any]:
    """A pharmacist's changed regimen within the same hard limits as the engine's (route and start kept)."""
    drug = recommendation.course.drug
    try:
        dose_mg = float(regimen["dose_mg"])
        interval_h = float(regimen["interval_h"])
    except (KeyError, TypeError, ValueError):
        raise ValidationError({"final_regimen": ["give the dose (mg) and the interval (h)"]}) from None
    duration_h = float(regimen.get("duration_h") or 0.0)
    if dose_mg <= 0 or interval_h < 0.5 or duration_h < 0 or duration_h > interval_h:
        raise ValidationError(
            {"final_regimen": ["dose > 0, interval >= 0.5 h, infusion within the interval"]}
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
    if route == "iv_infusion":
        if duration_h <= 0:
            raise ValidationError({"final_regimen": ["an infusion needs its duration"]})
        rate = drug.max_infusion_rate_mg_per_h
        if rate and dose_mg / duration_h > rate + 1e-9:
            raise ValidationError({"final_regimen": [f"infusion faster than {rate:g} mg/h"]})
    return {
        "dose_mg": dose_mg,
        "interval_h": interval_h,
        "duration_h": duration_h or None,
        "route": route,
        "start_h": recommendation.regimen.get("start_h"),
        "daily_dose_mg": daily_mg,
    }


@transaction.atomic
def recommendation_review(
    *,
    recommendation: Recommendation,
    user: AbstractBaseUser,
    decision: str,
    password: str,
    note: str = "",
    final_regimen: dict[str, Any] | None = None,
    otp_code: str = "",
) -> Recommendation:
    """A pharmacist approves, modifies or rejects a recommendation with an electronic signature.

    The signature is a re-authentication at the moment of the decision, password and authenticator code
    (``dosing.signatures``: Part 11 record, segregation of duties); a modification states the regimen
    actually approved, a rejection says why.
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
    if decision in ("modify", "reject") and not note.strip():
        raise ValidationError({"note": ["say why"]})
    recommendation.status = statuses[decision]
    recommendation.reviewed_by = user
    recommendation.reviewed_at = timezone.now()
    recommendation.review_note = note.strip()
    recommendation.final_regimen = (
        final_regimen if decision == "modify" else (recommendation.regimen if decision == "approve" else None)
    )
    recommendation.save()
    signatures.sign(recommendation=recommendation, user=user, method=method)
    return recommendation
