"""Catalog REST API: read-only for clinicians, import and life-cycle actions for curators."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from models_catalog.models import ModelVersion
from tests.models_catalog.documents import library_entry, model_document

pytestmark = pytest.mark.django_db
VERSIONS = "/api/v1/catalog/model-versions/"


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_a_curator_imports_a_library_entry_and_two_curators_publish_it(drug, curator, second_curator) -> None:
    created = api(curator).post(VERSIONS, {"document": library_entry()}, format="json")
    assert created.status_code == 201, created.data
    pk = created.data["id"]
    assert created.data["status"] == "draft"
    assert created.data["document"] == model_document()
    assert api(curator).post(f"{VERSIONS}{pk}/validate/", format="json").status_code == 200
    assert api(curator).post(f"{VERSIONS}{pk}/request-publication/", format="json").status_code == 200
    refused = api(curator).post(f"{VERSIONS}{pk}/approve/", format="json")
    assert refused.status_code == 403
    assert "four-eyes" in refused.data["detail"]
    published = api(second_curator).post(f"{VERSIONS}{pk}/approve/", format="json")
    assert published.status_code == 200
    assert published.data["status"] == "published"
    assert published.data["published_by"] == str(second_curator)


def test_import_errors_are_400_with_the_field_and_nothing_is_saved(drug, curator) -> None:
    document = model_document()
    document["parameters"]["CL"] = "TVCL * (WT/70"
    response = api(curator).post(VERSIONS, {"document": document, "version": "1.0.0"}, format="json")
    assert response.status_code == 400
    assert "parameters.CL" in response.data["document"][0]
    missing_version = api(curator).post(VERSIONS, {"document": model_document()}, format="json")
    assert missing_version.status_code == 400
    assert "version" in missing_version.data
    assert not ModelVersion.objects.exists()


def test_clinicians_read_published_versions_and_cannot_import(drug, curator, clinician) -> None:
    api(curator).post(VERSIONS, {"document": library_entry()}, format="json")
    assert api(curator).get(VERSIONS).json()[0]["status"] == "draft"
    assert api(clinician).get(VERSIONS).json() == []
    assert api(clinician).post(VERSIONS, {"document": library_entry()}, format="json").status_code == 403
    pk = ModelVersion.objects.get().pk
    assert api(clinician).get(f"{VERSIONS}{pk}/").status_code == 404
    assert api(clinician).post(f"{VERSIONS}{pk}/validate/", format="json").status_code == 403


def test_a_failing_validation_is_reported_as_400(drug, curator) -> None:
    entry = library_entry()
    entry["reference_checks"][1]["expected"] = 1.0
    pk = api(curator).post(VERSIONS, {"document": entry}, format="json").data["id"]
    response = api(curator).post(f"{VERSIONS}{pk}/validate/", format="json")
    assert response.status_code == 400
    assert ModelVersion.objects.get(pk=pk).status == "draft"


def test_anonymous_callers_get_nothing(drug) -> None:
    assert APIClient().get(VERSIONS).status_code in (401, 403)
    assert APIClient().get("/api/v1/catalog/drugs/").status_code in (401, 403)


def test_drugs_and_target_protocols_are_listed(drug, clinician) -> None:
    response = api(clinician).get("/api/v1/catalog/drugs/")
    assert response.status_code == 200
    assert response.json()["results"][0]["name"] == "testdrug"
    assert api(clinician).get("/api/v1/catalog/target-protocols/").json()["results"] == []
