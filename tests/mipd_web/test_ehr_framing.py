"""EHR_FRAME_ANCESTORS: the app framed by the named EHR origins only (a SMART launch inside the EHR's window),
with cookies a cross-site frame can use; unset, nobody may frame it. Settings load once a process."""

from __future__ import annotations

import json

import pytest

from tests.mipd_web.conftest import PRODUCTION_ENV, RunInProcess

# The sign-in page as a browser gets it over HTTPS: its framing headers and the CSRF cookie's attributes.
SHOW_FRAMING = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client, override_settings
plain = {**settings.STORAGES, "staticfiles": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}
with override_settings(STORAGES=plain):  # no collected manifest here; the headers do not depend on it
    response = Client().get("/accounts/login/", secure=True, HTTP_HOST="mipd.example.org")
policy = response["Content-Security-Policy"]
directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
cookie = response.cookies["csrftoken"]
print(json.dumps({
    "status": response.status_code,
    "frame_ancestors": directives["frame-ancestors"],
    "x_frame_options": response.get("X-Frame-Options"),
    "csrf_samesite": cookie["samesite"],
    "csrf_secure": bool(cookie["secure"]),
}))
"""


def framing(run_python: RunInProcess, **env: str) -> dict:
    result = run_python(
        SHOW_FRAMING, env={"DJANGO_SETTINGS_MODULE": "mipd_web.settings", **PRODUCTION_ENV, **env}
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_without_ehr_origins_nobody_may_frame_the_app(run_python: RunInProcess) -> None:
    shown = framing(run_python)
    assert shown["status"] == 200
    assert shown["frame_ancestors"] == "'none'"
    assert shown["x_frame_options"] == "DENY"
    assert shown["csrf_samesite"] == "Lax"


def test_the_named_ehr_origins_and_only_they_may_frame_the_app(run_python: RunInProcess) -> None:
    shown = framing(run_python, EHR_FRAME_ANCESTORS="https://ehr.hospital.example, https://epic.example:8443")
    assert shown["status"] == 200
    assert shown["frame_ancestors"] == "https://ehr.hospital.example https://epic.example:8443"
    assert shown["x_frame_options"] is None  # it cannot name origins; CSP frame-ancestors replaces it
    # A cross-site frame gets its cookies only when they are SameSite=None and Secure.
    assert (shown["csrf_samesite"], shown["csrf_secure"]) == ("None", True)


@pytest.mark.parametrize(
    "origins",
    [
        "http://ehr.hospital.example",  # plain HTTP outside this machine
        "https://ehr.hospital.example/launch",  # a path
        "https://ehr.hospital.example/",
        "https://*.hospital.example",  # a wildcard
        "ehr.hospital.example",  # no scheme
        "https://ehr.hospital.example:99999",  # no such port
        "https://user@ehr.hospital.example",
        "'self' https://ehr.hospital.example",  # CSP syntax smuggled in
    ],
)
def test_an_origin_that_is_not_a_plain_https_origin_is_refused_at_start(
    run_python: RunInProcess, origins: str
) -> None:
    result = run_python(
        "import django; django.setup()",
        env={"DJANGO_SETTINGS_MODULE": "mipd_web.settings", **PRODUCTION_ENV, "EHR_FRAME_ANCESTORS": origins},
    )
    assert result.returncode != 0
    assert "Configuration error: EHR_FRAME_ANCESTORS must list origins" in result.stderr


def test_framing_needs_secure_cookies(run_python: RunInProcess) -> None:
    result = run_python(
        "import django; django.setup()",
        env={
            "DJANGO_SETTINGS_MODULE": "mipd_web.settings",
            **PRODUCTION_ENV,
            "EHR_FRAME_ANCESTORS": "https://ehr.hospital.example",
            "SESSION_COOKIE_SECURE": "0",
        },
    )
    assert result.returncode != 0
    assert "EHR_FRAME_ANCESTORS needs SESSION_COOKIE_SECURE and CSRF_COOKIE_SECURE on" in result.stderr


def test_a_test_ehr_on_this_machine_may_use_plain_http(run_python: RunInProcess) -> None:
    shown = framing(run_python, EHR_FRAME_ANCESTORS="http://localhost:9000")
    assert shown["frame_ancestors"] == "http://localhost:9000"
