"""Pulling one patient's record from the hospital's FHIR R4 server (FHIR_SERVER_BASE_URL): a search for the
Patient by MRN, then the patient's Observations, MedicationAdministrations and MedicationRequests, each
search followed page by page up to a bound. The result is one collection Bundle for :func:`bundle_import`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from django.conf import settings

SEARCHED = ("Observation", "MedicationAdministration", "MedicationRequest")
MAX_PAGES = 20  # per search: a bound, so that a server that pages forever cannot hold a worker


class FhirServerError(RuntimeError):
    """The server could not be reached, refused the request or answered something that is not FHIR."""


def configured() -> bool:
    return bool(settings.FHIR_SERVER_BASE_URL)


def _get(url: str) -> dict[str, Any]:
    base = settings.FHIR_SERVER_BASE_URL
    if not url.startswith(base + "/"):  # a "next" link must stay on the configured server
        raise FhirServerError(f"the server sent a link outside {base}: {url}")
    headers = {"Accept": "application/fhir+json"}
    if settings.FHIR_SERVER_TOKEN:
        headers["Authorization"] = f"Bearer {settings.FHIR_SERVER_TOKEN}"
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=settings.FHIR_SERVER_TIMEOUT_S) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        raise FhirServerError(f"the FHIR server answered {exc.code} to {url}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise FhirServerError(f"the FHIR server at {base} cannot be reached: {exc}") from None
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise FhirServerError(f"the FHIR server's answer to {url} is not JSON") from None
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        raise FhirServerError(f"the FHIR server's answer to {url} is not a Bundle")
    return data


def _search(path: str, params: dict[str, str]) -> list[dict[str, Any]]:
    url = f"{settings.FHIR_SERVER_BASE_URL}/{path}?{urllib.parse.urlencode(params)}"
    entries: list[dict[str, Any]] = []
    for _ in range(MAX_PAGES):
        page = _get(url)
        entries += [
            e for e in page.get("entry", []) if (e.get("search") or {}).get("mode", "match") == "match"
        ]
        following = [link.get("url") for link in page.get("link", []) if link.get("relation") == "next"]
        if not following:
            return entries
        url = str(following[0])
    raise FhirServerError(f"the search {path} has more than {MAX_PAGES} pages: ask IT to narrow it")


def patient_bundle(*, mrn: str) -> dict[str, Any]:
    """One collection Bundle with the patient found by MRN and the resources about them."""
    if not configured():
        raise FhirServerError("no FHIR server is configured (FHIR_SERVER_BASE_URL)")
    system = settings.FHIR_MRN_SYSTEM
    found = _search("Patient", {"identifier": f"{system}|{mrn}" if system else mrn})
    patients = [e for e in found if (e.get("resource") or {}).get("resourceType") == "Patient"]
    if len(patients) != 1:
        raise FhirServerError(f"the FHIR server has {len(patients)} patients with MRN {mrn}, not one")
    patient_id = str(patients[0]["resource"].get("id") or "")
    entries = list(patients)
    for resource_type in SEARCHED:
        entries += _search(resource_type, {"patient": patient_id, "_count": "100"})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}
