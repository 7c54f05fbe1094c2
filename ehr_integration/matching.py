"""The EHR's ids -> ours: its patient to our patient, a draft order's medication to a library drug.

A patient is found by the identifier table first (``PatientIdentifier``: the EHR's FHIR Patient id). When
there is no row and an MRN system is configured (the EHR system's own, else ``FHIR_MRN_SYSTEM``), the
FHIR Patient resource the EHR sent (CDS Hooks prefetch) or that we read (SMART launch) is matched by its
MRN, chosen by the same rule as the FHIR import (``patients.identifiers.fhir_patient_mrn``) and in the same
normal form.
Nothing else is guessed: no names, no birth dates. No match is ``None``.

A medication is matched by its codes (``DrugCode`` rows: RxNorm, local codes; the drug's own ATC code) and,
when no code matches, by its text naming exactly one library drug. Two candidate drugs are no match.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError

from ehr_integration.models import ATC, DrugCode, EhrSystem, PatientIdentifier
from models_catalog.models import Drug
from patients.identifiers import fhir_patient_mrn, normalize_mrn
from patients.models import Patient


def patient_for(
    *, system: EhrSystem, ehr_patient_id: str, resource: dict[str, Any] | None = None
) -> Patient | None:
    """Our patient for the EHR's Patient id (``resource``: its FHIR Patient, for the MRN fallback)."""
    if not ehr_patient_id:
        return None
    row = PatientIdentifier.objects.filter(system=system, ehr_patient_id=ehr_patient_id).select_related(
        "patient"
    )
    found = row.first()
    if found is not None:
        return found.patient
    mrn_system = system.mrn_system()
    if not (mrn_system and isinstance(resource, dict)):
        return None
    if resource.get("resourceType") != "Patient" or str(resource.get("id", "")) != ehr_patient_id:
        return None  # a prefetch of another patient never matches
    try:
        key = normalize_mrn(fhir_patient_mrn(resource, system=mrn_system))
    except ValidationError:
        return None  # no MRN, an unreadable one, or two the system does not settle: no guess
    return Patient.objects.filter(mrn_key=key).first()


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _codings(concept: Any) -> tuple[list[tuple[str, str]], str]:
    if not isinstance(concept, dict):
        return [], ""
    entries = [coding for coding in _list(concept.get("coding")) if isinstance(coding, dict)]
    codings = [(str(c.get("system", "")), str(c.get("code", ""))) for c in entries if c.get("code")]
    texts = [str(concept.get("text") or "")] + [str(c.get("display") or "") for c in entries]
    return codings, " ".join(text for text in texts if text)


def medication_concept(request: dict[str, Any]) -> dict[str, Any] | None:
    """The medication of a MedicationRequest: R4 ``medicationCodeableConcept``, R5 ``medication.concept``,
    or the code of a contained Medication it references."""
    concept = request.get("medicationCodeableConcept")
    if isinstance(concept, dict):
        return concept
    medication = request.get("medication")
    medication = medication if isinstance(medication, dict) else {}
    if isinstance(medication.get("concept"), dict):
        return medication["concept"]
    reference = request.get("medicationReference") or medication.get("reference") or {}
    target = str(reference.get("reference", "")) if isinstance(reference, dict) else ""
    if target.startswith("#"):
        for contained in _list(request.get("contained")):
            if isinstance(contained, dict) and contained.get("id") == target[1:]:
                return contained.get("code") if isinstance(contained.get("code"), dict) else None
    return None


def drug_for(concept: dict[str, Any] | None) -> Drug | None:
    """The library drug a medication concept names, or None (unknown, or more than one candidate)."""
    codings, text = _codings(concept)
    for system, code in codings:
        row = DrugCode.objects.filter(system=system, code=code).select_related("drug").first()
        if row is not None:
            return row.drug
        if system == ATC:
            drug = Drug.objects.filter(atc_code__iexact=code).first()
            if drug is not None:
                return drug
    if not text:
        return None
    lowered = text.casefold()
    named = [
        drug
        for drug in Drug.objects.all()
        if re.search(rf"(?<![a-z]){re.escape(drug.name.casefold())}(?![a-z])", lowered)
    ]
    return named[0] if len(named) == 1 else None
