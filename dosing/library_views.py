"""The model library page: every published model, its domain beside the others', and for a chosen patient
which models fit (dosing.library_fit). It lives in dosing because the verdicts read the patient's record, and
the catalog app may not import patients or dosing (import contracts)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from dosing.library_fit import VERDICT_LABELS, library_fit
from models_catalog.domain_summary import COLUMNS
from models_catalog.models import Drug, ModelVersion
from models_catalog.selectors import library_models
from patients import access
from patients.selectors import patient_get, patients_visible


@login_required
def model_library(request: HttpRequest) -> HttpResponse:
    drug_name = request.GET.get("drug", "").strip()
    if drug_name and not Drug.objects.filter(name=drug_name).exists():
        drug_name = ""  # an unknown drug shows every drug rather than an empty page
    clinical = access.has_clinical_role(user=request.user)
    patient = None
    patient_id = request.GET.get("patient", "").strip()
    if patient_id:
        if not clinical:
            raise PermissionDenied("patient data is available to clinicians and pharmacists only")
        patient = patient_get(user=request.user, public_id=patient_id)  # 403/404 and audited like any read
    now = timezone.now()
    drugs: list[tuple[Drug, list[dict[str, Any]]]] = []
    for drug, entries in library_models(drug_name=drug_name):
        rows = []
        for entry in entries:
            fit = library_fit(patient=patient, version=entry.version, now=now) if patient else None
            cells = [(key, title, entry.domain.cells[key]) for key, title in COLUMNS]
            rows.append({"entry": entry, "cells": cells, "fit": fit})
        drugs.append((drug, rows))
    context = {
        "drugs": drugs,
        "columns": COLUMNS,
        "drug_choices": Drug.objects.filter(model_versions__status=ModelVersion.Status.PUBLISHED)
        .distinct()
        .order_by("name"),
        "drug_name": drug_name,
        "patient": patient,
        "patient_choices": patients_visible(user=request.user)[:200] if clinical else None,
        "verdict_labels": VERDICT_LABELS,
        "model_count": sum(len(rows) for _, rows in drugs),
    }
    return render(request, "models_catalog/library.html", context)
