"""Course pages: the timeline, the plot with credible bands, the recommendation and its basis, what-if."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.roles import Role
from accounts.selectors import user_has_role
from dosing import selectors, services, signatures
from dosing.adapters import parse_model
from dosing.forms import CourseOpenForm, DoseForm, ExclusionForm, LevelForm, ReviewForm, WhatIfForm
from dosing.models import BayesianUpdate
from dosing.results import plot_document
from mipd_engine.targets import Target
from models_catalog.selectors import model_card
from patients.selectors import consents_current, patient_get
from patients.views import detail_context, errors_onto_form


@require_POST
@login_required
def course_open(request: HttpRequest, patient_pk: Any) -> HttpResponse:
    patient = patient_get(user=request.user, public_id=patient_pk)
    form = CourseOpenForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            course = services.course_open(patient=patient, user=request.user, **data)
        except ValidationError as exc:
            errors_onto_form(form, exc)
        else:
            messages.success(request, "Course opened; the a-priori recommendation is being computed.")
            return redirect("dosing:course", pk=course.public_id)
    return render(
        request, "patients/detail.html", detail_context(request, patient, course_form=form), status=400
    )


def _course_context(request: HttpRequest, course: Any, **extra: Any) -> dict[str, Any]:
    model = parse_model(course.model_version.document)
    last_dose = course.doses.filter(entered_in_error=False).order_by("-given_at", "-pk").first()
    routes = list(model.routes)
    what_if_initial = {"route": last_dose.route if last_dose else routes[0]}
    if last_dose and last_dose.infusion_duration_h:
        what_if_initial["duration_h"] = last_dose.infusion_duration_h
    latest = selectors.latest_update(course=course)
    done = selectors.latest_finished_update(course=course)
    what_if = extra.pop("what_if", None)
    # A what-if is computed on the course as recorded now: its whole plot, on its own time origin.
    source = what_if["plot"] if what_if is not None else (done.results["plot"] if done else None)
    plot = dict(source) if source is not None else None
    if plot is not None:
        plot["time_zone"] = settings.TIME_ZONE
    return {
        "course": course,
        "patient": course.patient,
        "card": model_card(model_version=course.model_version),
        "consents": consents_current(patient=course.patient),
        "can_write": user_has_role(user=request.user, role=Role.CLINICIAN),
        "timeline": selectors.course_timeline(course=course),
        "latest": latest,
        "done": done,
        "stale": done is not None and latest is not None and latest.pk != done.pk,
        "results": done.results if done else None,
        "plot": plot,
        "recommendation": (recommendation := selectors.current_recommendation(course=course)),
        "signature": signatures.signature_view(recommendation=recommendation),
        "dose_form": extra.pop("dose_form", None) or DoseForm(routes=routes, initial=what_if_initial),
        "level_form": extra.pop("level_form", None) or LevelForm(outputs=list(model.outputs)),
        "what_if_form": extra.pop("what_if_form", None) or WhatIfForm(routes=routes, initial=what_if_initial),
        "target_label": Target.from_mapping(course.target).describe(model),
        "what_if": what_if,
        "exclusion_form": ExclusionForm(),
        "review_form": extra.pop("review_form", None) or ReviewForm(),
        "can_review": user_has_role(user=request.user, role=Role.PHARMACIST),
        "Status": BayesianUpdate.Status,
        **extra,
    }


@login_required
def course_detail(request: HttpRequest, pk: Any) -> HttpResponse:
    course = selectors.course_get(user=request.user, public_id=pk)
    return render(request, "dosing/course.html", _course_context(request, course))


@login_required
def course_results_panel(request: HttpRequest, pk: Any) -> HttpResponse:
    """The results part of the course page, fetched by the page when an update finishes."""
    course = selectors.course_get(user=request.user, public_id=pk)
    return render(request, "dosing/_results.html", _course_context(request, course))


@login_required
def course_status(request: HttpRequest, pk: Any) -> JsonResponse:
    """Progress of the latest update, polled by the page (queued, running, done, failed with the reason)."""
    course = selectors.course_get(user=request.user, public_id=pk)
    latest = selectors.latest_update(course=course)
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
    model = parse_model(course.model_version.document)
    form: Any
    if what == "dose":
        form, key = DoseForm(request.POST, routes=list(model.routes)), "dose_form"

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
    model = parse_model(course.model_version.document)
    form = WhatIfForm(request.GET, routes=list(model.routes))
    what_if = None
    if form.is_valid():
        regimen = {**form.cleaned_data, "duration_h": form.cleaned_data.get("duration_h") or 0.0}
        try:
            outcome = services.what_if(course=course, regimen=regimen)
        except ValidationError as exc:
            errors_onto_form(form, exc)
        else:
            label = f"what if: {regimen['dose_mg']:g} mg every {regimen['interval_h']:g} h"
            what_if = {
                "label": label,
                "plot": plot_document(
                    case=outcome["case"],
                    course=course,
                    fit=outcome["forecast"],
                    forecast=outcome["forecast"],
                    label=label,
                ),
            }
    return render(
        request, "dosing/course.html", _course_context(request, course, what_if=what_if, what_if_form=form)
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
    form = ReviewForm(request.POST)
    if form.is_valid():
        try:
            services.recommendation_review(
                recommendation=recommendation,
                user=request.user,
                decision=form.cleaned_data["decision"],
                password=form.cleaned_data["password"],
                otp_code=form.cleaned_data["otp_code"],
                note=form.cleaned_data["note"],
                final_regimen=form.final_regimen(),
            )
        except ValidationError as exc:
            errors_onto_form(form, exc)
        else:
            messages.success(request, "Review signed.")
            return redirect("dosing:course", pk=course.public_id)
    return render(
        request, "dosing/course.html", _course_context(request, course, review_form=form), status=400
    )


@require_POST
@login_required
def course_entry_error(request: HttpRequest, pk: Any, kind: str, entry_pk: Any) -> HttpResponse:
    """Mark a dose or a level as entered in error (kept for the record, left out of the fit)."""
    course = selectors.course_get(user=request.user, public_id=pk)
    rows = {"dose": course.doses, "level": course.levels}
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
