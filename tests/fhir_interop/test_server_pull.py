"""Pulling a patient from a FHIR server: a small FHIR R4 search server that the test starts on 127.0.0.1
answers Patient?identifier= and the per-patient searches, in pages; the import runs on what it returns."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.utils import timezone

from dosing.models import DoseAdministration, DrugLevel
from fhir_interop import client, services
from fhir_interop.models import ImportedResource
from patients.models import CovariateMeasurement
from tests.auth import login
from tests.fhir_interop.test_import import golden

pytestmark = pytest.mark.django_db


class FhirServer:
    """Serves the resources of one golden bundle as FHIR searches, two entries a page."""

    def __init__(self, resources: list[dict[str, Any]], *, token: str = "") -> None:
        self.resources, self.token, self.requests = resources, token, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append((self.path, self.headers.get("Authorization", "")))
                if outer.token and self.headers.get("Authorization") != f"Bearer {outer.token}":
                    self._answer(401, {"resourceType": "OperationOutcome"})
                    return
                url = urllib.parse.urlparse(self.path)
                params = dict(urllib.parse.parse_qsl(url.query))
                kind = url.path.rsplit("/", 1)[-1]
                found = [r for r in outer.resources if r["resourceType"] == kind and outer.matches(r, params)]
                page = int(params.get("_page", "0"))
                bundle: dict[str, Any] = {
                    "resourceType": "Bundle",
                    "type": "searchset",
                    "total": len(found),
                    "entry": [
                        {
                            "fullUrl": f"{outer.base}/{kind}/{r['id']}",
                            "resource": r,
                            "search": {"mode": "match"},
                        }
                        for r in found[2 * page : 2 * page + 2]
                    ],
                }
                if 2 * page + 2 < len(found):
                    following = urllib.parse.urlencode({**params, "_page": page + 1})
                    bundle["link"] = [{"relation": "next", "url": f"{outer.base}/{kind}?{following}"}]
                self._answer(200, bundle)

            def _answer(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/fhir"

    @staticmethod
    def matches(resource: dict[str, Any], params: dict[str, str]) -> bool:
        if "identifier" in params:
            system, _, value = params["identifier"].rpartition("|")
            return any(
                i.get("value") == value and (not system or i.get("system") == system)
                for i in resource.get("identifier", [])
            )
        if "patient" in params:
            return (resource.get("subject") or {}).get("reference") == f"Patient/{params['patient']}"
        return True


@pytest.fixture
def fhir_server(settings) -> Iterator[FhirServer]:
    document = json.loads(golden("bundle_icu_vancomycin.json", timezone.now().replace(microsecond=0)))
    server = FhirServer([e["resource"] for e in document["entry"]], token="s3cret")
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    settings.FHIR_SERVER_BASE_URL = server.base
    settings.FHIR_SERVER_TOKEN = "s3cret"
    settings.FHIR_SERVER_TIMEOUT_S = 5.0
    settings.FHIR_MRN_SYSTEM = "urn:oid:1.2.36.146.595.217.0.1"
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()
    thread.join(timeout=5)


def test_a_patient_is_pulled_page_by_page_and_imported(course, clinician, fhir_server, celery_eager) -> None:
    run = services.patient_pull(patient=course.patient, user=clinician)
    assert run.channel == "server" and run.source == fhir_server.base
    assert DoseAdministration.objects.filter(course=course).count() == 2
    assert DrugLevel.objects.filter(course=course).count() == 1
    assert CovariateMeasurement.objects.filter(patient=course.patient, unit_as_entered="lb").count() == 1
    # the Patient search named the MRN system, the token went with every request, and pages were followed
    assert fhir_server.requests[0][0] == "/fhir/Patient?" + urllib.parse.urlencode(
        {"identifier": "urn:oid:1.2.36.146.595.217.0.1|MRN-0001"}
    )
    assert {auth for _, auth in fhir_server.requests} == {"Bearer s3cret"}
    assert any("_page=1" in path for path, _ in fhir_server.requests)
    # the other patient's observation is not searched for: the server returns only this patient's resources
    assert "Observation/other-patient" not in {line["resource"] for line in run.report}
    again = services.patient_pull(patient=course.patient, user=clinician)
    assert again.counts.get("imported", 0) == 0
    assert ImportedResource.objects.filter(source=fhir_server.base).count() == run.counts["imported"]


def test_an_unreachable_server_is_said_so(course, clinician, settings) -> None:
    import socket

    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.FHIR_SERVER_BASE_URL = f"http://127.0.0.1:{port}/fhir"
    settings.FHIR_SERVER_TIMEOUT_S = 2.0
    with pytest.raises(client.FhirServerError, match="cannot be reached"):
        services.patient_pull(patient=course.patient, user=clinician)


def test_a_wrong_token_answers_502_and_no_server_404(
    client, course, clinician, fhir_server, settings
) -> None:
    login(client, clinician)
    settings.FHIR_SERVER_TOKEN = "wrong"
    answer = client.post(f"/api/v1/patients/{course.patient.public_id}/fhir/pull/")
    assert answer.status_code == 502 and "answered 401" in answer.json()["detail"]
    settings.FHIR_SERVER_BASE_URL = ""
    answer = client.post(f"/api/v1/patients/{course.patient.public_id}/fhir/pull/")
    assert answer.status_code == 404 and "no FHIR server is configured" in answer.json()["detail"]


def test_a_bundle_is_imported_through_the_api(client, course, clinician, celery_eager) -> None:
    login(client, clinician)
    document = golden("bundle_icu_vancomycin.json", timezone.now().replace(microsecond=0))
    answer = client.post("/api/v1/fhir/import/", document, content_type="application/json")
    assert answer.status_code == 201, answer.content
    assert answer.json()["counts"] == {"unchanged": 1, "imported": 8, "not_imported": 8}
    refused = client.post(
        "/api/v1/fhir/import/", {"resourceType": "Patient"}, content_type="application/json"
    )
    assert refused.status_code == 400 and "Bundle" in json.dumps(refused.json())
