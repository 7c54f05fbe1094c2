"""FHIR R4 export: a signed recommendation as a MedicationRequest (intent "proposal") with the Provenance that
carries the pharmacist's signature, and a course summary Bundle. Every resource is validated with the R4B
models before it leaves (fhir.resources), so a malformed export fails here, not in the hospital's record.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from fhir.resources.R4B import get_fhir_model_class

from dosing.models import DoseAdministration, DrugLevel, Recommendation, TherapyCourse
from fhir_interop import mapping
from patients.models import CovariateMeasurement, Patient

MRN_SYSTEM_FALLBACK = "urn:mipd:mrn"
DIAGNOSTIC_SERVICE = "http://terminology.hl7.org/CodeSystem/v2-0074"
PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
SIGNATURE_AUTHOR = {
    "system": "urn:iso-astm:E1762-95:2013",
    "code": "1.2.840.10065.1.12.1.1",
    "display": "Author's Signature",
}
SIGNATURE_APPROVAL = {
    "system": "urn:iso-astm:E1762-95:2013",
    "code": "1.2.840.10065.1.12.1.5",
    "display": "Verification Signature",
}
_COVARIATE_LOINC = {
    "weight": ("29463-7", "Body weight", "kg"),
    "height": ("8302-2", "Body height", "cm"),
    "serum_creatinine": ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL"),
}
_LEVEL_LOINC = {"vancomycin": "20578-1", "tacrolimus": "11253-2"}  # no timing kept: the "random" code
_ROUTE_SNOMED = {"iv_infusion": "47625008", "iv_bolus": "47625008", "oral": "26643006"}


def _instant(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _validated(resource: dict[str, Any]) -> dict[str, Any]:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    return resource


def _medication(drug_name: str, display: str) -> dict[str, Any]:
    concept: dict[str, Any] = {"text": display}
    if drug_name in mapping.DRUG_RXNORM:
        concept["coding"] = [
            {"system": mapping.RXNORM, "code": mapping.DRUG_RXNORM[drug_name], "display": display}
        ]
    return concept


def patient_resource(patient: Patient) -> dict[str, Any]:
    return _validated(
        {
            "resourceType": "Patient",
            "id": str(patient.public_id),
            "identifier": [
                {
                    "type": {
                        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]
                    },
                    "system": settings.FHIR_MRN_SYSTEM or MRN_SYSTEM_FALLBACK,
                    "value": patient.mrn,
                }
            ],
            "name": [{"family": patient.family_name, "given": patient.given_name.split()}],
            "gender": patient.sex,
            "birthDate": patient.birth_date.isoformat(),
        }
    )


def medication_request(recommendation: Recommendation) -> dict[str, Any]:
    """The approved (or modified) regimen as a proposal to the prescriber; refused for any other status."""
    if recommendation.status not in (Recommendation.Status.APPROVED, Recommendation.Status.MODIFIED):
        raise ValidationError(f"only a signed approval is exported, this one is {recommendation.status}")
    course = recommendation.course
    regimen = recommendation.final_regimen or recommendation.regimen
    repeat: dict[str, Any] = {"frequency": 1, "period": float(regimen["interval_h"]), "periodUnit": "h"}
    if regimen.get("duration_h"):
        repeat.update(duration=float(regimen["duration_h"]), durationUnit="h")
    dosage: dict[str, Any] = {
        "text": _regimen_text(regimen),
        "timing": {"repeat": repeat},
        "doseAndRate": [
            {
                "doseQuantity": {
                    "value": float(regimen["dose_mg"]),
                    "unit": "mg",
                    "system": mapping.UCUM,
                    "code": "mg",
                }
            }
        ],
    }
    route = regimen.get("route") or ("iv_infusion" if regimen.get("duration_h") else "")
    if route in _ROUTE_SNOMED:
        dosage["route"] = {"coding": [{"system": mapping.SNOMED, "code": _ROUTE_SNOMED[route]}]}
    if regimen.get("start"):
        repeat["boundsPeriod"] = {"start": str(regimen["start"])}
    return _validated(
        {
            "resourceType": "MedicationRequest",
            "id": str(recommendation.public_id),
            "status": "active",
            "intent": "proposal",
            "medicationCodeableConcept": _medication(course.drug.name, course.drug.display_name),
            "subject": {"reference": f"Patient/{course.patient.public_id}"},
            "authoredOn": _instant(recommendation.reviewed_at or recommendation.created_at),
            "reasonCode": [{"text": course.indication}],
            "note": [
                {
                    "text": " ".join(
                        (
                            f"{recommendation.basis}.",
                            recommendation.rationale,
                            recommendation.uncertainty_text,
                        )
                    )
                }
            ],
            "dosageInstruction": [dosage],
        }
    )


def _regimen_text(regimen: dict[str, Any]) -> str:
    from dosing.orders import regimen_label

    return regimen_label(regimen)


def provenance(recommendation: Recommendation) -> dict[str, Any]:
    """Who signed, when, what it means, and the signed content itself (base64 of its canonical JSON)."""
    signature = getattr(recommendation, "signature", None)
    if signature is None:
        raise ValidationError("the recommendation has no signature")
    return _validated(
        {
            "resourceType": "Provenance",
            "id": str(signature.public_id),
            "target": [{"reference": f"MedicationRequest/{recommendation.public_id}"}],
            "recorded": _instant(signature.signed_at),
            "activity": {"text": signature.get_meaning_display()},
            "agent": [
                {
                    "type": {
                        "coding": [
                            {
                                "system": PARTICIPANT_TYPE,
                                "code": "verifier",
                            }
                        ]
                    },
                    "who": {"display": signature.printed_name},
                }
            ],
            "signature": [
                {
                    "type": [SIGNATURE_APPROVAL],
                    "when": _instant(signature.signed_at),
                    "who": {"display": signature.printed_name},
                    "sigFormat": "application/json",
                    "targetFormat": "application/json",
                    "data": base64.b64encode(signature.content.encode()).decode(),
                }
            ],
        }
    )


def diagnostic_report(recommendation: Recommendation, *, generated_by: Any = None) -> dict[str, Any]:
    """The printable recommendation report (dosing.reports) as a DiagnosticReport with the PDF attached."""
    from dosing.reports import recommendation_pdf, report_filename

    pdf = recommendation_pdf(recommendation, generated_by=generated_by)
    course = recommendation.course
    return _validated(
        {
            "resourceType": "DiagnosticReport",
            "id": f"report-{recommendation.public_id}",
            "status": "final",
            "category": [{"coding": [{"system": DIAGNOSTIC_SERVICE, "code": "PHR", "display": "Pharmacy"}]}],
            "code": {"text": f"Model-informed precision dosing report: {course.drug.display_name}"},
            "subject": {"reference": f"Patient/{course.patient.public_id}"},
            "effectiveDateTime": _instant(recommendation.created_at),
            "issued": _instant(recommendation.reviewed_at or recommendation.created_at),
            "conclusion": recommendation.rationale[:1000],
            "presentedForm": [
                {
                    "contentType": "application/pdf",
                    "title": report_filename(recommendation),
                    "data": base64.b64encode(pdf).decode(),
                }
            ],
        }
    )


def _observation(
    patient: Patient, rid: str, code: str, display: str, value: float, unit: str, when: dt.datetime
) -> dict[str, Any]:
    return _validated(
        {
            "resourceType": "Observation",
            "id": rid,
            "status": "final",
            "code": {"coding": [{"system": mapping.LOINC, "code": code, "display": display}]},
            "subject": {"reference": f"Patient/{patient.public_id}"},
            "effectiveDateTime": _instant(when),
            "valueQuantity": {"value": value, "unit": unit, "system": mapping.UCUM, "code": unit},
        }
    )


def collection(resources: list[dict[str, Any]], *, bundle_id: str) -> dict[str, Any]:
    return _validated(
        {
            "resourceType": "Bundle",
            "id": bundle_id,
            "type": "collection",
            "timestamp": _instant(dt.datetime.now(dt.UTC)),
            "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources],
        }
    )


def course_bundle(course: TherapyCourse) -> dict[str, Any]:
    """The course in one collection Bundle: patient, covariates, doses, levels, signed recommendations."""
    patient = course.patient
    resources = [patient_resource(patient)]
    for measurement in CovariateMeasurement.objects.filter(
        patient=patient, entered_in_error=False, kind__in=_COVARIATE_LOINC
    ).order_by("measured_at"):
        code, display, unit = _COVARIATE_LOINC[measurement.kind]
        resources.append(
            _observation(
                patient,
                str(measurement.public_id),
                code,
                display,
                measurement.value,
                unit,
                measurement.measured_at,
            )
        )
    for dose in DoseAdministration.objects.filter(course=course, entered_in_error=False).order_by("given_at"):
        resources.append(_administration(course, dose))
    level_code = _LEVEL_LOINC.get(course.drug.name)
    for level in DrugLevel.objects.filter(course=course, entered_in_error=False, value__isnull=False):
        if level_code:
            resources.append(
                _observation(
                    patient,
                    str(level.public_id),
                    level_code,
                    course.drug.display_name,
                    level.value,
                    level.unit,
                    level.sampled_at,
                )
            )
    for recommendation in course.recommendations.filter(
        status__in=(Recommendation.Status.APPROVED, Recommendation.Status.MODIFIED)
    ):
        resources += [medication_request(recommendation), provenance(recommendation)]
    return collection(resources, bundle_id=str(course.public_id))


def _administration(course: TherapyCourse, dose: DoseAdministration) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationAdministration",
        "id": str(dose.public_id),
        "status": "completed",
        "medicationCodeableConcept": _medication(course.drug.name, course.drug.display_name),
        "subject": {"reference": f"Patient/{course.patient.public_id}"},
        "dosage": {"dose": {"value": dose.amount_mg, "unit": "mg", "system": mapping.UCUM, "code": "mg"}},
    }
    if dose.route in _ROUTE_SNOMED:
        resource["dosage"]["route"] = {
            "coding": [{"system": mapping.SNOMED, "code": _ROUTE_SNOMED[dose.route]}]
        }
    if dose.infusion_duration_h:
        end = dose.given_at + dt.timedelta(hours=dose.infusion_duration_h)
        resource["effectivePeriod"] = {"start": _instant(dose.given_at), "end": _instant(end)}
    else:
        resource["effectiveDateTime"] = _instant(dose.given_at)
    return _validated(resource)
