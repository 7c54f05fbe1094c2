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
            assert _error_schema(schema, path, method, code) in {"ErrorDetail", "FieldErrors"}, (path, code)
    assert schema["components"]["schemas"]["ErrorDetail"]["required"] == ["detail"]


def test_an_idempotent_create_documents_the_422_of_a_reused_key(schema: dict[str, Any]) -> None:
    assert _error_schema(schema, "/api/v1/courses/{id}/doses/", "post", "422") == "FieldErrors"
    assert _error_schema(schema, "/api/v1/courses/{id}/doses/", "post", "409") == "FieldErrors"
    assert "422" not in schema["paths"]["/api/v1/courses/{id}/what-if/"]["post"]["responses"]


def test_the_documented_415_is_what_a_plain_text_body_gets(clinician_client: Client) -> None:
    response = clinician_client.post("/api/v1/patients/", "mrn=1", content_type="text/plain")
    assert response.status_code == 415
    assert set(response.json()) == {"detail"}


def test_the_documented_403_is_what_an_anonymous_caller_gets(client: Client) -> None:
    response = client.get("/api/v1/patients/")
    assert response.status_code == 403
    assert set(response.json()) == {"detail"}
