"""The patient's FHIR import page: upload a Bundle, see the report; the pull button only with a server."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from dosing.models import DrugLevel
from tests.auth import login
from tests.fhir_interop.test_import import golden

pytestmark = pytest.mark.django_db


def test_a_clinician_uploads_a_bundle_and_reads_the_report(client, course, clinician, settings, celery_eager):
    settings.FHIR_SERVER_BASE_URL = ""
    login(client, clinician)
    url = f"/fhir/patients/{course.patient.public_id}/import/"
    page = client.get(url)
    assert page.status_code == 200 and "Pull from the FHIR server" not in page.content.decode()
    document = golden("bundle_icu_vancomycin.json", timezone.now().replace(microsecond=0)).encode()
    answer = client.post(
        url, {"bundle": SimpleUploadedFile("bundle.json", document, "application/fhir+json")}
    )
    text = answer.content.decode()
    assert answer.status_code == 200
    assert 'id="import-report"' in text
    assert "no active tacrolimus course for this patient" in text
    assert "Observation/vanco-trough-1" in text
    assert DrugLevel.objects.filter(course=course).count() == 1
    detail = client.get(f"/patients/{course.patient.public_id}/").content.decode()
    assert f'href="{url}"' in detail  # the patient page links to the import


def test_a_file_that_is_not_a_bundle_is_refused_with_the_reason(client, course, clinician) -> None:
    login(client, clinician)
    url = f"/fhir/patients/{course.patient.public_id}/import/"
    answer = client.post(url, {"bundle": SimpleUploadedFile("x.json", b'{"resourceType": "Patient"}')})
    assert answer.status_code == 400
    assert "not a FHIR Bundle" in answer.content.decode()


def test_the_api_accepts_fhir_json(client, course, clinician, celery_eager) -> None:
    login(client, clinician)
    document = golden("bundle_icu_vancomycin.json", timezone.now().replace(microsecond=0))
    answer = client.post(
        f"/api/v1/fhir/import/?patient={course.patient.public_id}",
        document,
        content_type="application/fhir+json",
    )
    assert answer.status_code == 201, answer.content
    assert answer.json()["patient"] == str(course.patient.public_id)
