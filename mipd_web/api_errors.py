"""The API's error answers: every one is JSON, and the OpenAPI schema documents each code an operation gives.

Shapes (DRF's, kept as they are):

* ``{"detail": "..."}``: 401, 403, 404, 405, 406, 415, 429 (with ``Retry-After``), and a 400 for a body that
  is not JSON (or nested too deep) or a query string with a NUL byte or a non-ASCII digit (the field names
  then follow ``detail``, each with its messages).
* ``{"field": ["message", ...], "non_field_errors": [...]}``: 400 for values that fail validation, 409 for a
  request that conflicts with what is recorded (resend with a confirmation), 422 for an ``Idempotency-Key``
  reused with another body. A nested field nests the same way (``{"final_regimen": {"dose_mg": [...]}}``).

Django's own 404 page (a path that no URL matches, such as a malformed id) answers with the JSON shape under
``/api/`` as well.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

API_PREFIX = "/api/"

DETAIL_SCHEMA = "ErrorDetail"
FIELDS_SCHEMA = "FieldErrors"

COMPONENTS: dict[str, dict[str, Any]] = {
    DETAIL_SCHEMA: {
        "type": "object",
        "description": "an error that concerns the whole request",
        "properties": {"detail": {"type": "string", "description": "what went wrong, for a person"}},
        "required": ["detail"],
        "additionalProperties": True,
    },
    FIELDS_SCHEMA: {
        "type": "object",
        "description": "errors by field: each field (non_field_errors for the rest) lists its messages; a "
        "nested field nests the same way; detail when the whole body or query string is refused",
        "additionalProperties": True,
    },
}

# What every operation may answer (the idle session's 401, the throttles' 429, the query-string guard's 400).
ALWAYS = {
    "400": ("invalid input: the body or query parameters (the fields say which)", FIELDS_SCHEMA),
    "401": ("the session ended after a time without activity", DETAIL_SCHEMA),
    "403": (
        "not signed in (or a token refused), the second factor not given, or not allowed for this role "
        "or patient",
        DETAIL_SCHEMA,
    ),
    "429": ("too many requests (THROTTLE_ANON, THROTTLE_USER): retry after Retry-After s", DETAIL_SCHEMA),
}
NOT_FOUND = ("no such record (or a page past the last)", DETAIL_SCHEMA)
UNSUPPORTED_MEDIA = ("the body's Content-Type is not one the operation accepts", DETAIL_SCHEMA)
IDEMPOTENCY_MISMATCH = ("this Idempotency-Key was used with another body", FIELDS_SCHEMA)
CONFLICT = ("conflicts with what is recorded: resend with the confirmation the fields ask for", FIELDS_SCHEMA)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 404 handler: JSON under /api/ (a client parses it), the usual page elsewhere."""
    if request.path.startswith(API_PREFIX):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def _response(description: str, component: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{component}"}}},
    }


def _codes_for(path: str, operation: dict[str, Any]) -> dict[str, tuple[str, str]]:
    codes = dict(ALWAYS)
    parameters = operation.get("parameters", [])
    if "{" in path or any(parameter["name"] == "page" for parameter in parameters):
        codes["404"] = NOT_FOUND
    if "requestBody" in operation:
        codes["415"] = UNSUPPORTED_MEDIA
    if any(parameter["name"] == "Idempotency-Key" for parameter in parameters):
        codes["422"] = IDEMPOTENCY_MISMATCH
    return codes


def document_error_responses(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular post-processing hook: add the error answers each operation can give.

    An answer an operation declares itself (such as a 409 with its own description) is kept; only a bare
    object schema for an error code is replaced by the shared error shape.
    """
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(COMPONENTS)
    for path, operations in result.get("paths", {}).items():
        if not path.startswith(API_PREFIX):
            continue
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            codes = _codes_for(path, operation)
            if "409" in responses:
                codes["409"] = CONFLICT
            for code, (description, component) in codes.items():
                declared = responses.get(code)
                if declared is None or _is_bare_object(declared):
                    own = (declared or {}).get("description")
                    responses[code] = _response(own or description, component)
            for code, declared in list(responses.items()):  # an operation's own error code (the engine's 503)
                if code not in codes and code >= "400" and _is_bare_object(declared):
                    responses[code] = _response(declared.get("description", ""), DETAIL_SCHEMA)
    return result


def _is_bare_object(response: dict[str, Any]) -> bool:
    """A response declared only as ``OpenApiTypes.OBJECT`` (no fields): the error shape says more."""
    bare = {"type": "object", "additionalProperties": {}}
    schemas = [media.get("schema", {}) for media in response.get("content", {}).values()]
    return bool(schemas) and all(schema == bare for schema in schemas)
