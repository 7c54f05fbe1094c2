"""The patient's FHIR import page: upload a Bundle or pull the record from the FHIR server; the report shows
every resource with its outcome and reason."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from fhir_interop import client, services
from fhir_interop.forms import BundleUploadForm
from fhir_interop.models import FhirImport
from patients import selectors


@login_required
def patient_import(request: HttpRequest, pk: Any) -> HttpResponse:
    patient = selectors.patient_get(user=request.user, public_id=pk)
    form = BundleUploadForm()
    run, error = None, ""
    if request.method == "POST":
        try:
            if "pull" in request.POST:
                run = services.patient_pull(patient=patient, user=request.user)
            else:
                form = BundleUploadForm(request.POST, request.FILES)
                if form.is_valid():
                    run = services.bundle_import(
                        document=form.cleaned_data["bundle"],
                        user=request.user,
                        channel=FhirImport.Channel.UPLOAD,
                        patient=patient,
                    )
        except ValidationError as exc:
            error = " ".join(exc.messages)
        except client.FhirServerError as exc:
            error = str(exc)
    context = {
        "patient": patient,
        "form": form,
        "run": run,
        "error": error,
        "server": client.configured(),
        "previous": FhirImport.objects.filter(patient=patient).select_related("imported_by")[:10],
    }
    return render(request, "fhir_interop/import.html", context, status=400 if error else 200)
