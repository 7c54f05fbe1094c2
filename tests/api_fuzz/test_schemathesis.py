"""Schemathesis against the live OpenAPI schema, as each role, in process on the test database.

Every operation of ``/api/schema/`` is called with generated requests (valid and invalid) as an anonymous
caller, a clinician (API token), a pharmacist, a curator and an administrator (sessions verified with the
second factor). Each answer must be no 5xx, a status code the schema documents for the operation, with a
body and content type that conform to it. Seeded and derandomized: the same requests every run.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api_fuzz.conftest import REQUESTS_SENT, ROLES, Caller

pytestmark = pytest.mark.django_db

SEED = 20261203
MAX_EXAMPLES = 12  # per operation and role, in the fuzzing phase (the examples phase adds its own)
BASE_URL = "http://testserver"  # a host the test settings allow
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


def aim_at_world(case: Any, world: dict[str, Any]) -> None:
    """Point half of the well-formed generated ids at the world's records, so that requests reach past the
    404 into validation and the services; the other half (and every malformed id) stay as generated."""
    generated = (case.path_parameters or {}).get("id")
    segments = case.path.removeprefix("/api/v1/").removeprefix("catalog/").split("/")
    record = world.get(ID_TARGETS.get(segments[0], ""))
    if generated is None or record is None:
        return
    if isinstance(generated, int):
        if generated % 2 == 0:
            case.path_parameters["id"] = record.pk
        return
    try:
        value = uuid.UUID(str(generated))
    except ValueError:
        return
    if value.int % 2 == 0:
        case.path_parameters["id"] = str(record.public_id)


@pytest.mark.parametrize("caller", ROLES, indirect=True)
@schema.parametrize()
# The world and the caller are shared by a test's examples on purpose: each test rolls back at its end.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_operation_answers_as_documented(
    case: Any, caller: Caller, wsgi_app: Any, world: dict[str, Any]
) -> None:
    from django.core.cache import cache

    cache.clear()  # the throttles' counters: each generated request stands alone
    aim_at_world(case, world)
    REQUESTS_SENT[0] += 1
    case.call_and_validate(
        app=wsgi_app, base_url=BASE_URL, headers=caller.headers, cookies=caller.cookies, checks=CHECKS
    )


def test_the_fuzzed_schema_is_the_one_the_app_serves(world: dict[str, Any]) -> None:
    from django.test import Client

    from tests.auth import login

    response = login(Client(), world["users"]["curator"]).get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    assert response.json() == served_schema()
