"""A small SMART on FHIR authorisation server and FHIR endpoint on 127.0.0.1, for the launch tests.

It does what a real EHR must: serves ``.well-known/smart-configuration`` and its JWKS, issues a one-time
code at ``authorize`` only for the registered client, redirect URI, ``aud`` and launch, checks the PKCE S256
verifier at ``token``, answers ``patient`` and a signed ``id_token`` with ``fhirUser``, and serves the
launch patient to the access token it issued.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.ehr_integration.conftest import public_jwk

CLIENT_ID = "mipd-smart-app"


@dataclass
class EhrState:
    base: str = ""
    patient_id: str = "smart-pat-1"
    fhir_user: str = "Practitioner/prac-1"
    launches: set[str] = field(default_factory=lambda: {"launch-123"})
    key: Any = field(default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048))
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    patient_reads: int = 0
    patient_resource: dict[str, Any] = field(default_factory=dict)
    id_token_key: Any = None  # a key other than the published one: a forged id_token


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _handler(state: EhrState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _json(self, status: int, document: Any) -> None:
            body = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {key: values[0] for key, values in parse_qs(url.query).items()}
            if url.path == "/fhir/.well-known/smart-configuration":
                return self._json(
                    200,
                    {
                        "issuer": state.base,
                        "jwks_uri": f"{state.base}/jwks",
                        "authorization_endpoint": f"{state.base}/auth/authorize",
                        "token_endpoint": f"{state.base}/auth/token",
                        "code_challenge_methods_supported": ["S256"],
                        "capabilities": [
                            "launch-ehr",
                            "client-public",
                            "openid-fhirUser",
                            "context-ehr-patient",
                        ],
                    },
                )
            if url.path == "/fhir/jwks":
                return self._json(200, {"keys": [public_jwk(state.key, kid="ehr-id", alg="RS256")]})
            if url.path == "/fhir/auth/authorize":
                state.authorize_requests.append(query)
                ok = (
                    query.get("response_type") == "code"
                    and query.get("client_id") == CLIENT_ID
                    and query.get("aud") == state.base
                    and query.get("launch") in state.launches
                    and query.get("code_challenge_method") == "S256"
                    and query.get("code_challenge")
                    and query.get("state")
                )
                if not ok:
                    return self._json(400, {"error": "invalid_request"})
                code = secrets.token_urlsafe(16)
                state.codes[code] = {
                    "challenge": query["code_challenge"],
                    "redirect_uri": query["redirect_uri"],
                }
                self.send_response(302)
                self.send_header(
                    "Location",
                    f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}",
                )
                self.end_headers()
                return None
            if url.path == f"/fhir/Patient/{state.patient_id}":
                if self.headers.get("Authorization", "").removeprefix("Bearer ") not in state.tokens:
                    return self._json(401, {"resourceType": "OperationOutcome"})
                state.patient_reads += 1
                return self._json(
                    200, state.patient_resource or {"resourceType": "Patient", "id": state.patient_id}
                )
            return self._json(404, {"error": "not found"})

        def do_POST(self) -> None:
            if urlsplit(self.path).path != "/fhir/auth/token":
                return self._json(404, {"error": "not found"})
            length = int(self.headers.get("Content-Length") or 0)
            form = {key: values[0] for key, values in parse_qs(self.rfile.read(length).decode()).items()}
            state.token_requests.append(form)
            issued = state.codes.pop(form.get("code", ""), None)  # a code works once
            if (
                issued is None
                or form.get("grant_type") != "authorization_code"
                or form.get("client_id") != CLIENT_ID
                or form.get("redirect_uri") != issued["redirect_uri"]
                or _s256(form.get("code_verifier", "")) != issued["challenge"]
            ):
                return self._json(
                    400, {"error": "invalid_grant", "error_description": "code or verifier refused"}
                )
            access = secrets.token_urlsafe(24)
            state.tokens.add(access)
            now = int(time.time())
            id_token = jwt.encode(
                {
                    "iss": state.base,
                    "sub": "prac-1",
                    "aud": CLIENT_ID,
                    "iat": now,
                    "exp": now + 300,
                    "fhirUser": state.fhir_user,
                },
                state.id_token_key or state.key,
                algorithm="RS256",
                headers={"kid": "ehr-id"},
            )
            return self._json(
                200,
                {
                    "access_token": access,
                    "token_type": "Bearer",
                    "expires_in": 3600,
                    "scope": "launch openid fhirUser patient/*.read",
                    "patient": state.patient_id,
                    "id_token": id_token,
                },
            )

    return Handler


@contextmanager
def smart_ehr() -> Iterator[EhrState]:
    state = EhrState()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base = f"http://127.0.0.1:{server.server_address[1]}/fhir"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
