"""Pages of the model performance: the list of scored model versions, one version's page, closing an alert."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.roles import Role
from accounts.selectors import user_has_role
from models_catalog.models import ModelVersion
from performance import selectors, services
from performance.forms import AlertCloseForm
from performance.models import PerformanceAlert


def viewer_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    @login_required
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not selectors.may_view(user=request.user):
            raise PermissionDenied("model curators and pharmacists only")
        return view(request, *args, **kwargs)

    return wrapper


@viewer_required
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "performance/index.html", {"versions": selectors.versions_scored()})


@viewer_required
def version_page(request: HttpRequest, pk: int) -> HttpResponse:
    version = get_object_or_404(ModelVersion.objects.select_related("drug"), pk=pk)
    context = selectors.performance_page(version=version)
    context["close_form"] = AlertCloseForm()
    context["is_curator"] = user_has_role(user=request.user, role=Role.MODEL_CURATOR)
    return render(request, "performance/version.html", context)


@require_POST
@viewer_required
def version_refresh(request: HttpRequest, pk: int) -> HttpResponse:
    version = get_object_or_404(ModelVersion, pk=pk)
    services.summary_refresh(model_version=version)
    messages.success(request, "The figures were recomputed from every scored level.")
    return redirect("performance:version", pk=pk)


@require_POST
@viewer_required
def alert_close(request: HttpRequest, pk: int) -> HttpResponse:
    alert = get_object_or_404(PerformanceAlert, pk=pk)
    form = AlertCloseForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say why the alert is closed.")
        return redirect("performance:version", pk=alert.model_version_id)
    try:
        services.alert_close(alert=alert, user=request.user, reason=form.cleaned_data["reason"])
    except ValidationError as error:
        messages.error(request, "; ".join(error.messages))
    else:
        messages.success(request, "The alert is closed; its sequential test starts again from zero.")
    return redirect("performance:version", pk=alert.model_version_id)
