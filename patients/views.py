"""Patient pages: list and search, registration, and the patient record (measurements, genotypes, consent)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.roles import Role
from accounts.selectors import user_has_role
from mipd_web.engine_calls import engine_call
from mipd_web.throttles import engine_page_wait_s, engine_throttled_message, throttled_response
from models_catalog.selectors import declared_measurement_kinds
from patients import access, selectors, services
from patients.forms import (
    BreakGlassForm,
    ConsentForm,
    CourseOpenForm,
    GenotypeForm,
    MeasurementForm,
    PatientForm,
    StartingDoseForm,
    SupportSessionEndForm,
    SupportSessionForm,
)
from patients.models import Patient


def errors_onto_form(form: Any, error: ValidationError) -> None:
    """A service's ValidationError shown on the form fields it names (the rest above the form)."""
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            for item in errors:
                form.add_error(field if field in form.fields else None, "; ".join(item.messages))
    else:
        form.add_error(None, error)


@login_required
def patient_list(request: HttpRequest) -> HttpResponse:
    search = request.GET.get("q", "")
    patients = selectors.patients_visible(user=request.user, search=search).order_by("family_name")[:200]
    outside = selectors.patient_outside_care(user=request.user, search=search)
    return render(request, "patients/list.html", {"patients": patients, "search": search, "outside": outside})


@login_required
def patient_new(request: HttpRequest) -> HttpResponse:
    selectors.require_clinical_role(user=request.user)
    form = PatientForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            patient = services.patient_create(user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            errors_onto_form(form, exc)
        else:
            return redirect("patients:detail", pk=patient.public_id)
    return render(request, "patients/new.html", {"form": form})


def detail_context(request: HttpRequest, patient: Any, **forms: Any) -> dict[str, Any]:
    extra = declared_measurement_kinds()
    return {
        "patient": patient,
        "can_write": user_has_role(user=request.user, role=Role.CLINICIAN),
        "consents": selectors.consents_current(patient=patient),
        "measurements": patient.measurements.select_related("recorded_by").order_by("-measured_at", "-pk")[
            :100
        ],
        "derived": selectors.derived_covariates(patient=patient),
        "renal": selectors.renal_stability(patient=patient),
        "genotypes": patient.genotypes.order_by("gene", "-reported_on"),
        "sessions": patient.support_sessions.select_related("recorded_by").order_by("-started_at", "-pk"),
        "session_form": forms.get("session_form") or SupportSessionForm(),
        "session_end_form": SupportSessionEndForm(),
        "courses": patient.courses.select_related("drug", "model_version"),
        "measurement_form": forms.get("measurement_form") or MeasurementForm(extra_kinds=extra),
        "genotype_form": forms.get("genotype_form") or GenotypeForm(),
        "consent_form": forms.get("consent_form") or ConsentForm(),
        "course_form": forms.get("course_form") or CourseOpenForm(),
        "course_stop": forms.get("course_stop"),
        "starting_dose_form": forms.get("starting_dose_form")
        or StartingDoseForm(drugs=selectors.pgx_drugs()),
        "starting_dose": forms.get("starting_dose"),
    }


def _outside_care(request: HttpRequest, public_id: Any, form: BreakGlassForm | None = None) -> HttpResponse:
    """Not the user's patient: say so, and offer the emergency access (reason recorded)."""
    context = {"public_id": public_id, "form": form or BreakGlassForm(), "hours": settings.BREAK_GLASS_HOURS}
    return render(request, "patients/break_glass.html", context, status=403)


@login_required
def patient_detail(request: HttpRequest, pk: Any) -> HttpResponse:
    try:
        patient = selectors.patient_get(user=request.user, public_id=pk)
    except PermissionDenied:
        if access.has_clinical_role(user=request.user):
            return _outside_care(request, pk)
        raise
    extra: dict[str, Any] = {}
    wait_s = None
    if "drug" in request.GET:  # the genotype-based starting-dose calculator (read only)
        form = StartingDoseForm(request.GET, drugs=selectors.pgx_drugs())
        extra["starting_dose_form"] = form
        if form.is_valid():
            wait_s = engine_page_wait_s(request)  # the API's engine rate, shared: a page is no way round it
            if wait_s is not None:
                form.add_error(None, engine_throttled_message(wait_s, then="press Compute again"))
            else:
                extra["starting_dose"] = engine_call(
                    selectors.genotype_starting_dose, patient=patient, **form.cleaned_data
                )
    response = render(request, "patients/detail.html", detail_context(request, patient, **extra))
    return throttled_response(response, wait_s)


@require_POST
@login_required
def patient_record(request: HttpRequest, pk: Any, what: str) -> HttpResponse:
    """One POST endpoint per kind of entry; on a field error the record page is shown again with it."""
    patient = selectors.patient_get(user=request.user, public_id=pk)
    form: Any
    if what == "measurement":
        extra = declared_measurement_kinds()
        form = MeasurementForm(request.POST, extra_kinds=extra)

        def save(data: dict[str, Any]) -> None:
            services.measurement_record(patient=patient, user=request.user, **data)

        key = "measurement_form"
    elif what == "genotype":
        form, key = GenotypeForm(request.POST), "genotype_form"

        def save(data: dict[str, Any]) -> None:
            services.genotype_record(patient=patient, user=request.user, **data)

    elif what == "session":
        form, key = SupportSessionForm(request.POST), "session_form"

        def save(data: dict[str, Any]) -> None:
            services.support_session_record(patient=patient, user=request.user, **data)

    elif what == "consent":
        form, key = ConsentForm(request.POST), "consent_form"

        def save(data: dict[str, Any]) -> None:
            services.consent_record(patient=patient, user=request.user, **data)

    else:
        return HttpResponse(status=404)
    if form.is_valid():
        try:
            save(form.cleaned_data)
        except ValidationError as exc:
            errors_onto_form(form, exc)
        else:
            messages.success(request, f"{what.capitalize()} recorded.")
            return redirect("patients:detail", pk=patient.public_id)
    return render(
        request, "patients/detail.html", detail_context(request, patient, **{key: form}), status=400
    )


@require_POST
@login_required
def session_end(request: HttpRequest, pk: Any, session_pk: Any) -> HttpResponse:
    """Record the end of an ongoing dialysis, CRRT or ECMO session."""
    patient = selectors.patient_get(user=request.user, public_id=pk)
    session = get_object_or_404(patient.support_sessions, public_id=session_pk)
    form = SupportSessionEndForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError({"ended_at": ["give the end time"]})
        services.support_session_end(
            session=session, ended_at=form.cleaned_data["ended_at"], user=request.user
        )
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    else:
        messages.success(request, "Session end recorded.")
    return redirect("patients:detail", pk=patient.public_id)


@require_POST
@login_required
def patient_entry_error(request: HttpRequest, pk: Any, kind: str, entry_pk: Any) -> HttpResponse:
    """Mark a measurement or a genotype as entered in error (kept for the record, used no more)."""
    patient = selectors.patient_get(user=request.user, public_id=pk)
    rows = {
        "measurement": patient.measurements,
        "genotype": patient.genotypes,
        "session": patient.support_sessions,
    }
    if kind not in rows:
        return HttpResponse(status=404)
    entry = get_object_or_404(rows[kind], public_id=entry_pk)
    try:
        services.entry_mark_in_error(entry=entry, reason=request.POST.get("reason", ""), user=request.user)
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    else:
        messages.success(request, f"The {kind} is marked as entered in error.")
    return redirect("patients:detail", pk=patient.public_id)


@require_POST
@login_required
def patient_break_glass(request: HttpRequest, pk: Any) -> HttpResponse:
    """Emergency access to a patient outside the user's care teams: the reason is recorded and audited."""
    selectors.require_clinical_role(user=request.user)
    patient = get_object_or_404(Patient, public_id=pk)  # the one load outside patients.access: it grants it
    form = BreakGlassForm(request.POST)
    if form.is_valid():
        try:
            services.break_glass_open(patient=patient, user=request.user, reason=form.cleaned_data["reason"])
        except ValidationError as exc:
            errors_onto_form(form, exc)
        else:
            messages.warning(
                request,
                f"Emergency access opened for {settings.BREAK_GLASS_HOURS} h; your reason is in the audit "
                "trail.",
            )
            return redirect("patients:detail", pk=patient.public_id)
    return _outside_care(request, pk, form)
