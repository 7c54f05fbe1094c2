"""SMART App Launch v2, EHR launch: discovery, the authorisation request with PKCE, the token exchange and the
id_token check (Authlib for OAuth 2 and PKCE, PyJWT for the id_token).

1. ``/smart/launch?iss=<FHIR base>&launch=<opaque>``: ``iss`` must be the FHIR base URL of an active
   ``EhrSystem`` (never a URL the browser made up: it decides where we send the user and what we fetch).
   Its ``.well-known/smart-configuration`` gives the endpoints; the server must offer PKCE ``S256``.
2. The browser goes to ``authorization_endpoint`` with ``response_type=code``, our client id, redirect URI,
   scopes ``launch openid fhirUser patient/*.read``, a random ``state``, ``aud=iss``, ``launch`` and the
   S256 ``code_challenge``; the verifier and state stay in the server-side session.
3. ``/smart/callback`` exchanges the code (the verifier proves the same client asked), reads ``patient``
   and verifies the ``id_token`` (signature from the server's JWKS, ``iss``, ``aud`` = client id, ``exp``)
   before its ``fhirUser`` is believed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt
import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from django.conf import settings

from ehr_integration.models import EhrSystem, https_or_loopback

SCOPES = "launch openid fhirUser patient/*.read"
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "ES256", "ES384"]


class SmartLaunchError(Exception):
    """Why a launch cannot go on, in words for the person in front of the screen and for IT."""


@dataclass(frozen=True)
class ServerConfiguration:
    authorization_endpoint: str
    token_endpoint: str
    issuer: str  # the id_token's iss (OpenID), may be empty when the server issues no id_token
    jwks_uri: str


@dataclass(frozen=True)
class TokenResult:
    patient_id: str
    fhir_user: str  # from the verified id_token; empty when there is none
    access_token: str
    scope: str


def system_for_iss(iss: str) -> EhrSystem:
    wanted = (iss or "").rstrip("/")
    for system in EhrSystem.objects.filter(active=True).exclude(fhir_base_url=""):
        if system.fhir_base_url.rstrip("/") == wanted:
            return system
    raise SmartLaunchError(
        f"the launching EHR ({iss or 'no iss given'}) is not configured for SMART launches here; "
        "ask IT to add its FHIR base URL as an EHR system"
    )


def _get_json(url: str, **headers: str) -> dict[str, Any]:
    try:
        response = requests.get(
            url, headers={"Accept": "application/json", **headers}, timeout=settings.EHR_HTTP_TIMEOUT_S
        )
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as error:
        raise SmartLaunchError(f"could not read {url} ({type(error).__name__})") from error
    if not isinstance(document, dict):
        raise SmartLaunchError(f"{url} did not answer a JSON object")
    return document


def discover(system: EhrSystem) -> ServerConfiguration:
    document = _get_json(f"{system.fhir_base_url.rstrip('/')}/.well-known/smart-configuration")
    missing = [key for key in ("authorization_endpoint", "token_endpoint") if not document.get(key)]
    if missing:
        raise SmartLaunchError(f"the EHR's SMART configuration lacks {', '.join(missing)}")
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if document.get(key) and not https_or_loopback(str(document[key])):
            raise SmartLaunchError(f"the EHR's {key} is not https; the launch is refused")
    if "S256" not in (document.get("code_challenge_methods_supported") or []):
        raise SmartLaunchError(
            "the EHR's SMART configuration does not offer PKCE S256 (SMART v2 requires it)"
        )
    issuer = str(document.get("issuer") or "")
    jwks_uri = str(document.get("jwks_uri") or "")
    if issuer and not jwks_uri:
        jwks_uri = str(
            _get_json(f"{issuer.rstrip('/')}/.well-known/openid-configuration").get("jwks_uri") or ""
        )
    return ServerConfiguration(
        authorization_endpoint=str(document["authorization_endpoint"]),
        token_endpoint=str(document["token_endpoint"]),
        issuer=issuer,
        jwks_uri=jwks_uri,
    )


def _session(system: EhrSystem, *, redirect_uri: str, state: str | None = None) -> OAuth2Session:
    return OAuth2Session(
        client_id=system.smart_client_id,
        redirect_uri=redirect_uri,
        scope=SCOPES,
        state=state,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",  # a public client: PKCE instead of a secret
    )


def authorization_request(
    *, system: EhrSystem, configuration: ServerConfiguration, redirect_uri: str, launch: str
) -> tuple[str, str, str]:
    """(the authorisation URL, state, PKCE code verifier)."""
    verifier = generate_token(64)
    with _session(system, redirect_uri=redirect_uri) as client:
        url, state = client.create_authorization_url(
            configuration.authorization_endpoint,
            state=generate_token(32),
            code_verifier=verifier,
            aud=system.fhir_base_url,
            launch=launch,
        )
    return url, state, verifier


def _verified_fhir_user(id_token: str, *, system: EhrSystem, configuration: ServerConfiguration) -> str:
    if not configuration.jwks_uri:
        raise SmartLaunchError("the EHR sent an id_token but publishes no JWKS to verify it")
    try:
        key = jwt.PyJWKClient(
            configuration.jwks_uri, timeout=settings.EHR_HTTP_TIMEOUT_S
        ).get_signing_key_from_jwt(id_token)
        claims = jwt.decode(
            id_token,
            key.key,
            algorithms=ID_TOKEN_ALGORITHMS,
            audience=system.smart_client_id,
            issuer=configuration.issuer or None,
            leeway=60,
            options={"require": ["iss", "sub", "aud", "exp", "iat"]},
        )
    except jwt.PyJWTError as error:
        raise SmartLaunchError(f"the EHR's id_token was refused ({error})") from error
    return str(claims.get("fhirUser") or claims.get("profile") or "")


def exchange_code(
    *,
    system: EhrSystem,
    configuration: ServerConfiguration,
    redirect_uri: str,
    code: str,
    state: str,
    verifier: str,
) -> TokenResult:
    with _session(system, redirect_uri=redirect_uri, state=state) as client:
        try:
            token = client.fetch_token(
                configuration.token_endpoint,
                grant_type="authorization_code",
                code=code,
                code_verifier=verifier,
                timeout=settings.EHR_HTTP_TIMEOUT_S,
            )
        except (OAuthError, requests.RequestException, ValueError) as error:
            raise SmartLaunchError(f"the EHR refused the authorisation code ({error})") from error
    patient_id = str(token.get("patient") or "")
    if not patient_id:
        raise SmartLaunchError(
            "the EHR launched without a patient in context (token response has no 'patient')"
        )
    id_token = token.get("id_token")
    fhir_user = _verified_fhir_user(id_token, system=system, configuration=configuration) if id_token else ""
    return TokenResult(
        patient_id=patient_id,
        fhir_user=fhir_user,
        access_token=str(token.get("access_token") or ""),
        scope=str(token.get("scope") or ""),
    )


def read_patient(*, system: EhrSystem, patient_id: str, access_token: str) -> dict[str, Any] | None:
    """The launch patient's FHIR resource (for the MRN match), or None when it cannot be read."""
    try:
        return _get_json(
            f"{system.fhir_base_url.rstrip('/')}/Patient/{requests.utils.quote(patient_id, safe='')}",
            Authorization=f"Bearer {access_token}",
            Accept="application/fhir+json",
        )
    except SmartLaunchError:
        return None
