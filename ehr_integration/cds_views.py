"""CDS Hooks endpoints: discovery (open, as the specification says) and the service calls (signed JWT).

Plain Django views rather than DRF: the request and answer shapes are the CDS Hooks specification's, not
this API's, and they are documented there and in docs/ehr-integration.md (the OpenAPI schema covers /api/).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from audit import context
from audit.models import AuditEntry
from audit.recorder import record_event
from ehr_integration import cds_services
from ehr_integration.cds_auth import CdsAuthError, VerifiedClient, verify_request_jwt
from ehr_integration.public_urls import absolute

MAX_BODY_BYTES = 2 * 1024 * 1024  # a draft-orders bundle is small; anything larger is not a CDS request


def cors(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """CORS as the CDS Hooks specification asks (browser-based CDS clients): any origin may call, because the
    caller is authenticated by its signed JWT, never by a cookie; a preflight (OPTIONS) is answered here."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = HttpResponse(status=204) if request.method == "OPTIONS" else view(request, *args, **kwargs)
        response["Access-Control-Allow-Origin"] = "*"
        response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
        response["Access-Control-Max-Age"] = "600"
        return response

    return wrapped


@csrf_exempt
@cors
@require_http_methods(["GET", "OPTIONS"])
def discovery(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"services": [service.discovery() for service in cds_services.SERVICES.values()]})


def _error(status: int, message: str, **headers: str) -> JsonResponse:
    response = JsonResponse({"detail": message}, status=status)
    for name, value in headers.items():
        response[name] = value
    return response


def _authenticated(request: HttpRequest, *, url_name: str, service_id: str) -> VerifiedClient | JsonResponse:
    """The EHR that signed this request for this very URL, or the 401 (audited) that refuses it."""
    audience = absolute(request, reverse(url_name, args=[service_id]))
    try:
        return verify_request_jwt(authorization=request.headers.get("Authorization", ""), audience=audience)
    except CdsAuthError as error:
        record_event(
            AuditEntry.Action.ACCESS_DENIED,
            object_type="ehr_integration.cds_call",
            object_id=service_id,
            details={"service": service_id, "ehr": error.system.name if error.system else None},
            reason=f"CDS Hooks request refused: {error.message}",
        )
        return _error(401, error.message, **{"WWW-Authenticate": 'Bearer error="invalid_token"'})


def _json_body(request: HttpRequest) -> Any:
    if len(request.body) > MAX_BODY_BYTES:
        return _error(413, f"a CDS Hooks request is at most {MAX_BODY_BYTES // 1024} KiB")
    try:
        return json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        return _error(400, "the body must be a JSON CDS Hooks request")


@csrf_exempt
@cors
@require_http_methods(["POST", "OPTIONS"])
def call(request: HttpRequest, service_id: str) -> JsonResponse:
    service = cds_services.SERVICES.get(service_id)
    if service is None:
        return _error(404, f"no CDS service {service_id!r}; GET /cds-services lists them")
    client = _authenticated(request, url_name="ehr:cds_call", service_id=service_id)
    if isinstance(client, JsonResponse):
        return client
    body = _json_body(request)
    if isinstance(body, JsonResponse):
        return body
    if not isinstance(body, dict) or not isinstance(body.get("context"), dict):
        return _error(400, "a CDS Hooks request is a JSON object with a 'context' object")
    if body.get("hook") != service.hook:
        return _error(
            400, f"service {service_id!r} answers the {service.hook!r} hook, not {body.get('hook')!r}"
        )
    system = client.system
    smart_launch_url = absolute(request, reverse("ehr:smart_launch")) if system.fhir_base_url else None
    actor = context.Actor(
        user_id=None,
        label=f"EHR {system.name} (CDS Hooks)"[:200],
        context={**context.current().context, "ehr_user": str(body["context"].get("userId") or "")[:200]},
    )
    with context.acting(actor):
        answer = cds_services.answer(
            service=service,
            request=body,
            system=system,
            url=lambda path: absolute(request, path),
            smart_launch_url=smart_launch_url,
        )
        record_event(
            AuditEntry.Action.READ,
            patient_id=answer.patient.public_id if answer.patient else None,
            object_type="ehr_integration.cds_call",
            object_id=service_id,
            details={
                "hook": service.hook,
                "hook_instance": str(body.get("hookInstance") or "")[:100],
                "ehr": system.name,
                "jti": str(client.claims.get("jti"))[:255],
                "ehr_patient_id": str(body["context"].get("patientId") or "")[:200],
                "patient_matched": answer.patient is not None,
                "drugs": answer.drugs,
                "cards": len(answer.cards),
            },
        )
    return JsonResponse({"cards": answer.cards})


FEEDBACK_OUTCOMES = frozenset({"accepted", "overridden"})


@csrf_exempt
@cors
@require_http_methods(["POST", "OPTIONS"])
def feedback(request: HttpRequest, service_id: str) -> JsonResponse:
    """CDS Hooks 2.0 feedback: what the clinician did with a card (accepted, or overridden and why)."""
    if service_id not in cds_services.SERVICES:
        return _error(404, f"no CDS service {service_id!r}; GET /cds-services lists them")
    client = _authenticated(request, url_name="ehr:cds_feedback", service_id=service_id)
    if isinstance(client, JsonResponse):
        return client
    body = _json_body(request)
    if isinstance(body, JsonResponse):
        return body
    items = body.get("feedback") if isinstance(body, dict) else None
    if not isinstance(items, list) or not all(
        isinstance(item, dict)
        and item.get("outcome") in FEEDBACK_OUTCOMES
        and isinstance(item.get("card"), str)
        for item in items
    ):
        return _error(
            400, "feedback is {'feedback': [{'card': <uuid>, 'outcome': 'accepted' | 'overridden'}]}"
        )
    with context.acting(
        context.Actor(
            user_id=None,
            label=f"EHR {client.system.name} (CDS Hooks)"[:200],
            context=context.current().context,
        )
    ):
        for item in items:
            reason = item.get("overrideReason") if isinstance(item.get("overrideReason"), dict) else {}
            coding = reason.get("reason") if isinstance(reason.get("reason"), dict) else {}
            record_event(
                AuditEntry.Action.READ,
                object_type="ehr_integration.cds_feedback",
                object_id=str(item["card"])[:200],
                details={
                    "service": service_id,
                    "outcome": item["outcome"],
                    "override_reason": {
                        key: str(coding.get(key) or "")[:200] for key in ("system", "code", "display")
                    },
                    "comment": str(reason.get("userComment") or "")[:2000],
                    "outcome_at": str(item.get("outcomeTimestamp") or "")[:40],
                },
                reason=f"CDS Hooks card {item['outcome']}",
            )
    return JsonResponse({})
