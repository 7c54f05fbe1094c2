"""Whatever an authenticated EHR sends, a CDS Hooks service answers 200 with cards or a 4xx that says why,
never a 5xx; and the CORS preflight of a browser-based CDS client is answered."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ehr_integration.models import PatientIdentifier
from tests.ehr_integration.conftest import signed_jwt

pytestmark = pytest.mark.django_db

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
medication_requests = st.fixed_dictionaries(
    {"resourceType": st.just("MedicationRequest")},
    optional={
        "id": json_values,
        "medicationCodeableConcept": json_values
        | st.fixed_dictionaries(
            {"coding": st.lists(st.dictionaries(st.sampled_from(["system", "code"]), json_values))}
        ),
        "medication": json_values,
        "medicationReference": json_values,
        "contained": json_values,
    },
)
contexts = st.fixed_dictionaries(
    {},
    optional={
        "patientId": st.sampled_from(["ehr-pat-1", ""]) | json_values,
        "userId": json_values,
        "selections": json_values | st.lists(st.sampled_from(["MedicationRequest/a", "x"])),
        "draftOrders": json_values
        | st.fixed_dictionaries(
            {
                "entry": st.lists(
                    st.fixed_dictionaries({"resource": medication_requests}) | json_values, max_size=3
                )
            }
        ),
    },
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from(["/cds-services/mipd-patient-view", "/cds-services/mipd-order-select"]),
    context=contexts,
    prefetch=json_values,
    hook=st.sampled_from(["patient-view", "order-select", "other"]) | json_values,
)
def test_no_body_gives_a_server_error(
    client, ehr_system, rsa_key, course, path, context, prefetch, hook
) -> None:
    PatientIdentifier.objects.get_or_create(
        system=ehr_system, ehr_patient_id="ehr-pat-1", patient=course.patient
    )
    body: Any = {"hook": hook, "hookInstance": "x", "context": context, "prefetch": prefetch}
    token = signed_jwt(rsa_key, audience=f"http://testserver{path}")
    response = client.post(
        path, data=json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code in (200, 400), response.content
    if response.status_code == 200:
        assert isinstance(response.json()["cards"], list)


@pytest.mark.parametrize(
    "medication_request",
    [
        {"medicationCodeableConcept": {"coding": 5, "text": 3}},
        {"medicationCodeableConcept": [1], "medication": [1, 2]},
        {"medication": {"concept": "x", "reference": [1]}, "contained": 7},
        {"medicationReference": {"reference": "#m"}, "contained": [1, {"id": "m", "code": []}]},
    ],
)
def test_malformed_medications_match_nothing(client, ehr_system, rsa_key, course, medication_request) -> None:
    PatientIdentifier.objects.create(system=ehr_system, ehr_patient_id="ehr-pat-1", patient=course.patient)
    ehr_system.mrn_identifier_system = "urn:mrn"
    ehr_system.save()
    path = "/cds-services/mipd-order-select"
    body = {
        "hook": "order-select",
        "context": {
            "patientId": "ehr-pat-1",
            "draftOrders": {
                "entry": [{"resource": {"resourceType": "MedicationRequest", **medication_request}}]
            },
        },
        "prefetch": {"patient": {"resourceType": "Patient", "id": "ehr-pat-1", "identifier": 9}},
    }
    token = signed_jwt(rsa_key, audience=f"http://testserver{path}")
    response = client.post(
        path, data=json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 200
    assert response.json() == {"cards": []}


def test_the_cors_preflight_is_answered(client) -> None:
    response = client.options(
        "/cds-services/mipd-patient-view",
        HTTP_ORIGIN="https://sandbox.cds-hooks.org",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in response["Access-Control-Allow-Headers"]
    assert client.get("/cds-services")["Access-Control-Allow-Origin"] == "*"


def test_a_get_on_a_service_is_refused(client) -> None:
    assert client.get("/cds-services/mipd-patient-view").status_code == 405
