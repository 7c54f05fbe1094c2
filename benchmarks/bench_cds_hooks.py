"""CDS Hooks response time: the whole POST /cds-services/<id> request, JWT check included, as the EHR waits.

A scratch PostgreSQL database is created and migrated with the vancomycin model of the library (Goti 2018);
one vancomycin course is recorded through the services (6 doses, 2 levels; its Bayesian update runs in
process and gives real results), the patient is linked to an EHR system with a generated RSA key, and the
RxNorm code of a draft order is mapped to vancomycin. Then ``--calls`` patient-view and as many order-select
requests are sent through Django's test client (DEBUG off, in process: no network), each with a new JWT
signed beforehand (signing is the EHR's cost and is reported apart), after ``--warmup`` calls each.

Prints per hook the median, the 95th percentile and the maximum of the server's time (request in, cards
out: JWT decode and signature check, the replay row, patient and drug matching, the cards, the audit
entry), the number of SQL queries of one call and the cards answered; and the load average, since the CPU
is shared. EHRs give a hook about a second before they show the chart without its cards; the target is
under 100 ms. The scratch database is dropped at the end.

    python benchmarks/bench_cds_hooks.py [--calls 200] [--warmup 10] [--profile] [--postgres postgresql://postgres@127.0.0.1:5432]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import time
import uuid
from typing import Any

import numpy as np
from _scratch_services import admin_execute, django_with_library, services_missing
from bench_patient_page import real_update, scratch_environment

ISSUER = "https://ehr.bench.example"
RXNORM_CODE = "bench-vanco-1"


def signed(key: Any, audience: str) -> str:
    import jwt

    now = int(time.time())
    claims = {"iss": ISSUER, "aud": audience, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "bench"})


def measure(args: argparse.Namespace) -> None:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    clinician = django_with_library(("vancomycin-goti-2018.json",))
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from ehr_integration.models import RXNORM, DrugCode, EhrSystem, PatientIdentifier
    from models_catalog.models import ModelVersion, TargetProtocol

    version = ModelVersion.objects.published().get(model_id="vancomycin-goti-2018")
    protocol = TargetProtocol.objects.filter(drug=version.drug, target__metric="auc24").first()
    update = real_update(clinician, version, protocol, timezone.now())
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.get_algorithm_by_name("RS256").to_jwk(key.public_key()))
    system = EhrSystem.objects.create(
        name="Bench EHR", cds_issuer=ISSUER, jwks={"keys": [{**public, "kid": "bench", "alg": "RS256"}]}
    )
    PatientIdentifier.objects.create(system=system, ehr_patient_id="bench-1", patient=update.course.patient)
    DrugCode.objects.create(system=RXNORM, code=RXNORM_CODE, drug=version.drug)
    context = {"userId": "Practitioner/1", "patientId": "bench-1"}
    draft = {
        "resourceType": "MedicationRequest",
        "id": "d1",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": RXNORM_CODE}]},
    }
    bodies = {
        "mipd-patient-view": {"hook": "patient-view", "hookInstance": "b", "context": context},
        "mipd-order-select": {
            "hook": "order-select",
            "hookInstance": "b",
            "context": {
                **context,
                "selections": ["MedicationRequest/d1"],
                "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": draft}]},
            },
        },
    }
    client = Client()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for service, body in bodies.items():
        path = f"/cds-services/{service}"
        audience = f"http://testserver{path}"
        started = time.perf_counter()
        tokens = [signed(key, audience) for _ in range(args.warmup + args.calls + 1)]
        signing_ms = (time.perf_counter() - started) * 1000 / len(tokens)
        data = json.dumps(body)

        def post(token: str, path: str = path, data: str = data) -> Any:
            return client.post(
                path, data=data, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
            )

        for token in tokens[: args.warmup]:
            post(token)
        times_ms = []
        statuses: dict[int, int] = {}
        profiler = cProfile.Profile() if args.profile else None
        for token in tokens[args.warmup : -1]:
            started = time.perf_counter()
            if profiler is not None:
                profiler.enable()
            response = post(token)
            if profiler is not None:
                profiler.disable()
            times_ms.append((time.perf_counter() - started) * 1000)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        with CaptureQueriesContext(connection) as queries:
            response = post(tokens[-1])
        cards = response.json()["cards"]
        print(
            f"{service}: median {statistics.median(times_ms):.1f} ms, 95th percentile "
            f"{float(np.percentile(times_ms, 95)):.1f} ms, max {max(times_ms):.1f} ms "
            f"over {len(times_ms)} calls; {len(queries.captured_queries)} SQL queries per call; "
            f"{len(cards)} card(s); statuses {statuses}; the EHR's signing {signing_ms:.2f} ms per JWT"
        )
        if cards:
            print(f"  summary: {cards[0]['summary']}")
        if profiler is not None:
            pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument(
        "--profile", action="store_true", help="print the top lines of a cProfile of the calls"
    )
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432",
        help="PostgreSQL server URL without a database name; a scratch database is created and dropped",
    )
    args = parser.parse_args()
    missing = services_missing(args.postgres, None)
    if missing:
        print(f"skipped: {missing}")
        return
    database = f"mipd_bench_cds_{os.getpid()}"
    os.environ.update(scratch_environment(f"{args.postgres}/{database}"))
    admin_execute(args.postgres, f'CREATE DATABASE "{database}"')
    try:
        measure(args)
    finally:
        from django.db import connections

        connections.close_all()
        admin_execute(args.postgres, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


if __name__ == "__main__":
    main()
