"""Catalog pages: everyone signed in reads published model cards; curators upload, validate, publish."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from mipd_web.engine_calls import engine_call
from mipd_web.throttles import engine_page_wait_s, engine_throttled_message, throttled_response
from models_catalog import engine_adapter, hooks, integrity, selectors, services
from models_catalog.forms import (
    DecisionForm,
    DrugLimitsForm,
    ModelFileForm,
    NewVersionForm,
    PreviewForm,
    ReasonForm,
    TargetProtocolForm,
)
from models_catalog.models import CatalogChangeRequest, Drug, ModelVersion, TargetProtocol
from models_catalog.plots import prediction_band_svg


def curator_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    @login_required
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not selectors.is_curator(user=request.user):
            raise PermissionDenied("model curators only")
        return view(request, *args, **kwargs)

    return wrapper


FILE_PARTS = frozenset({"document", "reference_checks", "model_card", "transcription", "covariate_sources"})


def _errors_onto_form(form: Any, error: ValidationError, *, document_field: str) -> None:
    """Service errors (keyed by model field) shown on the form field the curator filled in.

    Errors about parts of the uploaded file land on the file (or text) field, prefixed with the part's name
    unless it is the model document itself, whose messages already carry the field path inside the model.
    """
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for key, errors in error.error_dict.items():
        if key in form.fields:
            field, prefix = key, ""
        elif key in FILE_PARTS:
            field, prefix = document_field, ("" if key == "document" else f"{key}: ")
        else:
            field, prefix = None, f"{key}: "
        for item in errors:
            form.add_error(field, prefix + "; ".join(item.messages))


@login_required
def catalog_index(request: HttpRequest) -> HttpResponse:
    context = {
        "drugs": selectors.drugs_with_versions(user=request.user),
        "protocols": selectors.target_protocols(active_only=False),
        "pgx_tables": selectors.pgx_tables_current(),
        "is_curator": selectors.is_curator(user=request.user),
        "change_requests": [
            (change, selectors.change_lines(change)) for change in selectors.change_requests_pending()
        ],
        "decision_form": DecisionForm(),
    }
    return render(request, "models_catalog/index.html", context)


@login_required
def version_detail(request: HttpRequest, pk: int) -> HttpResponse:
    version = selectors.model_version_get(user=request.user, pk=pk)
    context = {
        "version": version,
        "card": selectors.model_card(model_version=version),
        "is_curator": selectors.is_curator(user=request.user),
        "runs": version.validation_runs.select_related("run_by")[:10],
        "events": version.events.select_related("actor")[:30],
        "document_json": json.dumps(version.document, indent=2, ensure_ascii=False),
        "retire_form": ReasonForm(),
        "integrity_problem": integrity.published_problem(version),
        "new_version_form": NewVersionForm(),
        "Status": ModelVersion.Status,
        "card_sections": hooks.model_card_sections_collect(version=version, user=request.user),
    }
    return render(request, "models_catalog/version_detail.html", context)


@curator_required
def version_upload(request: HttpRequest) -> HttpResponse:
    form = ModelFileForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        entry = form.cleaned_data["entry"]
        try:
            version = services.model_version_create(user=request.user, **entry)
        except ValidationError as exc:
            _errors_onto_form(form, exc, document_field=form.cleaned_data["source_field"])
        else:
            messages.success(request, f"{version} saved as a draft. Validate it next.")
            return redirect("models_catalog:version_detail", pk=version.pk)
    return render(request, "models_catalog/version_form.html", {"form": form, "version": None})


def _entry_text(version: ModelVersion) -> str:
    entry = {
        "library_format": "mipd-library/1",
        "version": version.version,
        "model": version.document,
        "model_card": version.model_card,
        "transcription": version.transcription,
        "reference_checks": version.reference_checks,
        "covariate_sources": version.covariate_sources,
    }
    return json.dumps(entry, indent=2, ensure_ascii=False)


@curator_required
def version_edit(request: HttpRequest, pk: int) -> HttpResponse:
    version = get_object_or_404(ModelVersion, pk=pk)
    if version.is_frozen:
        messages.error(
            request, f"{version} is {version.status}: it never changes. Create a new version instead."
        )
        return redirect("models_catalog:version_detail", pk=pk)
    form = ModelFileForm(
        request.POST or None,
        request.FILES or None,
        initial={"text": _entry_text(version), "version": version.version},
    )
    form.fields["version"].disabled = True
    if request.method == "POST" and form.is_valid():
        entry = form.cleaned_data["entry"]
        entry.pop("version", None)
        try:
            services.model_version_update(model_version=version, user=request.user, **entry)
        except ValidationError as exc:
            _errors_onto_form(form, exc, document_field=form.cleaned_data["source_field"])
        else:
            messages.success(request, f"{version} saved; it is a draft again and needs a new validation run.")
            return redirect("models_catalog:version_detail", pk=pk)
    return render(request, "models_catalog/version_form.html", {"form": form, "version": version})


@require_POST
@curator_required
def version_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    version = get_object_or_404(ModelVersion, pk=pk)
    try:
        if action == "validate":
            wait_s = engine_page_wait_s(request)  # the API's engine rate, shared: a page is no way round it
            if wait_s is not None:
                messages.error(request, engine_throttled_message(wait_s, then="press Run validation again"))
                return redirect("models_catalog:version_detail", pk=pk)
            run = engine_call(services.model_version_validate, model_version=version, user=request.user)
            if run.success:
                messages.success(request, "Validation passed: every reference value was reproduced.")
            else:
                messages.error(request, f"Validation failed: {run.message}")
        elif action == "request-publication":
            services.model_version_request_publication(model_version=version, user=request.user)
            messages.success(request, "Publication requested: a second curator must approve it.")
        elif action == "approve":
            services.model_version_approve_publication(model_version=version, user=request.user)
            messages.success(request, f"{version} is published.")
        elif action == "retire":
            form = ReasonForm(request.POST)
            reason = form.cleaned_data["reason"] if form.is_valid() else ""
            services.model_version_request_retirement(model_version=version, user=request.user, reason=reason)
            messages.success(request, f"Retiring {version} is requested: a second curator approves it.")
        elif action == "new-version":
            form = NewVersionForm(request.POST)
            new = services.model_version_new_draft(
                source=version, version=form.data.get("version", ""), user=request.user
            )
            messages.success(request, f"{new} created as a draft from {version}.")
            return redirect("models_catalog:version_detail", pk=new.pk)
        else:
            return HttpResponse(status=404)
    except (ValidationError, PermissionDenied) as exc:
        text = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        messages.error(request, text)
    return redirect("models_catalog:version_detail", pk=pk)


@login_required
def version_export(request: HttpRequest, pk: int) -> HttpResponse:
    """The model file as stored (or, with ?entry=1, the library entry with card and checks)."""
    version = selectors.model_version_get(user=request.user, pk=pk)
    if request.GET.get("entry"):
        body, name = _entry_text(version), f"{version.model_id}-{version.version}.library.json"
    else:
        body, name = (
            json.dumps(version.document, indent=2, ensure_ascii=False),
            f"{version.model_id}-{version.version}.json",
        )
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["X-Model-SHA256"] = version.document_sha256
    return response


@login_required
def version_preview(request: HttpRequest, pk: int) -> HttpResponse:
    version = selectors.model_version_get(user=request.user, pk=pk)
    model = engine_adapter.model_from_document(version.document)
    form = PreviewForm(request.GET or None, model=model)
    svg = None
    warnings: list[str] = []
    wait_s = engine_page_wait_s(request) if request.GET and form.is_valid() else None
    if wait_s is not None:
        form.add_error(None, engine_throttled_message(wait_s, then="press Simulate again"))
    elif request.GET and form.is_valid():
        try:
            result = engine_call(
                engine_adapter.prediction_band, document=version.document, **form.case_inputs()
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            output = model.default_output
            curve = result["prediction"]["outputs"][output]
            quantiles = curve["quantiles"]
            svg = prediction_band_svg(
                times_h=result["prediction"]["times_h"],
                typical=curve["typical"],
                low=quantiles["0.05"],
                median=quantiles["0.5"],
                high=quantiles["0.95"],
                unit=model.outputs[output].unit,
                title=f"{version.title} ({version.model_id} {version.version})",
            )
            warnings = result["warnings"]
    context = {"version": version, "form": form, "svg": mark_safe(svg) if svg else None, "warnings": warnings}
    return throttled_response(render(request, "models_catalog/version_preview.html", context), wait_s)


@curator_required
def target_protocol_edit(
    request: HttpRequest, pk: int | None = None, drug: str | None = None
) -> HttpResponse:
    protocol = get_object_or_404(TargetProtocol, pk=pk) if pk else None
    target_drug = protocol.drug if protocol else get_object_or_404(Drug, name=drug)
    initial = {}
    if protocol:
        initial = {
            "indication": protocol.indication,
            "target": json.dumps(protocol.target),
            "source": protocol.source,
            "institution_note": protocol.institution_note,
            "active": protocol.active,
        }
    form = TargetProtocolForm(request.POST or None, initial=initial)
    if protocol:
        form.fields["indication"].disabled = True  # another indication is another protocol
    if (
        request.method == "POST"
        and form.is_valid()
        and protocol is None
        and target_drug.target_protocols.filter(indication=form.cleaned_data["indication"]).exists()
    ):
        form.add_error("indication", "a protocol for this indication exists: edit it instead")
    if request.method == "POST" and form.is_valid():
        try:
            services.target_protocol_propose(drug=target_drug, user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            _errors_onto_form(form, exc, document_field="target")
        else:
            messages.success(
                request, "Target protocol proposed: it applies when a second curator approves it."
            )
            return redirect("models_catalog:index")
    return render(
        request, "models_catalog/target_form.html", {"form": form, "drug": target_drug, "protocol": protocol}
    )


@curator_required
def drug_limits_edit(request: HttpRequest, name: str) -> HttpResponse:
    drug = get_object_or_404(Drug, name=name)
    initial = {field: getattr(drug, field) for field in Drug.LIMIT_FIELDS}
    initial["strengths_mg"] = ", ".join(f"{value:g}" for value in drug.strengths_mg or [])
    initial["interval_options_h"] = ", ".join(f"{value:g}" for value in drug.interval_options_h or [])
    initial["continuous_infusion"] = "yes" if drug.continuous_infusion else "no"
    form = DrugLimitsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        values = dict(form.cleaned_data)
        reason = values.pop("change_reason")
        try:
            services.drug_limits_propose(drug=drug, user=request.user, reason=reason, **values)
        except ValidationError as exc:
            _errors_onto_form(form, exc, document_field="limits_source")
        else:
            messages.success(
                request, f"New limits of {drug} proposed: they apply when a second curator approves."
            )
            return redirect("models_catalog:index")
    return render(request, "models_catalog/drug_form.html", {"form": form, "drug": drug})


@require_POST
@curator_required
def change_request_decide(request: HttpRequest, pk: int, decision: str) -> HttpResponse:
    """A second curator approves (it applies now) or rejects a proposed change; its author may withdraw it."""
    change_request = get_object_or_404(CatalogChangeRequest, pk=pk)
    form = DecisionForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    try:
        if decision == "approve":
            services.change_request_approve(change_request=change_request, user=request.user, note=note)
            messages.success(request, f"Approved and applied: {change_request.get_kind_display().lower()}.")
        elif decision == "reject":
            services.change_request_reject(change_request=change_request, user=request.user, note=note)
            messages.success(request, "The proposal is closed.")
        else:
            return HttpResponse(status=404)
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc))
    return redirect("models_catalog:index")
