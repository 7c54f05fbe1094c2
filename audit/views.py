"""The auditors' pages: the trail filtered by patient, user, action and time; its export; its verification."""

from __future__ import annotations

import csv
import datetime as dt
import uuid

from django.apps import apps
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from audit import selectors
from audit.forms import EntryFilterForm
from audit.models import AuditEntry
from audit.recorder import record_event
from audit.tasks import verify_chain

PAGE_SIZE = 100


class _Echo:
    def write(self, value: str) -> str:
        return value


def _patient_id(term: str) -> str:
    """A public id as given, or the public id of the patient with this MRN ("" when none)."""
    term = term.strip()
    if not term:
        return ""
    try:
        return str(uuid.UUID(term))
    except ValueError:
        patient_model = apps.get_model("patients", "Patient")
        patient = patient_model.objects.filter(Q(mrn_key=term.upper()) | Q(mrn__iexact=term)).first()
        return str(patient.public_id) if patient else "00000000-0000-0000-0000-000000000000"


def _filter(request: HttpRequest) -> tuple[EntryFilterForm, selectors.EntryFilter]:
    form = EntryFilterForm(request.GET or None)
    if not form.is_valid():
        return form, selectors.EntryFilter()
    data = form.cleaned_data
    return form, selectors.EntryFilter(
        patient=_patient_id(data.get("patient") or ""),
        user=(data.get("user") or "").strip(),
        action=data.get("action") or "",
        since=data.get("since"),
        until=data.get("until"),
    )


@login_required
def entry_list(request: HttpRequest) -> HttpResponse:
    form, where = _filter(request)
    rows = selectors.entries(user=request.user, where=where)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "runs": selectors.verification_runs(user=request.user, limit=1),
    }
    return render(request, "audit/entries.html", context)


@login_required
def entry_export(request: HttpRequest) -> StreamingHttpResponse:
    """The filtered entries as CSV, oldest first, with their hashes (anyone can re-check the chain order)."""
    _, where = _filter(request)
    rows = selectors.entries(user=request.user, where=where)
    record_event(
        AuditEntry.Action.EXPORT,
        object_type="audit.auditentry",
        details={key: str(value) for key, value in where.__dict__.items() if value},
        reason="audit trail exported",
    )
    writer = csv.writer(_Echo())
    stamp = timezone.now().astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    response = StreamingHttpResponse(
        (writer.writerow(line) for line in selectors.export_rows(rows)),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="mipd-audit-{stamp}.csv"'
    return response


@login_required
def verification(request: HttpRequest) -> HttpResponse:
    runs = selectors.verification_runs(user=request.user)
    return render(request, "audit/verification.html", {"runs": runs})


@require_POST
@login_required
def verification_start(request: HttpRequest) -> HttpResponse:
    selectors.require_auditor(user=request.user)
    verify_chain.delay_on_commit(user_id=request.user.pk)
    messages.success(request, "Verification started: the result appears below when it is done.")
    return redirect("audit:verification")
