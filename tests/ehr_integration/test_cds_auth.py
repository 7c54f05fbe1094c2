"""CDS Hooks authentication: the EHR's signed JWT (RS256 and ES384, keys generated here), and every refusal
the specification asks for: replay, wrong audience, expiry, unknown issuer, symmetric or no signature."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest

from audit.models import AuditEntry
from tests.ehr_integration.conftest import CDS_ISSUER, public_jwk, signed_jwt

pytestmark = pytest.mark.django_db
SERVICE = "/cds-services/mipd-patient-view"
AUDIENCE = f"http://testserver{SERVICE}"


def hook_request(patient_id: str = "ehr-pat-1") -> dict[str, Any]:
    return {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "fhirServer": "https://ehr.hospital.example/fhir",
        "context": {"userId": "Practitioner/example", "patientId": patient_id},
    }


def post(client: Any, token: str | None, body: dict[str, Any] | None = None, path: str = SERVICE) -> Any:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.post(
        path, data=json.dumps(body or hook_request()), content_type="application/json", **headers
    )


def test_discovery_lists_both_hooks_with_their_prefetch(client) -> None:
    response = client.get("/cds-services")
    assert response.status_code == 200
    services = {service["id"]: service for service in response.json()["services"]}
    assert services["mipd-patient-view"]["hook"] == "patient-view"
    assert services["mipd-order-select"]["hook"] == "order-select"
    for service in services.values():
        assert service["title"] and service["description"]
        assert service["prefetch"] == {"patient": "Patient/{{context.patientId}}"}


def test_an_rs256_jwt_from_the_configured_ehr_is_accepted_and_audited(client, ehr_system, rsa_key) -> None:
    response = post(client, signed_jwt(rsa_key, audience=AUDIENCE, jti="first-call"))
    assert response.status_code == 200, response.content
    assert response.json() == {"cards": []}  # an unknown patient: no cards, no error
    entry = AuditEntry.objects.filter(object_type="ehr_integration.cds_call").latest("seq")
    assert entry.action == AuditEntry.Action.READ
    assert entry.actor == "EHR Test EHR (CDS Hooks)"
    details = json.loads(entry.after)
    assert details["jti"] == "first-call" and details["patient_matched"] is False


def test_an_es384_jwt_is_accepted(client, ehr_system, ec_key) -> None:
    response = post(client, signed_jwt(ec_key, audience=AUDIENCE, kid="ec-1", alg="ES384"))
    assert response.status_code == 200, response.content


def test_a_replayed_jwt_is_refused(client, ehr_system, rsa_key) -> None:
    token = signed_jwt(rsa_key, audience=AUDIENCE, jti="once-only")
    assert post(client, token).status_code == 200
    again = post(client, token)
    assert again.status_code == 401
    assert "replay" in again.json()["detail"]
    refusal = AuditEntry.objects.filter(action=AuditEntry.Action.ACCESS_DENIED).latest("seq")
    assert "replay refused" in refusal.reason


def test_a_jwt_for_another_service_url_is_refused(client, ehr_system, rsa_key) -> None:
    token = signed_jwt(rsa_key, audience="http://testserver/cds-services/mipd-order-select")
    response = post(client, token)
    assert response.status_code == 401
    assert "aud" in response.json()["detail"]
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_an_expired_jwt_is_refused(client, ehr_system, rsa_key) -> None:
    token = signed_jwt(rsa_key, audience=AUDIENCE, issued_at=time.time() - 900, lifetime_s=300)
    response = post(client, token)
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_a_jwt_living_for_hours_is_refused(client, ehr_system, rsa_key) -> None:
    response = post(client, signed_jwt(rsa_key, audience=AUDIENCE, lifetime_s=6 * 3600))
    assert response.status_code == 401
    assert "longer than" in response.json()["detail"]


def test_a_jwt_signed_by_another_key_is_refused(client, ehr_system) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    response = post(client, signed_jwt(stranger, audience=AUDIENCE))
    assert response.status_code == 401
    assert "Signature verification failed" in response.json()["detail"]


def test_an_unknown_or_inactive_issuer_is_refused(client, ehr_system, rsa_key) -> None:
    assert post(client, signed_jwt(rsa_key, audience=AUDIENCE, issuer="https://elsewhere")).status_code == 401
    ehr_system.active = False
    ehr_system.save()
    response = post(client, signed_jwt(rsa_key, audience=AUDIENCE))
    assert response.status_code == 401
    assert "not a configured, active EHR" in response.json()["detail"]


def test_hmac_and_unsigned_tokens_are_refused(client, ehr_system) -> None:
    claims = {
        "iss": CDS_ISSUER,
        "aud": AUDIENCE,
        "iat": int(time.time()),
        "exp": int(time.time()) + 60,
        "jti": "x",
    }
    hmac = jwt.encode(claims, "a-shared-secret-of-at-least-32-bytes!", algorithm="HS256")
    unsigned = jwt.encode(claims, None, algorithm="none")
    for token in (hmac, unsigned):
        response = post(client, token)
        assert response.status_code == 401
        assert "algorithm" in response.json()["detail"]


def test_a_request_without_a_bearer_token_is_refused(client, ehr_system) -> None:
    response = post(client, None)
    assert response.status_code == 401
    assert "Bearer" in response.json()["detail"]


def test_a_jwt_without_jti_is_refused(client, ehr_system, rsa_key) -> None:
    now = int(time.time())
    token = jwt.encode(
        {"iss": CDS_ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 60}, rsa_key, "RS256", {"kid": "rsa-1"}
    )
    response = post(client, token)
    assert response.status_code == 401
    assert "jti" in response.json()["detail"]


def test_a_wrong_hook_or_malformed_body_is_a_400_after_authentication(client, ehr_system, rsa_key) -> None:
    body = {**hook_request(), "hook": "order-select"}
    assert post(client, signed_jwt(rsa_key, audience=AUDIENCE), body).status_code == 400
    response = client.post(
        SERVICE,
        data=b"{not json",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {signed_jwt(rsa_key, audience=AUDIENCE)}",
    )
    assert response.status_code == 400


def test_an_unknown_service_is_a_404(client, ehr_system, rsa_key) -> None:
    assert post(client, None, path="/cds-services/nothing-here").status_code == 404


class _JwksHandler(BaseHTTPRequestHandler):
    document: bytes = b""
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.document)

    def log_message(self, *args: Any) -> None:
        pass


def test_keys_are_fetched_from_the_ehrs_jwks_url_and_a_foreign_jku_is_refused(client, db, ec_key) -> None:
    from ehr_integration.models import EhrSystem

    handler = type(
        "Handler",
        (_JwksHandler,),
        {"document": json.dumps({"keys": [public_jwk(ec_key, kid="k2", alg="ES384")]}).encode()},
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
        EhrSystem.objects.create(name="Remote keys", cds_issuer="https://remote.example", jwks_url=url)
        token = signed_jwt(ec_key, audience=AUDIENCE, kid="k2", alg="ES384", issuer="https://remote.example")
        assert post(client, token).status_code == 200
        assert handler.hits == 1
        foreign = signed_jwt(
            ec_key,
            audience=AUDIENCE,
            kid="k2",
            alg="ES384",
            issuer="https://remote.example",
            headers={"jku": "https://attacker.example/jwks.json"},
        )
        response = post(client, foreign)
        assert response.status_code == 401
        assert "jku" in response.json()["detail"]
    finally:
        server.shutdown()
        server.server_close()


def test_feedback_on_a_card_is_authenticated_and_audited(client, ehr_system, rsa_key) -> None:
    path = "/cds-services/mipd-patient-view/feedback"
    body = {
        "feedback": [
            {
                "card": "52859024-c3a4-5db8-986b-ba4572006520",
                "outcome": "overridden",
                "overrideReason": {
                    "reason": {"code": "patient-on-crrt", "display": "on CRRT"},
                    "userComment": "CVVHDF",
                },
                "outcomeTimestamp": "2026-12-03T10:00:00Z",
            }
        ]
    }
    assert post(client, signed_jwt(rsa_key, audience=AUDIENCE), body, path=path).status_code == 401  # aud
    response = post(client, signed_jwt(rsa_key, audience=f"http://testserver{path}"), body, path=path)
    assert response.status_code == 200, response.content
    entry = AuditEntry.objects.filter(object_type="ehr_integration.cds_feedback").latest("seq")
    details = json.loads(entry.after)
    assert details["outcome"] == "overridden" and details["comment"] == "CVVHDF"
    assert details["override_reason"]["code"] == "patient-on-crrt"
    bad = post(
        client, signed_jwt(rsa_key, audience=f"http://testserver{path}"), {"feedback": [{"x": 1}]}, path=path
    )
    assert bad.status_code == 400
