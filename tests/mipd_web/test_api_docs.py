"""The OpenAPI schema and Swagger UI, served without any CDN (hospital networks block them)."""

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.auth import login


@pytest.fixture
def logged_in_client(client: Client, django_user_model: type[User]) -> Client:
    user = django_user_model.objects.create_user(username="api-reader", password="pw-not-checked-here")
    login(client, user)
    return client


@pytest.mark.django_db
def test_api_docs_need_a_login(client: Client) -> None:
    assert client.get("/api/schema/").status_code == 403
    assert client.get("/api/docs/").status_code == 403


@pytest.mark.django_db
def test_schema_describes_the_api(logged_in_client: Client) -> None:
    response = logged_in_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "mipd-web API"
    assert "/api/v1/me/" in schema["paths"]


@pytest.mark.django_db
def test_swagger_ui_loads_its_assets_from_our_own_static_files(logged_in_client: Client) -> None:
    html = logged_in_client.get("/api/docs/").content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any("swagger-ui" in source for source in sources)
    assert all(not source.startswith(("http://", "https://", "//")) for source in sources), sources


@pytest.mark.django_db
def test_swagger_ui_runs_without_inline_script_or_style(logged_in_client: Client) -> None:
    """The Content-Security-Policy allows scripts and styles from this site only."""
    html = logged_in_client.get("/api/docs/").content.decode()
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert "<style" not in html
    script = re.findall(r'<script src="([^"]+\?script[^"]*)"', html)
    assert script and logged_in_client.get(script[0]).status_code == 200
