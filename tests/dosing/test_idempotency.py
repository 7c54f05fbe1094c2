"""Idempotency-Key: a retried creating POST returns the first answer and records nothing new."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import IdempotencyRecord
from dosing.models import DoseAdministration

pytestmark = pytest.mark.django_db
COURSES = "/api/v1/courses/"


def dose_body(hours_ago: float = 3) -> dict[str, Any]:
    return {
        "given_at": (timezone.now() - dt.timedelta(hours=hours_ago)).isoformat(),
        "amount_mg": 1000,
        "route": "iv_infusion",
        "infusion_duration_h": 1,
    }


@pytest.fixture
def client(clinician: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(clinician)
    return client


def test_a_retried_post_with_the_same_key_returns_the_first_response_and_records_once(
    client: APIClient, course: Any, celery_eager: None
) -> None:
    body = dose_body()
    url = f"{COURSES}{course.public_id}/doses/"
    first = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert first.status_code == again.status_code == 201, first.data
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert DoseAdministration.objects.filter(course=course).count() == 1


def test_the_same_key_with_another_body_is_refused_and_records_nothing(
    client: APIClient, course: Any, celery_eager: None
) -> None:
    url = f"{COURSES}{course.public_id}/doses/"
    assert client.post(url, dose_body(3), format="json", HTTP_IDEMPOTENCY_KEY="k-2").status_code == 201
    other = client.post(url, dose_body(2), format="json", HTTP_IDEMPOTENCY_KEY="k-2")

    assert other.status_code == 422
    assert "Idempotency-Key" in other.json()
    assert DoseAdministration.objects.filter(course=course).count() == 1


def test_without_a_key_or_with_another_key_each_post_records(
    client: APIClient, course: Any, celery_eager: None
) -> None:
    url = f"{COURSES}{course.public_id}/doses/"
    assert client.post(url, dose_body(3), format="json", HTTP_IDEMPOTENCY_KEY="k-3").status_code == 201
    assert client.post(url, dose_body(2), format="json", HTTP_IDEMPOTENCY_KEY="k-4").status_code == 201
    assert client.post(url, dose_body(1), format="json").status_code == 201
    assert DoseAdministration.objects.filter(course=course).count() == 3


def test_a_refused_request_leaves_no_key_so_the_corrected_retry_runs(
    client: APIClient, course: Any, celery_eager: None
) -> None:
    url = f"{COURSES}{course.public_id}/doses/"
    bad = dose_body() | {"amount_mg": -5}
    assert client.post(url, bad, format="json", HTTP_IDEMPOTENCY_KEY="k-5").status_code == 400
    assert not IdempotencyRecord.objects.exists()
    assert client.post(url, bad, format="json", HTTP_IDEMPOTENCY_KEY="k-5").status_code == 400


def test_a_malformed_key_is_a_field_error(client: APIClient, course: Any) -> None:
    url = f"{COURSES}{course.public_id}/doses/"
    response = client.post(url, dose_body(), format="json", HTTP_IDEMPOTENCY_KEY="x" * 256)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()


def test_the_schema_documents_the_header_on_creating_posts() -> None:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = {op["operationId"]: op for path in schema["paths"].values() for op in path.values()}
    for operation_id in (
        "courses_open",
        "courses_doses_create",
        "courses_levels_create",
        "recommendations_review",
        "patients_measurements_create",
    ):
        names = {(p["name"], p["in"]) for p in operations[operation_id].get("parameters", [])}
        assert ("Idempotency-Key", "header") in names, operation_id
