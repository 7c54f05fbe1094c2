"""Security headers: Content-Security-Policy without inline script, Permissions-Policy, no-store."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client

from tests.auth import login
from tests.dosing import conftest as dosing_fixtures

pytestmark = pytest.mark.django_db
clinician, course, patient = dosing_fixtures.clinician, dosing_fixtures.course, dosing_fixtures.patient
published_version = dosing_fixtures.published_version
TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def test_pages_carry_a_strict_content_security_policy(client: Client) -> None:
    policy = client.get("/accounts/login/")["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["script-src"] == "'self'"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["default-src"] == "'self'"


def test_pages_carry_a_permissions_policy(client: Client) -> None:
    policy = client.get("/accounts/login/")["Permissions-Policy"]
    for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()", "usb=()"):
        assert feature in policy


def test_patient_pages_and_the_api_are_never_stored(client: Client, patient, course, clinician) -> None:
    login(client, clinician)
    for url in (
        "/patients/",
        f"/patients/{patient.public_id}/",
        f"/courses/{course.public_id}/",
        f"/api/v1/patients/{patient.public_id}/",
        f"/api/v1/courses/{course.public_id}/",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response["Cache-Control"] == "no-store", url


def test_no_template_has_inline_script_or_event_handlers() -> None:
    """CSP refuses inline script: data for scripts goes in json_script blocks, code in static files."""
    offenders = []
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text(encoding="utf-8")
        for match in re.finditer(r"<script\b([^>]*)>", text):
            attributes = match.group(1)
            if "src=" not in attributes:
                offenders.append(f"{template.name}: inline <script>")
        if re.search(r"\son[a-z]+\s*=", text):
            offenders.append(f"{template.name}: event handler attribute")
        if "javascript:" in text:
            offenders.append(f"{template.name}: javascript: URL")
    assert offenders == []
