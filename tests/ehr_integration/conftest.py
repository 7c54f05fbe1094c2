"""EHR integration fixtures: the dosing test model and patient, an EHR system with its own signing keys, and a
recommendation on the course (from a real Bayesian update run in process)."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.dosing.conftest import clinician, course, patient, pharmacist, published_version  # noqa: F401

CDS_ISSUER = "https://ehr.hospital.example/cds-client"


def public_jwk(private_key: Any, *, kid: str, alg: str) -> dict[str, Any]:
    algorithm = jwt.get_algorithm_by_name(alg)
    document = json.loads(algorithm.to_jwk(private_key.public_key()))
    return {**document, "kid": kid, "alg": alg, "use": "sig"}


@pytest.fixture(scope="session")
def rsa_key() -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def ec_key() -> Any:
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture
def ehr_system(db: None, rsa_key: Any, ec_key: Any) -> Any:
    from ehr_integration.models import EhrSystem

    system = EhrSystem(
        name="Test EHR",
        cds_issuer=CDS_ISSUER,
        jwks={
            "keys": [
                public_jwk(rsa_key, kid="rsa-1", alg="RS256"),
                public_jwk(ec_key, kid="ec-1", alg="ES384"),
            ]
        },
    )
    system.full_clean()
    system.save()
    return system


def signed_jwt(
    key: Any,
    *,
    audience: str,
    kid: str = "rsa-1",
    alg: str = "RS256",
    issuer: str = CDS_ISSUER,
    jti: str | None = None,
    issued_at: float | None = None,
    lifetime_s: float = 300,
    headers: dict[str, Any] | None = None,
) -> str:
    now = time.time() if issued_at is None else issued_at
    claims = {
        "iss": issuer,
        "sub": "ehr-client-id",
        "aud": audience,
        "iat": int(now),
        "exp": int(now + lifetime_s),
        "jti": jti or str(uuid.uuid4()),
    }
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid, **(headers or {})})


@pytest.fixture
def recommendation(
    course: Any,  # noqa: F811 (the dosing fixture)
    clinician: Any,  # noqa: F811
    django_capture_on_commit_callbacks: Any,
    celery_eager: None,
) -> Any:
    """A pending Bayesian recommendation: one 1000 mg infusion 20 h ago and a level 11.5 h after it."""
    from django.utils import timezone

    from dosing import services
    from dosing.models import Recommendation

    start = timezone.now() - dt.timedelta(hours=20)
    with django_capture_on_commit_callbacks(execute=True):
        services.dose_record(
            course=course,
            given_at=start,
            amount_mg=1000,
            route="iv_infusion",
            infusion_duration_h=1,
            user=clinician,
        )
        services.level_record(
            course=course, sampled_at=start + dt.timedelta(hours=11.5), value=7.0, unit="mg/L", user=clinician
        )
    return Recommendation.objects.get(course=course, status=Recommendation.Status.PENDING_REVIEW)
