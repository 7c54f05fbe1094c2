"""The auditors' pages: the trail filtered by patient, user and time; the export; the verification."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEntry, ChainVerification
from audit.querysets import AuditedQuerySet
from audit.registry import specs
from tests.auth import login

pytestmark = pytest.mark.django_db


def test_only_auditors_read_the_trail(client: Client, clinician, auditor) -> None:
    login(client, clinician)
    assert client.get(reverse("audit:entries")).status_code == 403
    assert client.get(reverse("audit:export")).status_code == 403
    login(client, auditor)
    page = client.get(reverse("audit:entries"))
    assert page.status_code == 200
    assert b'href="/audit/"' in page.content  # the navigation shows the trail to auditors


def test_the_trail_is_filtered_by_patient_user_action_and_time(
    client: Client, patient, clinician, auditor
) -> None:
    login(client, auditor)
    by_mrn = client.get(reverse("audit:entries"), {"patient": "mrn-0001"}).context["page"]
    assert by_mrn.paginator.count > 0
    assert {entry.patient_id for entry in by_mrn} == {patient.public_id}
    by_user = client.get(reverse("audit:entries"), {"user": "clinician", "action": "create"}).context["page"]
    assert by_user.paginator.count == 0  # the fixtures wrote through services, outside any request
    none = client.get(reverse("audit:entries"), {"since": "2999-01-01T00:00"}).context["page"]
    assert none.paginator.count == 0


def test_the_export_is_csv_with_the_hashes_and_is_itself_logged(client: Client, patient, auditor) -> None:
    login(client, auditor)
    response = client.get(reverse("audit:export"), {"patient": str(patient.public_id)})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:5] == ["seq", "at_utc", "actor", "actor_id", "action"] and rows[0][-1] == "entry_hash"
    assert len(rows) > 1 and all(len(row[-1]) == 64 for row in rows[1:])
    assert AuditEntry.objects.filter(action="export", actor="auditor").exists()


def test_an_auditor_runs_the_verification_and_sees_the_result(
    client: Client, patient, auditor, celery_eager, django_capture_on_commit_callbacks
) -> None:
    login(client, auditor)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("audit:verification_run"))
    assert response.status_code == 302
    run = ChainVerification.objects.get()
    assert run.ok is True and run.entries > 0
    page = client.get(reverse("audit:verification")).content.decode()
    assert "intact" in page
    assert AuditEntry.objects.filter(action="verify", actor="auditor").exists()


def test_every_audited_model_records_its_bulk_updates() -> None:
    """A registered model whose manager is not audited would write bulk updates the trail never sees."""
    plain = [
        spec.label
        for spec in specs()
        if not issubclass(spec.model._default_manager._queryset_class, AuditedQuerySet)
        and not spec.model._meta.auto_created  # m2m tables: written by Django's add/remove (signals)
        and spec.model._meta.app_label in {"patients", "dosing", "models_catalog"}
    ]
    assert plain == []
