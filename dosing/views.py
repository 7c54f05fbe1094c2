"""Course pages: the timeline, the plot with credible bands, the recommendation and its basis, what-if."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.roles import Role
from accounts.selectors import user_has_role
from audit.models import AuditEntry
from audit.recorder import record_event
from dosing import monitoring, reports, selectors, services, signatures
from dosing.administration import allowed_routes, default_infusion_h, usual_route
from dosing.forms import (
    CourseOpenForm,
    DoseForm,
    ExclusionForm,
    LevelConfirmForm,
    LevelForm,
    ModificationPreviewForm,
    ReviewForm,
    SeriesImportForm,
    WhatIfForm,
)
from dosing.models import BayesianUpdate
from dosing.results import plot_document, plot_rows
from mipd_engine.targets import Target
from mipd_web.engine_calls import engine_call
from mipd_web.throttles import engine_page_wait_s, engine_rate, engine_throttled_message, throttled_response
from models_catalog.engine_adapter import version_model
from models_catalog.labels import is_infusion
from models_catalog.selectors import model_card
from patients.selectors import consents_current, patient_get
from patients.views import detail_context, errors_onto_form


@require_POST
@login_required
def course_open(request: HttpRequest, patient_pk: Any) -> HttpResponse:
    patient = patient_get(user=request.user, public_id=patient_pk)
    form = CourseOpenForm(request.POST)
    stop = None
    if form.is_valid():
        data = form.cleaned_data
        try:
            course = services.course_open(patient=patient, user=request.user, **data)
        except services.ModelNotApplicable as exc:
            stop = exc.stop.as_dict()  # shown above the form, with the models whose domain fits
        except ValidationError as exc:
            errors_onto_form(form, exc)
        else:
            messages.success(request, _opened_message(course))
            return redirect("dosing:course", pk=course.public_id)
    return render(
        request,
        "patients/detail.html",
        detail_context(request, patient, course_form=form, course_stop=stop),
        status=400,
    )


def _opened_message(course: Any) -> str:
    """What happened to the course's first update (in process it has already run)."""
    update = selectors.latest_update(course=course)
    if update is None or not update.is_finished:
        return "Course opened; the a-priori recommendation is queued."
    if update.status == BayesianUpdate.Status.SUCCEEDED:
        return "Course opened; the a-priori recommendation is ready below."
    return f"Course opened, but no recommendation could be made: {update.error}"


def _course_context(
    request: HttpRequest, course: Any, *, whole_page: bool = True, **extra: Any
) -> dict[str, Any]:
    """What the course page shows; ``whole_page=False``: only its results part (``_results.html``), which
    the page fetches again when an update finishes: no timeline, entry forms or device series."""
    model = version_model(course.model_version)
    # The whole page shows every dose and level (timeline, exclusions): read once, the rest picked from them.
    doses = list(course.doses.all()) if whole_page else None
    levels = list(course.levels.all()) if whole_page else None
    last_dose = selectors.last_dose(course=course, doses=doses)
    routes = allowed_routes(course.drug, model)
    route = last_dose.route if last_dose and last_dose.route in routes else usual_route(course.drug, model)
    dose_initial: dict[str, Any] = {"route": route}
    duration = (
        last_dose.infusion_duration_h
        if last_dose and last_dose.infusion_duration_h
        else default_infusion_h(course.drug, last_dose.amount_mg if last_dose else None)
    )
    if route and is_infusion(route) and duration:
        dose_initial["infusion_duration_h"] = duration
    what_if_initial = {"route": route}
    if "infusion_duration_h" in dose_initial:
        what_if_initial["duration_h"] = dose_initial["infusion_duration_h"]
    latest = selectors.latest_update(course=course, with_data=False)
    done = selectors.latest_finished_update(course=course, with_inputs=False)
    if latest is not None and done is not None and latest.pk == done.pk:
        latest = done  # one row read once
    recommendation = selectors.current_recommendation(course=course)
    alerts = recommendation.alerts if recommendation else []
    what_if = extra.pop("what_if", None)
    # A what-if is computed on the course as recorded now: its whole plot, on its own time origin.
    source = what_if["plot"] if what_if is not None else (done.results["plot"] if done else None)
    plot = dict(source) if source is not None else None
    decided = (recommendation.final_figures or {}) if recommendation is not None else {}
    if (
        plot is not None
        and what_if is None
        and decided.get("forecast")
        and done
        and recommendation.update_id == done.pk
    ):
        plot["forecast"] = decided["forecast"]  # the regimen the pharmacist approved, not the proposal
    if plot is not None:
        plot["time_zone"] = settings.TIME_ZONE
        t0 = dt.datetime.fromisoformat(plot["t0"])
        plot["now_h"] = (timezone.now() - t0).total_seconds() / 3600.0
    stop = (
        (latest.results or {}).get("stop")
        if latest and latest.status == BayesianUpdate.Status.FAILED
        else None
    )
    proposal = None
    if recommendation is not None:
        proposal = selectors.update_proposal(recommendation=recommendation, done=done)
    context = {
        "course": course,
        "patient": course.patient,
        "proposal": proposal,
        "plot_rows": plot_rows(plot) if plot is not None else None,
        "card": model_card(model_version=course.model_version),
        "consents": consents_current(patient=course.patient),
        "can_write": user_has_role(user=request.user, role=Role.CLINICIAN),
        "latest": latest,
        "done": done,
        "stale": done is not None and latest is not None and latest.pk != done.pk,
        "results": done.results if done else None,
        "plot": plot,
        "recommendation": recommendation,
        "signature": signatures.signature_view(recommendation=recommendation),
        "stop": stop,
        # An order decided before a stop is not valid any more: the page says so over it.
        "order_invalidated": bool(
            stop and recommendation and latest and recommendation.update_id < latest.pk
        ),
        "held_levels": selectors.held_levels(course=course, levels=levels),
        "what_if_form": extra.pop("what_if_form", None) or WhatIfForm(routes=routes, initial=what_if_initial),
        "target_label": Target.from_mapping(course.target).describe(model),
        "what_if": what_if,
        "review_form": extra.pop("review_form", None) or ReviewForm(alerts=alerts),
        "can_review": user_has_role(user=request.user, role=Role.PHARMACIST),
        "Status": BayesianUpdate.Status,
    }
    if whole_page:
        context |= {
            "excludable_levels": [
                level for level in levels or () if not level.excluded and not level.entered_in_error
            ],
            "timeline": selectors.course_timeline(course=course, doses=doses, levels=levels),
            "level_confirm_form": LevelConfirmForm(),
            "infusion_rule": {
                "max_rate_mg_per_h": course.drug.max_infusion_rate_mg_per_h,
                "usual_duration_h": course.drug.usual_infusion_duration_h,
            },
            "dose_form": extra.pop("dose_form", None) or DoseForm(routes=routes, initial=dose_initial),
            "level_form": extra.pop("level_form", None) or LevelForm(outputs=list(model.outputs)),
            "series_form": extra.pop("series_form", None) or SeriesImportForm(outputs=list(model.outputs)),
            "monitoring_series": list(course.monitoring_series.select_related("device")),
            "exclusion_form": ExclusionForm(),
        }
    return context | extra


@login_required
def course_detail(request: HttpRequest, pk: Any) -> HttpResponse:
    course = selectors.course_get(user=request.user, public_id=pk)
    return render(request, "dosing/course.html", _course_context(request, course))


@login_required
def course_results_panel(request: HttpRequest, pk: Any) -> HttpResponse:
    """The results part of the course page, fetched by the page when an update finishes."""
    course = selectors.course_get(user=request.user, public_id=pk)
    return render(request, "dosing/_results.html", _course_context(request, course, whole_page=False))


@login_required
def course_status(request: HttpRequest, pk: Any) -> JsonResponse:
    """Progress of the latest update, polled by the page (queued, running, done, failed with the reason)."""
    course = selectors.course_get(user=request.user, public_id=pk)
    latest = selectors.latest_update_status(course=course)
    if latest is None:
        return JsonResponse({"update": None})
    return JsonResponse(
        {
            "update": str(latest.public_id),
            "status": latest.status,
            "label": latest.get_status_display(),
            "trigger": latest.trigger,
            "error": latest.error,
            "finished": latest.is_finished,
            "total_s": latest.timings_s.get("total_s"),
        }
    )


@require_POST
@login_required
def course_record(request: HttpRequest, pk: Any, what: str) -> HttpResponse:
    course = selectors.course_get(user=request.user, public_id=pk)
    model = version_model(course.model_version)
    form: Any
    if what == "dose":
        form, key = DoseForm(request.POST, routes=allowed_routes(course.drug, model)), "dose_form"

        def save(data: dict[str, Any]) -> None:
            services.dose_record(course=course, user=request.user, **data)

    elif what == "level":
        form, key = LevelForm(request.POST, outputs=list(model.outputs)), "level_form"

        def save(data: dict[str, Any]) -> None:
            services.level_record(course=course, user=request.user, **data)

    elif what == "update":
        services.update_request(course=course, user=request.user, trigger="requested from the course page")
        return redirect("dosing:course", pk=course.public_id)
    else:
        return HttpResponse(status=404)
    if form.is_valid():
        try:
            save(form.cleaned_data)
        except ValidationError as exc:
            errors_onto_form(form, exc)
        else:
            messages.success(request, f"{what.capitalize()} recorded; the Bayesian update is queued.")
            return redirect("dosing:course", pk=course.public_id)
    return render(request, "dosing/course.html", _course_context(request, course, **{key: form}), status=400)


@require_POST
@login_required
def level_exclude(request: HttpRequest, pk: Any, level_pk: Any) -> HttpResponse:
    course = selectors.course_get(user=request.user, public_id=pk)
    level = get_object_or_404(course.levels, public_id=level_pk)
    form = ExclusionForm(request.POST)
    if form.is_valid():
        try:
            services.level_exclude(level=level, reason=form.cleaned_data["reason"], user=request.user)
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
        else:
            messages.success(request, "Level excluded; the update is queued.")
    else:
        messages.error(request, "Say why the level is excluded.")
    return redirect("dosing:course", pk=course.public_id)


@login_required
def course_what_if(request: HttpRequest, pk: Any) -> HttpResponse:
    """The forecast of a regimen the clinician types (computed now, not stored)."""
    course = selectors.course_get(user=request.user, public_id=pk)
    model = version_model(course.model_version)
    form = WhatIfForm(request.GET, routes=allowed_routes(course.drug, model))
    what_if = None
    wait_s = None
    if form.is_valid():
        wait_s = engine_page_wait_s(request)  # the API's engine rate, shared: a page is no way round it
        if wait_s is not None:
            form.add_error(None, _throttled_message(wait_s))
        else:
            what_if = _what_if_shown(form, course)
    response = render(
        request, "dosing/course.html", _course_context(request, course, what_if=what_if, what_if_form=form)
    )
    return throttled_response(response, wait_s)


def _what_if_shown(form: WhatIfForm, course: Any) -> dict[str, Any] | None:
    """The forecast of the form's regimen for the page, or None with the engine's refusal on the form."""
    regimen = {**form.cleaned_data, "duration_h": form.cleaned_data.get("duration_h") or 0.0}
    try:
        outcome = engine_call(services.what_if, course=course, regimen=regimen)
    except ValidationError as exc:
        errors_onto_form(form, exc)
        return None
    label = f"what if: {regimen['dose_mg']:g} mg every {regimen['interval_h']:g} h"
    return {
        "label": label,
        "figures": outcome["figures"],
        "target": outcome["target"],
        "plot": plot_document(
            case=outcome["case"],
            course=course,
            fit=outcome["fit"],
            forecast=outcome["forecast"],
            label=label,
            forecast_from_h=outcome["start_h"],
        ),
    }


def _throttled_message(wait_s: int) -> str:
    return (
        f"Too many forecasts in a short time: at most {engine_rate()} for each user, on the pages and the "
        f"API together. Nothing was computed. Wait {wait_s} seconds, then press Forecast again."
    )


@login_required
def review_queue(request: HttpRequest) -> HttpResponse:
    queue = selectors.review_queue(user=request.user)
    return render(request, "dosing/review_queue.html", {"queue": queue})


@require_POST
@login_required
def recommendation_review(request: HttpRequest, pk: Any, rec_pk: Any) -> HttpResponse:
    course = selectors.course_get(user=request.user, public_id=pk)
    recommendation = get_object_or_404(course.recommendations, public_id=rec_pk)
    if "preview" in request.POST:  # forecast the changed regimen before signing anything
        return _review_preview(request, course, recommendation)
    form = ReviewForm(request.POST, alerts=_review_alerts(recommendation, request.POST))
    wait_s = engine_page_wait_s(request) if form.is_valid() else None
    if wait_s is not None:  # checked before the signature: the password and code are not spent
        form.add_error(None, engine_throttled_message(wait_s, then="sign again with a new code"))
    elif form.is_valid():
        try:
            engine_call(
                services.recommendation_review,
                recommendation=recommendation,
                user=request.user,
                decision=form.cleaned_data["decision"],
                password=form.cleaned_data["password"],
                otp_code=form.cleaned_data["otp_code"],
                note=form.cleaned_data["note"],
                final_regimen=form.final_regimen(),
                acknowledged_alerts=form.cleaned_data.get("acknowledged_alerts") or [],
                forecast_token=form.cleaned_data.get("preview_token") or "",
            )
        except ValidationError as exc:
            errors_onto_form(form, exc)
        else:
            messages.success(request, "Review signed.")
            return redirect("dosing:course", pk=course.public_id)
    response = render(
        request, "dosing/course.html", _course_context(request, course, review_form=form), status=400
    )
    return throttled_response(response, wait_s)


def _review_alerts(
    recommendation: Any, data: Any = None, preview: dict[str, Any] | None = None
) -> list[dict]:
    """The red warnings to acknowledge: the recommendation's, and a change above the toxicity limit."""
    alerts = list(recommendation.alerts)
    toxic = preview is not None and preview.get("exceeds_toxicity")
    asked = data is not None and services.MODIFIED_TOXICITY in data.getlist("acknowledged_alerts")
    if toxic or asked:
        shown = f"{preview['p_toxic'] * 100:.0f} %" if toxic else "above the limit"
        alerts.append(
            {
                "code": services.MODIFIED_TOXICITY,
                "message": f"the changed regimen's P(toxic) is {shown}, above the protocol's limit",
            }
        )
    return alerts


def _review_preview(request: HttpRequest, course: Any, recommendation: Any) -> HttpResponse:
    """Forecast the changed regimen of the review form; the form comes back with the token that binds the
    signature to this forecast."""
    changed = ModificationPreviewForm(request.POST)
    preview = None
    error: ValidationError | None = None
    wait_s = engine_page_wait_s(request) if changed.is_valid() else None
    if wait_s is not None:
        error = ValidationError(engine_throttled_message(wait_s, then="press Forecast the change again"))
    elif changed.is_valid():
        try:
            preview = engine_call(
                services.modification_preview,
                recommendation=recommendation,
                user=request.user,
                final_regimen=changed.regimen(),
            )
        except ValidationError as exc:
            error = exc
    data = request.POST.copy()
    data.pop("password", None)
    data.pop("otp_code", None)  # a code is used once: the pharmacist types a new one to sign
    if preview is not None:
        data["preview_token"] = preview["preview_token"]
    form = ReviewForm(data, alerts=_review_alerts(recommendation, preview=preview))
    form.is_valid()  # bound for display only; errors of the signature fields are not shown yet
    form.errors.clear()
    if not changed.is_valid():
        form.add_error(None, "To forecast a change, give the changed dose (mg) and interval (h).")
    elif error is not None:
        errors_onto_form(form, error)
    response = render(
        request,
        "dosing/course.html",
        _course_context(request, course, review_form=form, review_preview=preview),
        status=200 if preview else 400,
    )
    return throttled_response(response, wait_s)


@require_POST
@login_required
def level_confirm(request: HttpRequest, pk: Any, level_pk: Any) -> HttpResponse:
    """A clinician confirms a level held as implausible, with the reason: it enters the next fit."""
    course = selectors.course_get(user=request.user, public_id=pk)
    level = get_object_or_404(course.levels, public_id=level_pk)
    form = LevelConfirmForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError({"reason": ["say why the level is right"]})
        services.level_confirm(level=level, reason=form.cleaned_data["reason"], user=request.user)
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    else:
        messages.success(request, "Level confirmed; the update is queued.")
    return redirect("dosing:course", pk=course.public_id)


@require_POST
@login_required
def course_entry_error(request: HttpRequest, pk: Any, kind: str, entry_pk: Any) -> HttpResponse:
    """Mark a dose or a level as entered in error (kept for the record, left out of the fit)."""
    course = selectors.course_get(user=request.user, public_id=pk)
    rows = {"dose": course.doses, "level": course.levels, "series": course.monitoring_series}
    if kind not in rows:
        return HttpResponse(status=404)
    entry = get_object_or_404(rows[kind], public_id=entry_pk)
    form = ExclusionForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError({"reason": ["say why the entry is wrong"]})
        services.entry_mark_in_error(entry=entry, reason=form.cleaned_data["reason"], user=request.user)
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    else:
        messages.success(request, f"The {kind} is marked as entered in error; the update is queued.")
    return redirect("dosing:course", pk=course.public_id)


@login_required
def recommendation_report(request: HttpRequest, pk: Any, rec_pk: Any) -> HttpResponse:
    """A recommendation's printable report (PDF): access as for the course page; every download audited."""
    course = selectors.course_get(user=request.user, public_id=pk)
    recommendation = get_object_or_404(
        course.recommendations.select_related("update__model_version", "course__patient"), public_id=rec_pk
    )
    pdf = reports.recommendation_pdf(recommendation, generated_by=request.user)
    record_event(
        AuditEntry.Action.READ,
        patient_id=course.patient.public_id,
        object_type="dosing.recommendation",
        object_id=recommendation.pk,
        details={"what": "recommendation report (PDF)", "bytes": len(pdf), "status": recommendation.status},
    )
    response = HttpResponse(pdf, content_type="application/pdf")
    disposition = "attachment" if request.GET.get("download") else "inline"
    response["Content-Disposition"] = f'{disposition}; filename="{reports.report_filename(recommendation)}"'
    response["Cache-Control"] = "no-store"  # patient data: not kept by browsers or proxies
    return response


@require_POST
@login_required
def series_import(request: HttpRequest, pk: Any) -> HttpResponse:
    """Import a monitoring device's CSV export: every bad row is listed by line; then nothing is stored."""
    course = selectors.course_get(user=request.user, public_id=pk)
    model = version_model(course.model_version)
    form = SeriesImportForm(request.POST, request.FILES, outputs=list(model.outputs))
    if form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            series = monitoring.series_import(
                course=course,
                device=form.cleaned_data["device"],
                content=upload.read(monitoring.MAX_BYTES + 1),
                source_name=upload.name,
                user=request.user,
                device_serial=form.cleaned_data["device_serial"],
                model_output=form.cleaned_data.get("model_output") or "",
            )
        except ValidationError as exc:
            errors_onto_form(form, exc)
        else:
            messages.success(
                request, f"{series.n_points} device readings imported; the Bayesian update is queued."
            )
            return redirect("dosing:course", pk=course.public_id)
    return render(
        request, "dosing/course.html", _course_context(request, course, series_form=form), status=400
    )
