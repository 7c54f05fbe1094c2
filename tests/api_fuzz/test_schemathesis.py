"""Schemathesis against the live OpenAPI schema, as each role, in process on the test database.

Every operation of ``/api/schema/`` is called with generated requests (valid and invalid) as an anonymous
caller, a clinician (API token), a pharmacist, a curator and an administrator (sessions verified with the
second factor). Each answer must be no 5xx, a status code the schema documents for the operation, with a
body and content type that conform to it. Seeded and derandomized: the same requests every run.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.meta import TestPhase
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api_fuzz.conftest import REQUESTS_SENT, ROLES, WRITTEN, Caller
from tests.throttle_counts import forget_throttle_counts

pytestmark = pytest.mark.django_db

SEED = 20261203
MAX_EXAMPLES = 8  # per operation and role, in the fuzzing phase (the examples phase adds its own)
BASE_URL = "http://localhost"  # the host schemathesis' WSGI client keeps the session cookie for
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "database": "none",
            "mode": "all",
        },
        "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
    }
)


def served_schema() -> dict[str, Any]:
    """The document /api/schema/ serves (drf-spectacular's generator, as SpectacularAPIView runs it)."""
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


schema = schemathesis.openapi.from_dict(served_schema(), config=CONFIG)


# The record a path's {id} names, by the path's first segment under /api/v1/.
ID_TARGETS = {
    "patients": "patient",
    "measurements": "measurement",
    "genotypes": "genotype",
    "sessions": "session",
    "courses": "course",
    "doses": "dose",
    "levels": "level",
    "updates": "update",
    "recommendations": "recommendation",
    "model-versions": "model_version",
    "change-requests": "change_request",
}


def aim_at_world(case: Any, world: dict[str, Any], *, always: bool) -> None:
    """Point half of the well-formed generated ids (``always``: every id) at the world's records, so that
    requests reach past the 404 into validation and the services; the rest stay as generated."""
    generated = (case.path_parameters or {}).get("id")
    segments = case.path.removeprefix("/api/v1/").removeprefix("catalog/").split("/")
    record = world.get(ID_TARGETS.get(segments[0], ""))
    if generated is None or record is None:
        return
    if isinstance(generated, int):
        if always or generated % 2 == 0:
            case.path_parameters["id"] = record.pk
        return
    try:
        value = uuid.UUID(str(generated))
    except ValueError:
        if always:
            case.path_parameters["id"] = str(record.public_id)
        return
    if always or value.int % 2 == 0:
        case.path_parameters["id"] = str(record.public_id)


# The schema's request examples are valid writes; who may make each (the other roles must be refused).
WRITERS = {
    "catalog_change_request_decide": "curator",
    "catalog_model_versions_import": "curator",
    "catalog_model_version_action": "curator",
    "recommendations_review": "pharmacist",
    "recommendations_preview_change": "pharmacist",
}


# Writing operations whose success needs a system outside the app, which the fuzz world does not run: each is
# written against one its own tests start (tests/fhir_interop/test_server_pull.py: a FHIR server, loopback).
NEEDS_AN_OUTSIDE_SYSTEM = {"fhir_pull_patient"}


def from_the_examples(case: Any) -> bool:
    return case.meta is not None and case.meta.phase.name == TestPhase.EXAMPLES


def make_example_current(case: Any, world: dict[str, Any], caller: Caller) -> None:
    """What a static example cannot know: the world's ids, times of now (a dose is recorded when given),
    and a pharmacist's signature (the password and a fresh authenticator code)."""
    from django.utils import timezone

    from tests.auth import next_totp_code
    from tests.factories import PASSWORD

    body = case.body
    if not isinstance(body, dict):
        return
    moment = (timezone.now() - dt.timedelta(minutes=30)).isoformat()
    for name, value in list(body.items()):
        if name.endswith("_at") and isinstance(value, str):
            body[name] = moment
    if case.operation.definition.raw.get("operationId") == "courses_open":
        body["patient"] = str(world["patient"].public_id)
        body["model_version"] = world["model_version"].pk
    if "otp_code" in body and caller.user is not None:
        body["password"] = PASSWORD
        body["otp_code"] = next_totp_code(caller.user)
        body["acknowledged_alerts"] = [alert["code"] for alert in world["recommendation"].alerts or []]


@pytest.mark.parametrize("caller", ROLES, indirect=True)
@schema.parametrize()
# The world and the caller are shared by a test's examples on purpose: each test rolls back at its end.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_operation_answers_as_documented(
    case: Any, caller: Caller, wsgi_app: Any, world: dict[str, Any]
) -> None:
    forget_throttle_counts()  # the throttles' counters: each generated request stands alone
    example = from_the_examples(case)
    aim_at_world(case, world, always=example)
    if example:
        make_example_current(case, world, caller)
    REQUESTS_SENT[0] += 1
    response = case.call_and_validate(
        app=wsgi_app, base_url=BASE_URL, headers=caller.headers, cookies=caller.cookies, checks=CHECKS
    )
    operation_id = case.operation.definition.raw.get("operationId", "")
    if example and case.method == "POST" and caller.role == WRITERS.get(operation_id, "clinician"):
        assert response.status_code < 300, (operation_id, response.status_code, response.text)
        WRITTEN.add(operation_id)


@pytest.mark.parametrize("caller", ROLES, indirect=True)
def test_each_caller_is_signed_in_as_its_role(caller: Caller, wsgi_app: Any) -> None:
    """The fuzz tests' credentials reach the app as they are sent: a token, or a session cookie and CSRF."""
    case = schema["/api/v1/me/"]["GET"].Case()
    response = case.call(app=wsgi_app, base_url=BASE_URL, headers=caller.headers, cookies=caller.cookies)
    if caller.user is None:
        assert response.status_code == 403
    else:
        assert response.status_code == 200, response.text
        assert response.json()["username"] == caller.user.username


def test_the_fuzzed_schema_is_the_one_the_app_serves(world: dict[str, Any]) -> None:
    from django.test import Client

    from tests.auth import login

    response = login(Client(), world["users"]["curator"]).get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    assert response.json() == served_schema()


def test_every_writing_operation_was_written_by_its_example(request: pytest.FixtureRequest) -> None:
    """The examples phase above reached past the 400s: each POST's example was recorded (runs last)."""
    writing = {
        operation["operationId"]
        for methods in served_schema()["paths"].values()
        for method, operation in methods.items()
        if method == "post"
    }
    fuzzed = [item for item in request.session.items if "answers_as_documented" in item.name]
    if len(fuzzed) < len(writing) * len(ROLES):
        pytest.skip("the fuzz tests were deselected: nothing to count")
    assert writing - WRITTEN - NEEDS_AN_OUTSIDE_SYSTEM == set()
