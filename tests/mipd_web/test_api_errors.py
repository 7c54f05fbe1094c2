"""API errors: JSON under /api/ whatever answers them, and every code an operation gives is in the schema.

Schemathesis found both (issue 14): a malformed id (``/api/v1/patients/not-a-uuid/``) matched no URL and got
Django's HTML 404 page, and the schema documented only the success code of each operation, while every one
also answers 400, 401, 403 and 429 (and 404, 415, 422 where they apply).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from drf_spectacular.generators import SchemaGenerator

from accounts.roles import Role
from tests.auth import login
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


@pytest.fixture
def clinician_client(client: Client) -> Client:
    return login(client, UserFactory(username="clinician", roles=[Role.CLINICIAN]))


@pytest.mark.parametrize(
    "path", ["/api/v1/patients/not-a-uuid/", "/api/v1/courses/123/doses/", "/api/v1/no-such-endpoint/"]
)
def test_a_path_no_url_matches_answers_json_under_the_api(clinician_client: Client, path: str) -> None:
    response = clinician_client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


def test_a_page_no_url_matches_keeps_the_html_404(clinician_client: Client) -> None:
    response = clinician_client.get("/patients/not-a-uuid/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def _error_schema(schema: dict[str, Any], path: str, method: str, code: str) -> str:
    response = schema["paths"][path][method]["responses"][code]
    return response["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]


def test_every_operation_documents_the_errors_it_can_answer(schema: dict[str, Any]) -> None:
    operations = [
        (path, method, operation)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
        if path.startswith("/api/")
    ]
    assert len(operations) > 30
    for path, method, operation in operations:
        codes = operation["responses"].keys()
        assert {"400", "401", "403", "429"} <= codes, (path, method)
        if "{" in path:
            assert "404" in codes, (path, method)
        if "requestBody" in operation:
            assert "415" in codes, (path, method)
        for code in codes - {"200", "201", "202", "204"}:
            # The engine's endpoints declare their own 429 and 503 (mipd_web/throttles.py).
            shapes = {"ErrorDetail", "FieldErrors", "ThrottledError", "EngineUnavailableError"}
            assert _error_schema(schema, path, method, code) in shapes, (path, code)
    assert schema["components"]["schemas"]["ErrorDetail"]["required"] == ["detail"]


def test_an_idempotent_create_documents_the_422_of_a_reused_key(schema: dict[str, Any]) -> None:
    assert _error_schema(schema, "/api/v1/courses/{id}/doses/", "post", "422") == "FieldErrors"
    assert _error_schema(schema, "/api/v1/courses/{id}/doses/", "post", "409") == "FieldErrors"
    what_if = schema["paths"]["/api/v1/courses/{id}/what-if/"]["post"]["responses"]
    assert "422" not in what_if  # no Idempotency-Key: nothing is stored
    assert _error_schema(schema, "/api/v1/courses/{id}/what-if/", "post", "409") == "FieldErrors"  # a stop


def test_the_documented_415_is_what_a_plain_text_body_gets(clinician_client: Client) -> None:
    response = clinician_client.post("/api/v1/patients/", "mrn=1", content_type="text/plain")
    assert response.status_code == 415
    assert set(response.json()) == {"detail"}


def test_the_documented_403_is_what_an_anonymous_caller_gets(client: Client) -> None:
    response = client.get("/api/v1/patients/")
    assert response.status_code == 403
    assert set(response.json()) == {"detail"}


def _csrf_session(user: Any) -> Client:
    """A browser-like session: the CSRF check runs, with the cookie and the header of the same token."""
    from django.middleware.csrf import _get_new_csrf_string

    client = login(Client(enforce_csrf_checks=True), user)
    token = _get_new_csrf_string()
    client.cookies["csrftoken"] = token
    client.defaults["HTTP_X_CSRFTOKEN"] = token
    return client


def test_a_multipart_form_with_an_idempotency_key_is_answered_not_a_500() -> None:
    """Schemathesis found it (issue 14): the session's CSRF check parsed the multipart form from the stream,
    and the Idempotency-Key's fingerprint of the raw body then raised RawPostDataException (a 500)."""
    import datetime as dt

    from django.utils import timezone

    from patients import services
    from tests.factories import care_team

    clinician = UserFactory(username="clinician", roles=[Role.CLINICIAN])
    care_team(clinician)
    patient = services.patient_create(
        mrn="MRN-1",
        family_name="F",
        given_name="G",
        birth_date=dt.date(1970, 1, 1),
        sex="male",
        ward="ICU",
        user=clinician,
    )
    when = (timezone.now() - dt.timedelta(hours=1)).isoformat()
    body = {"kind": "weight", "value": "70", "unit": "kg", "measured_at": when}
    client = _csrf_session(clinician)
    url = f"/api/v1/patients/{patient.public_id}/measurements/"
    first = client.post(url, body, HTTP_IDEMPOTENCY_KEY="key-1")  # the test client's default: multipart
    assert first.status_code == 201, first.content
    retry = client.post(url, body, HTTP_IDEMPOTENCY_KEY="key-1")
    assert retry.status_code == 201 and retry["Idempotent-Replayed"] == "true"
    assert patient.measurements.count() == 1


def test_a_multipart_model_import_is_a_400_not_a_500() -> None:
    """The catalog import measures the raw body against its size limit: the same RawPostDataException."""
    curator = UserFactory(username="curator", roles=[Role.MODEL_CURATOR])
    response = _csrf_session(curator).post("/api/v1/catalog/model-versions/", {"document": "{}"})
    assert response.status_code == 400, response.content
    assert response.json()  # the fields at fault
