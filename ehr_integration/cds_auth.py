"""The CDS Hooks request's JWT, checked as the specification requires (1.0/2.0, "Trusting CDS Clients").

The EHR signs a short-lived JWT with its private key and sends it as ``Authorization: Bearer <jwt>``:

* ``iss`` must be the ``cds_issuer`` of an active ``EhrSystem``; its keys come from the system's JWKS URL
  (fetched and cached by PyJWT's ``PyJWKClient``) or its stored JWK Set. A ``jku`` header is accepted only
  when it is that same configured URL: a JWT never tells us where to fetch the keys that verify it.
* asymmetric signatures only (RS256/RS384/ES256/ES384, as the spec recommends); ``none`` and HMAC refused;
* ``aud`` must be the URL of the service called; ``exp``, ``iat`` and ``jti`` are required, the token may
  live at most ``MAX_LIFETIME_S`` and a ``jti`` is accepted once (``UsedJwtId``): a replay is refused.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import jwt
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from ehr_integration.models import EhrSystem, UsedJwtId

ALGORITHMS = ("RS256", "RS384", "ES256", "ES384")
LEEWAY_S = 60  # clock skew between the EHR and us
MAX_LIFETIME_S = 10 * 60  # the spec asks for tokens of about 5 minutes; anything much longer is refused


class CdsAuthError(Exception):
    """Why a CDS Hooks request is refused (said in the 401 answer and in the audit trail)."""

    def __init__(self, message: str, *, system: EhrSystem | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.system = system


@dataclass(frozen=True)
class VerifiedClient:
    system: EhrSystem
    claims: dict[str, Any]


_jwk_clients: dict[str, jwt.PyJWKClient] = {}


def _jwk_client(url: str) -> jwt.PyJWKClient:
    """One cached client per JWKS URL: keys are fetched once and again when an unknown ``kid`` appears."""
    client = _jwk_clients.get(url)
    if client is None:
        client = jwt.PyJWKClient(
            url, cache_keys=True, lifespan=settings.EHR_JWKS_CACHE_S, timeout=settings.EHR_HTTP_TIMEOUT_S
        )
        _jwk_clients[url] = client
    return client


def _signing_key(system: EhrSystem, token: str, header: dict[str, Any]) -> Any:
    jku = header.get("jku")
    if jku and jku != system.jwks_url:
        raise CdsAuthError("the JWT's jku is not the JWKS URL configured for this EHR", system=system)
    kid = header.get("kid")
    if system.jwks:
        keys = [key for key in jwt.PyJWKSet.from_dict(system.jwks).keys if key.key_id == kid or not kid]
        if len(keys) != 1:
            raise CdsAuthError(f"no single stored key of this EHR has kid {kid!r}", system=system)
        return keys[0].key
    if not system.jwks_url:
        raise CdsAuthError("no public keys are configured for this EHR", system=system)
    try:
        return _jwk_client(system.jwks_url).get_signing_key_from_jwt(token).key
    except jwt.PyJWKClientError as error:
        raise CdsAuthError(
            f"the EHR's key could not be found at its JWKS URL ({error})", system=system
        ) from error


def _bearer(authorization: str) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise CdsAuthError("a CDS Hooks request needs 'Authorization: Bearer <JWT signed by the EHR>'")
    return token.strip()


def verify_request_jwt(*, authorization: str, audience: str) -> VerifiedClient:
    """The EHR system that signed the request's JWT for ``audience``; raises CdsAuthError otherwise."""
    token = _bearer(authorization)
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as error:
        raise CdsAuthError(f"the bearer token is not a JWT ({error})") from error
    if header.get("alg") not in ALGORITHMS:
        raise CdsAuthError(f"JWT algorithm {header.get('alg')!r} refused; use one of {', '.join(ALGORITHMS)}")
    issuer = unverified.get("iss")
    system = (
        EhrSystem.objects.filter(cds_issuer=issuer, active=True).first() if isinstance(issuer, str) else None
    )
    if system is None or not issuer:
        raise CdsAuthError(f"the issuer {issuer!r} is not a configured, active EHR")
    key = _signing_key(system, token, header)
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=list(ALGORITHMS),
            audience=audience,
            issuer=issuer,
            leeway=LEEWAY_S,
            options={"require": ["iss", "aud", "exp", "iat", "jti"]},
        )
    except jwt.ExpiredSignatureError as error:
        raise CdsAuthError("the JWT has expired", system=system) from error
    except jwt.InvalidAudienceError as error:
        raise CdsAuthError(f"the JWT's aud is not this service's URL ({audience})", system=system) from error
    except jwt.PyJWTError as error:
        raise CdsAuthError(f"the JWT was refused: {error}", system=system) from error
    now = timezone.now().timestamp()
    if claims["exp"] - claims["iat"] > MAX_LIFETIME_S or claims["iat"] < now - MAX_LIFETIME_S - LEEWAY_S:
        raise CdsAuthError(f"the JWT lives longer than {MAX_LIFETIME_S // 60} minutes", system=system)
    _spend_jti(issuer=issuer, jti=str(claims["jti"]), exp=float(claims["exp"]), system=system)
    return VerifiedClient(system=system, claims=claims)


def _spend_jti(*, issuer: str, jti: str, exp: float, system: EhrSystem) -> None:
    """Accept ``jti`` once (a unique row, so two workers cannot both accept it); forget expired ones."""
    if not jti or len(jti) > 255:
        raise CdsAuthError(
            "the JWT's jti must be a non-empty string of at most 255 characters", system=system
        )
    expires_at = dt.datetime.fromtimestamp(exp + LEEWAY_S, tz=dt.UTC)
    try:
        with transaction.atomic():
            UsedJwtId.objects.create(issuer=issuer, jti=jti, expires_at=expires_at)
    except IntegrityError as error:
        raise CdsAuthError("this JWT (its jti) was already used: replay refused", system=system) from error
    UsedJwtId.objects.filter(expires_at__lt=timezone.now()).delete()
