"""The OpenAPI schema covers the clinical API, with an operation id per endpoint and no generator warning."""

from __future__ import annotations

import pytest
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator

CLINICAL_PATHS = {
    "/api/v1/patients/": {"get", "post"},
    "/api/v1/patients/{id}/": {"get"},
    "/api/v1/patients/{id}/measurements/": {"get", "post"},
    "/api/v1/measurements/{id}/entered-in-error/": {"post"},
    "/api/v1/patients/{id}/genotypes/": {"get", "post"},
    "/api/v1/patients/{id}/consents/": {"get", "post"},
    "/api/v1/courses/": {"get", "post"},
    "/api/v1/courses/{id}/": {"get"},
    "/api/v1/courses/{id}/doses/": {"get", "post"},
    "/api/v1/courses/{id}/levels/": {"get", "post"},
    "/api/v1/levels/{id}/exclude/": {"post"},
    "/api/v1/courses/{id}/updates/": {"get", "post"},
    "/api/v1/updates/{id}/": {"get"},
    "/api/v1/courses/{id}/what-if/": {"post"},
    "/api/v1/courses/{id}/recommendations/": {"get"},
}


@pytest.mark.django_db
def test_the_schema_describes_every_clinical_endpoint_without_warnings() -> None:
    GENERATOR_STATS.reset()
    with GENERATOR_STATS.silence():
        schema = SchemaGenerator().get_schema(request=None, public=True)
    problems = {**GENERATOR_STATS._warn_cache, **GENERATOR_STATS._error_cache}
    GENERATOR_STATS.reset()
    assert not problems
    for path, methods in CLINICAL_PATHS.items():
        assert path in schema["paths"], path
        operations = schema["paths"][path]
        assert methods <= operations.keys(), path
        for method in methods:
            assert operations[method]["operationId"], (path, method)
    level_input = schema["components"]["schemas"]["LevelCreateInputRequest"]["properties"]
    assert level_input["sampled_at"]["format"] == "date-time"
