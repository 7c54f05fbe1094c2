"""The CDS Hooks services this application offers, and what each answers (cards from ``cards``).

Discovery (``GET /cds-services``) lists them; ``POST /cds-services/<id>`` calls one. The request is the EHR's
(hook, hookInstance, fhirServer, context, prefetch): the patient is matched by ``matching.patient_for``, an
unknown patient or drug gives an empty list of cards (the EHR shows nothing), never an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ehr_integration import cards, matching
from ehr_integration.models import EhrSystem
from patients.models import Patient


@dataclass(frozen=True)
class Service:
    id: str
    hook: str
    title: str
    description: str
    prefetch: dict[str, str]

    def discovery(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "hook": self.hook,
            "title": self.title,
            "description": self.description,
            "prefetch": self.prefetch,
        }


PATIENT_PREFETCH = {"patient": "Patient/{{context.patientId}}"}
SERVICES = {
    service.id: service
    for service in (
        Service(
            id="mipd-patient-view",
            hook="patient-view",
            title="MIPD dosing recommendations",
            description=(
                "The latest model-informed dose recommendation of each open therapy course (vancomycin, "
                "aminoglycosides, tacrolimus, ...): dose, interval, probability of target attainment, its "
                "pharmacist review status and a link to the course."
            ),
            prefetch=PATIENT_PREFETCH,
        ),
        Service(
            id="mipd-order-select",
            hook="order-select",
            title="MIPD dose for a monitored drug",
            description=(
                "When a monitored drug is ordered: the a-priori (no levels yet) or Bayesian dose of the "
                "patient's MIPD course, and when to draw the next level."
            ),
            prefetch=PATIENT_PREFETCH,
        ),
    )
}


@dataclass(frozen=True)
class HookAnswer:
    cards: list[dict[str, Any]]
    patient: Patient | None
    drugs: list[str]  # the library drugs the draft orders named (order-select)


def _prefetched_patient(request: dict[str, Any]) -> dict[str, Any] | None:
    prefetch = request.get("prefetch")
    resource = prefetch.get("patient") if isinstance(prefetch, dict) else None
    return resource if isinstance(resource, dict) else None


def _selected_requests(context: dict[str, Any]) -> list[dict[str, Any]]:
    """The draft MedicationRequests the user selected (all drafts when the EHR names no selection)."""
    bundle = context.get("draftOrders")
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    resources = [
        entry["resource"]
        for entry in (entries if isinstance(entries, list) else [])
        if isinstance(entry, dict)
        and isinstance(entry.get("resource"), dict)
        and entry["resource"].get("resourceType") == "MedicationRequest"
    ]
    selections = context.get("selections")
    if isinstance(selections, list) and selections:
        wanted = {str(selection) for selection in selections}
        resources = [r for r in resources if f"MedicationRequest/{r.get('id')}" in wanted]
    return resources


def answer(
    *,
    service: Service,
    request: dict[str, Any],
    system: EhrSystem,
    url: cards.Url,
    smart_launch_url: str | None,
) -> HookAnswer:
    context = request.get("context") if isinstance(request.get("context"), dict) else {}
    patient = matching.patient_for(
        system=system,
        ehr_patient_id=str(context.get("patientId") or ""),
        resource=_prefetched_patient(request),
    )
    if patient is None:
        return HookAnswer(cards=[], patient=None, drugs=[])
    if service.hook == "patient-view":
        return HookAnswer(
            cards=cards.patient_view_cards(patient, url=url, smart_launch_url=smart_launch_url),
            patient=patient,
            drugs=[],
        )
    found: list[Any] = []
    for medication_request in _selected_requests(context):
        drug = matching.drug_for(matching.medication_concept(medication_request))
        if drug is not None and drug not in found:
            found.append(drug)
    answered = [
        card
        for drug in found
        for card in cards.order_select_cards(patient, drug, url=url, smart_launch_url=smart_launch_url)
    ]
    return HookAnswer(cards=answered, patient=patient, drugs=[drug.name for drug in found])
