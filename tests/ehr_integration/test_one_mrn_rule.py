"""One rule for which identifier of a FHIR Patient is our MRN (``patients.identifiers.fhir_patient_mrn``):
the same Patient resource resolves to the same local patient through the FHIR import, the CDS Hooks prefetch
and the SMART launch, and of two MRN-like identifiers the configured system's one wins everywhere."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from audit.models import AuditEntry
from ehr_integration.models import EhrUserLink
from fhir_interop import services as fhir_services
from tests.ehr_integration.conftest import signed_jwt
from tests.ehr_integration.smart_server import CLIENT_ID, smart_ehr
from tests.ehr_integration.test_cds_cards import PATIENT_VIEW, patient_view
from tests.ehr_integration.test_smart_launch import launch_and_authorise
from tests.factories import consenting_icu_patient

pytestmark = pytest.mark.django_db
HOSPITAL = "urn:oid:1.2.3.4"  # our MRNs
REFERRING = "urn:oid:9.9.9"  # another hospital's numbers, also typed MR


def mr(system: str, value: str) -> dict[str, Any]:
    coding = [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]
    return {"type": {"coding": coding}, "system": system, "value": value}


@pytest.fixture
def ehr() -> Any:
    with smart_ehr() as state:
        yield state


@pytest.fixture
def both_ways(ehr_system: Any, ehr: Any) -> Any:
    """One EHR that calls our CDS Hooks services and launches the app, with no MRN system of its own."""
    ehr_system.fhir_base_url = ehr.base
    ehr_system.smart_client_id = CLIENT_ID
    ehr_system.full_clean()
    ehr_system.save()
    return ehr_system


@pytest.fixture
def decoy(clinician: Any) -> Any:
    """The patient whose MRN equals the referring hospital's number: picking that identifier finds them."""
    return consenting_icu_patient(mrn="OTHER-7", user=clinician)


def patient_resource(patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": patient_id,
        "identifier": [mr(REFERRING, "other-7"), mr(HOSPITAL, " mrn-0001 ")],
        "name": [{"family": "Martin", "given": ["Alice"]}],
        "gender": "female",
        "birthDate": "1960-01-01",
    }


def imported(resource: dict[str, Any], user: Any) -> Any:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": resource}]}
    return fhir_services.bundle_import(document=bundle, user=user, channel="api").patient


def cds_patient(client: Any, rsa_key: Any, resource: dict[str, Any]) -> Any:
    body = patient_view(resource["id"], prefetch={"patient": resource})
    token = signed_jwt(rsa_key, audience=f"http://testserver{PATIENT_VIEW}")
    response = client.post(
        PATIENT_VIEW,
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 200, response.content
    return AuditEntry.objects.filter(object_type="ehr_integration.cds_call").latest("seq").patient_id


def smart_patient(client: Any, ehr: Any, resource: dict[str, Any]) -> Any:
    ehr.patient_resource = resource
    launch_and_authorise(client, ehr)
    assert ehr.patient_reads == 1
    return AuditEntry.objects.filter(object_type="ehr_integration.smart_launch").latest("seq").patient_id


def test_the_same_patient_resource_is_the_same_patient_in_import_cds_hooks_and_smart(
    client, settings, both_ways, ehr, rsa_key, patient, decoy, clinician
) -> None:
    settings.FHIR_MRN_SYSTEM = HOSPITAL  # one setting for every channel
    EhrUserLink.objects.create(system=both_ways, fhir_user=ehr.fhir_user, user=clinician)
    resource = patient_resource(ehr.patient_id)
    assert imported(resource, clinician) == patient
    assert cds_patient(client, rsa_key, resource) == patient.public_id
    assert smart_patient(client, ehr, resource) == patient.public_id


def test_the_ehr_systems_own_mrn_system_decides_for_that_ehr(
    client, settings, ehr_system, rsa_key, patient, decoy
) -> None:
    settings.FHIR_MRN_SYSTEM = REFERRING  # the hospital-wide system, overridden for this EHR
    ehr_system.mrn_identifier_system = HOSPITAL
    ehr_system.save()
    assert cds_patient(client, rsa_key, patient_resource("ehr-9")) == patient.public_id


def test_two_mr_identifiers_without_the_configured_system_are_no_guess(
    client, settings, both_ways, ehr, rsa_key, patient, decoy, clinician
) -> None:
    settings.FHIR_MRN_SYSTEM = "urn:oid:5.5.5"  # configured, but this Patient carries neither MR under it
    EhrUserLink.objects.create(system=both_ways, fhir_user=ehr.fhir_user, user=clinician)
    resource = patient_resource(ehr.patient_id)
    with pytest.raises(ValidationError, match="2 identifiers of type MR"):
        imported(resource, clinician)
    assert cds_patient(client, rsa_key, resource) is None
    assert smart_patient(client, ehr, resource) is None


def test_without_any_mrn_system_the_ehr_matches_by_its_id_table_only(
    client, settings, ehr_system, rsa_key, patient, clinician
) -> None:
    settings.FHIR_MRN_SYSTEM = ""
    resource = {**patient_resource("ehr-9"), "identifier": [mr(HOSPITAL, "MRN-0001")]}
    assert imported(resource, clinician) == patient  # an import is a person's act: type MR is enough
    assert cds_patient(client, rsa_key, resource) is None  # unattended: only with a configured MRN system
