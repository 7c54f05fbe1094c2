"""SMART App Launch v2 (EHR launch) end to end against the local authorisation server and FHIR endpoint of
smart_server.py: PKCE S256, state, the code exchange, the launch patient's course opened, and who is signed
in (only a linked, non-administrator account)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from audit.models import AuditEntry
from ehr_integration.models import EhrSystem, EhrUserLink, PatientIdentifier
from tests.ehr_integration.smart_server import CLIENT_ID, _s256, smart_ehr

pytestmark = pytest.mark.django_db


@pytest.fixture
def ehr() -> Any:
    with smart_ehr() as state:
        yield state


@pytest.fixture
def system(ehr) -> EhrSystem:
    system = EhrSystem(name="SMART EHR", fhir_base_url=ehr.base, smart_client_id=CLIENT_ID)
    system.full_clean()
    system.save()
    return system


def launch_and_authorise(client: Any, ehr: Any, *, launch: str = "launch-123") -> Any:
    """The browser's part: our launch URL, the EHR's authorize page (which redirects back), our callback."""
    started = client.get("/smart/launch", {"iss": ehr.base, "launch": launch})
    assert started.status_code == 302, started.content
    authorised = requests.get(started["Location"], allow_redirects=False, timeout=5)
    assert authorised.status_code == 302, authorised.text
    back = urlsplit(authorised.headers["Location"])
    assert back.path == "/smart/callback"
    return client.get(f"{back.path}?{back.query}")


def test_the_launch_asks_for_a_code_with_pkce_s256_state_and_the_smart_scopes(client, ehr, system) -> None:
    response = client.get("/smart/launch", {"iss": ehr.base, "launch": "launch-123"})
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{ehr.base}/auth/authorize"
    query = {key: values[0] for key, values in parse_qs(location.query).items()}
    assert query["response_type"] == "code"
    assert query["client_id"] == CLIENT_ID
    assert query["scope"] == "launch openid fhirUser patient/*.read"
    assert query["aud"] == ehr.base and query["launch"] == "launch-123"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["redirect_uri"] == "http://testserver/smart/callback"
    pending = client.session["smart_launches"][query["state"]]
    assert _s256(pending["verifier"]) == query["code_challenge"]  # the verifier stays on the server


def test_a_linked_clinician_lands_on_the_launch_patients_course(
    client, ehr, system, course, clinician
) -> None:
    PatientIdentifier.objects.create(system=system, ehr_patient_id=ehr.patient_id, patient=course.patient)
    EhrUserLink.objects.create(system=system, fhir_user=f"{ehr.base}/{ehr.fhir_user}", user=clinician)
    response = launch_and_authorise(client, ehr)
    assert response.status_code == 302
    assert response["Location"] == f"/courses/{course.public_id}/"
    assert client.session["_auth_user_id"] == str(clinician.pk)
    token_request = ehr.token_requests[-1]
    assert token_request["grant_type"] == "authorization_code" and "client_secret" not in token_request
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert course.patient.family_name.upper() in page.content.decode()
    assert AuditEntry.objects.filter(action=AuditEntry.Action.SIGN_IN, actor_id=clinician.pk).exists()
    launch_entry = AuditEntry.objects.filter(object_type="ehr_integration.smart_launch").latest("seq")
    assert launch_entry.patient_id == course.patient.public_id
    assert launch_entry.reason.endswith("signed in as clinician")


def test_a_patient_without_course_opens_the_patient_page(client, ehr, system, patient, clinician) -> None:
    PatientIdentifier.objects.create(system=system, ehr_patient_id=ehr.patient_id, patient=patient)
    EhrUserLink.objects.create(system=system, fhir_user=ehr.fhir_user, user=clinician)
    response = launch_and_authorise(client, ehr)
    assert response["Location"] == f"/patients/{patient.public_id}/"


def test_a_pharmacist_still_gives_the_second_factor(client, ehr, system, course, pharmacist) -> None:
    PatientIdentifier.objects.create(system=system, ehr_patient_id=ehr.patient_id, patient=course.patient)
    EhrUserLink.objects.create(system=system, fhir_user=ehr.fhir_user, user=pharmacist)
    response = launch_and_authorise(client, ehr)
    page = client.get(response["Location"])
    assert page.status_code == 302
    assert page["Location"].startswith("/accounts/second-factor/")


def test_an_unlinked_ehr_user_is_not_signed_in(client, ehr, system, course) -> None:
    PatientIdentifier.objects.create(system=system, ehr_patient_id=ehr.patient_id, patient=course.patient)
    response = launch_and_authorise(client, ehr)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")
    assert f"/courses/{course.public_id}/" in requests.utils.unquote(response["Location"])
    assert "_auth_user_id" not in client.session
    entry = AuditEntry.objects.filter(object_type="ehr_integration.smart_launch").latest("seq")
    assert "not linked" in entry.reason


def test_an_unlinked_ehr_user_with_a_local_session_carries_on_as_themselves(
    client, ehr, system, course, clinician
) -> None:
    PatientIdentifier.objects.create(system=system, ehr_patient_id=ehr.patient_id, patient=course.patient)
    client.force_login(clinician)
    response = launch_and_authorise(client, ehr)
    assert response["Location"] == f"/courses/{course.public_id}/"
    assert client.session["_auth_user_id"] == str(clinician.pk)


def test_an_administrator_account_is_never_signed_in_by_a_launch(client, ehr, system, course) -> None:
    from tests.factories import UserFactory

    admin = UserFactory(username="it-admin", is_staff=True, is_superuser=True)
    PatientIdentifier.objects.create(system=system, ehr_patient_id=ehr.patient_id, patient=course.patient)
    EhrUserLink.objects.create(system=system, fhir_user=ehr.fhir_user, user=admin)
    response = launch_and_authorise(client, ehr)
    assert response["Location"].startswith("/accounts/login/")
    assert "_auth_user_id" not in client.session


def test_the_patient_is_matched_by_mrn_read_from_the_fhir_endpoint(
    client, ehr, system, course, clinician
) -> None:
    system.mrn_identifier_system = "urn:oid:1.2.3.4"
    system.save()
    ehr.patient_resource = {
        "resourceType": "Patient",
        "id": ehr.patient_id,
        "identifier": [{"system": "urn:oid:1.2.3.4", "value": " mrn-0001 "}],
    }
    EhrUserLink.objects.create(system=system, fhir_user=ehr.fhir_user, user=clinician)
    response = launch_and_authorise(client, ehr)
    assert ehr.patient_reads == 1
    assert response["Location"] == f"/courses/{course.public_id}/"


def test_an_unknown_patient_is_said_so(client, ehr, system, clinician) -> None:
    EhrUserLink.objects.create(system=system, fhir_user=ehr.fhir_user, user=clinician)
    response = launch_and_authorise(client, ehr)
    assert response.status_code == 404
    assert "is not known here" in response.content.decode()


def test_an_unconfigured_iss_is_refused_before_anything_is_fetched(client, ehr, system) -> None:
    response = client.get("/smart/launch", {"iss": "https://evil.example/fhir", "launch": "launch-123"})
    assert response.status_code == 400
    assert "not configured for SMART launches" in response.content.decode()
    assert ehr.authorize_requests == []


def test_a_state_is_used_once_and_a_tampered_verifier_gets_no_token(
    client, ehr, system, course, clinician
) -> None:
    PatientIdentifier.objects.create(system=system, ehr_patient_id=ehr.patient_id, patient=course.patient)
    EhrUserLink.objects.create(system=system, fhir_user=ehr.fhir_user, user=clinician)
    started = client.get("/smart/launch", {"iss": ehr.base, "launch": "launch-123"})
    session = client.session
    state = next(iter(session["smart_launches"]))
    session["smart_launches"][state]["verifier"] = "x" * 64  # not the verifier of the challenge sent
    session.save()
    back = urlsplit(requests.get(started["Location"], allow_redirects=False, timeout=5).headers["Location"])
    refused = client.get(f"{back.path}?{back.query}")
    assert refused.status_code == 400
    assert "refused the authorisation code" in refused.content.decode()
    assert "_auth_user_id" not in client.session
    again = client.get(f"{back.path}?{back.query}")
    assert again.status_code == 400
    assert "not started here or has expired" in again.content.decode()


def test_an_id_token_not_signed_by_the_ehrs_published_key_is_refused(
    client, ehr, system, course, clinician
) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    PatientIdentifier.objects.create(system=system, ehr_patient_id=ehr.patient_id, patient=course.patient)
    EhrUserLink.objects.create(system=system, fhir_user=ehr.fhir_user, user=clinician)
    ehr.id_token_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    response = launch_and_authorise(client, ehr)
    assert response.status_code == 400
    assert "id_token was refused" in response.content.decode()
    assert "_auth_user_id" not in client.session
    refusal = AuditEntry.objects.filter(action=AuditEntry.Action.SIGN_IN_FAILED).latest("seq")
    assert "id_token" in refusal.reason
