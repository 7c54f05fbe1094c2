"""FHIR export: the signed recommendation as a MedicationRequest proposal with its Provenance, the course
summary Bundle, and the round trip of that Bundle through the import's mapping."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from dosing import services as dosing_services
from dosing.models import Recommendation
from fhir_interop import export, plans
from fhir_interop.parsing import read_bundle
from tests.auth import login, next_totp_code
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def approved(
    course, clinician, pharmacist, django_capture_on_commit_callbacks, celery_eager
) -> Recommendation:
    start = timezone.now() - dt.timedelta(hours=20)
    with django_capture_on_commit_callbacks(execute=True):
        dosing_services.dose_record(
            course=course,
            given_at=start,
            amount_mg=1000,
            route="iv_infusion",
            infusion_duration_h=2,
            user=clinician,
        )
        dosing_services.level_record(
            course=course, sampled_at=start + dt.timedelta(hours=11.5), value=9.0, unit="mg/L", user=clinician
        )
    pending = Recommendation.objects.get(course=course, status=Recommendation.Status.PENDING_REVIEW)
    return dosing_services.recommendation_review(
        recommendation=pending,
        user=pharmacist,
        decision="approve",
        password=PASSWORD,
        otp_code=next_totp_code(pharmacist),
        # the pharmacist has read the red warnings (the test's levels need not reach the library's target)
        acknowledged_alerts=[alert["code"] for alert in pending.alerts],
    )


def test_an_approved_recommendation_is_a_signed_proposal(approved) -> None:
    request = export.medication_request(approved)
    assert request["intent"] == "proposal"
    assert request["subject"]["reference"] == f"Patient/{approved.course.patient.public_id}"
    dose = request["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]
    assert dose == {
        "value": approved.final_regimen["dose_mg"],
        "unit": "mg",
        "system": "http://unitsofmeasure.org",
        "code": "mg",
    }
    assert (
        request["dosageInstruction"][0]["timing"]["repeat"]["period"] == approved.final_regimen["interval_h"]
    )
    assert request["medicationCodeableConcept"]["coding"][0]["code"] == "11124"  # RxNorm vancomycin
    provenance = export.provenance(approved)
    assert provenance["target"] == [{"reference": f"MedicationRequest/{approved.public_id}"}]
    signature = provenance["signature"][0]
    assert base64.b64decode(signature["data"]).decode() == approved.signature.content
    assert signature["who"]["display"] == approved.signature.printed_name
    assert json.loads(base64.b64decode(signature["data"]))  # the signed canonical JSON, intact


def test_an_unsigned_recommendation_is_not_exported(approved) -> None:
    Recommendation.objects.filter(pk=approved.pk).update(status=Recommendation.Status.PENDING_REVIEW)
    approved.refresh_from_db()
    with pytest.raises(ValidationError, match="only a signed approval"):
        export.medication_request(approved)


def test_the_course_bundle_round_trips_through_the_import_mapping(approved) -> None:
    course = approved.course
    bundle = export.course_bundle(course)
    _, entries = read_bundle(json.dumps(bundle))
    # every resource is valid and mapped, except the Provenance: an export-only resource, reported as such
    assert [e.label for e in entries if e.problem] == [f"Provenance/{approved.signature.public_id}"]
    kinds = [entry.resource_type for entry in entries]
    assert kinds.count("MedicationRequest") == 1
    read = [
        plans.plan_for(e.resource_type, e.raw)
        for e in entries
        if e.resource_type != "Patient" and e.resource_type in ("Observation", "MedicationAdministration")
    ]
    dose = next(p for p in read if isinstance(p, plans.DosePlan))
    recorded = course.doses.get()
    assert (dose.drug, dose.amount_mg, dose.route) == ("vancomycin", recorded.amount_mg, recorded.route)
    assert dose.infusion_duration_h == pytest.approx(recorded.infusion_duration_h)
    assert dose.given_at == recorded.given_at
    level = next(p for p in read if isinstance(p, plans.LevelPlan))
    assert (level.value, level.unit, level.sampled_at) == (9.0, "mg/L", course.levels.get().sampled_at)
    weights = sorted(p.value for p in read if isinstance(p, plans.MeasurementPlan) and p.kind == "weight")
    assert weights == [70.0]


def test_the_export_endpoints_answer_fhir_json(client, approved, pharmacist) -> None:
    login(client, pharmacist)
    answer = client.get(f"/api/v1/recommendations/{approved.public_id}/fhir/")
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("application/fhir+json")
    body = answer.json()
    kinds = [e["resource"]["resourceType"] for e in body["entry"]]
    assert kinds == ["MedicationRequest", "Provenance", "DiagnosticReport"]
    attachment = body["entry"][2]["resource"]["presentedForm"][0]
    assert attachment["contentType"] == "application/pdf"
    assert base64.b64decode(attachment["data"]).startswith(b"%PDF-")
    course = client.get(f"/api/v1/courses/{approved.course.public_id}/fhir/")
    assert course.status_code == 200 and course.json()["type"] == "collection"
