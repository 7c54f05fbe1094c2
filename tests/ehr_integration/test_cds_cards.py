"""CDS Hooks cards: patient-view shows each open course's latest recommendation with its review status;
order-select on a monitored drug shows the course's dose and the next level; unknown patients and drugs
give no cards."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ehr_integration.models import ATC, RXNORM, DrugCode, PatientIdentifier
from tests.ehr_integration.conftest import signed_jwt

pytestmark = pytest.mark.django_db
PATIENT_VIEW = "/cds-services/mipd-patient-view"
ORDER_SELECT = "/cds-services/mipd-order-select"


def call(client: Any, key: Any, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    token = signed_jwt(key, audience=f"http://testserver{path}")
    response = client.post(
        path, data=json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 200, response.content
    return response.json()["cards"]


def patient_view(patient_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "hook": "patient-view",
        "hookInstance": "7c1a3b5e-0000-4000-8000-000000000001",
        "context": {"userId": "Practitioner/1", "patientId": patient_id},
        **extra,
    }


def order_select(patient_id: str, medication: dict[str, Any]) -> dict[str, Any]:
    return {
        "hook": "order-select",
        "hookInstance": "7c1a3b5e-0000-4000-8000-000000000002",
        "context": {
            "userId": "Practitioner/1",
            "patientId": patient_id,
            "selections": ["MedicationRequest/draft-1"],
            "draftOrders": {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [
                    {
                        "resource": {
                            "resourceType": "MedicationRequest",
                            "id": "draft-1",
                            "status": "draft",
                            "intent": "order",
                            "subject": {"reference": f"Patient/{patient_id}"},
                            **medication,
                        }
                    },
                    {
                        "resource": {
                            "resourceType": "MedicationRequest",
                            "id": "draft-2",
                            "status": "draft",
                            "intent": "order",
                            "medicationCodeableConcept": {"text": "paracetamol 1 g"},
                        }
                    },
                ],
            },
        },
    }


@pytest.fixture
def linked(ehr_system, patient) -> Any:
    return PatientIdentifier.objects.create(system=ehr_system, ehr_patient_id="ehr-pat-1", patient=patient)


def test_patient_view_shows_the_pending_recommendation_as_unreviewed(
    client, ehr_system, rsa_key, linked, recommendation
) -> None:
    cards = call(client, rsa_key, PATIENT_VIEW, patient_view("ehr-pat-1"))
    assert len(cards) == 1
    card = cards[0]
    regimen = recommendation.regimen
    assert len(card["summary"]) <= 140
    assert f"q{regimen['interval_h']:g}h {regimen['dose_mg']:.0f} mg" in card["summary"]
    assert f"PTA {recommendation.probability_of_target * 100:.0f} %" in card["summary"]
    assert "awaiting pharmacist review" in card["summary"]
    assert card["indicator"] == "warning"
    assert "not yet checked by a pharmacist" in card["detail"]
    assert "Bayesian" in card["detail"]
    assert "**Next level**: Draw" in card["detail"]
    assert card["source"]["label"].startswith("MIPD")
    course_url = f"http://testserver/courses/{recommendation.course.public_id}/"
    assert card["links"] == [{"label": "Open the course in MIPD", "url": course_url, "type": "absolute"}]


def test_an_approved_recommendation_is_shown_with_who_approved_it(
    client, ehr_system, rsa_key, linked, recommendation, pharmacist
) -> None:
    from dosing import services
    from tests.auth import next_totp_code
    from tests.factories import PASSWORD

    services.recommendation_review(
        recommendation=recommendation,
        user=pharmacist,
        decision="approve",
        password=PASSWORD,
        otp_code=next_totp_code(pharmacist),
    )
    card = call(client, rsa_key, PATIENT_VIEW, patient_view("ehr-pat-1"))[0]
    assert "(Bayesian, approved)" in card["summary"]
    assert card["indicator"] == "info"
    assert "**Review**: Approved by" in card["detail"]
    assert "not yet checked" not in card["detail"]


def test_a_course_without_recommendation_says_so(client, ehr_system, rsa_key, linked, course) -> None:
    cards = call(client, rsa_key, PATIENT_VIEW, patient_view("ehr-pat-1"))
    assert len(cards) == 1
    assert "no recommendation yet" in cards[0]["summary"]


def test_an_unknown_patient_gets_no_cards(client, ehr_system, rsa_key, linked, recommendation) -> None:
    assert call(client, rsa_key, PATIENT_VIEW, patient_view("someone-else")) == []


def test_the_prefetched_patients_mrn_matches_when_the_ehr_names_its_mrn_system(
    client, ehr_system, rsa_key, recommendation
) -> None:
    prefetch = {
        "patient": {
            "resourceType": "Patient",
            "id": "ehr-77",
            "identifier": [{"system": "urn:oid:1.2.3.4", "value": "mrn-0001"}],
        }
    }
    assert (
        call(client, rsa_key, PATIENT_VIEW, patient_view("ehr-77", prefetch=prefetch)) == []
    )  # not configured
    ehr_system.mrn_identifier_system = "urn:oid:1.2.3.4"
    ehr_system.save()
    assert len(call(client, rsa_key, PATIENT_VIEW, patient_view("ehr-77", prefetch=prefetch))) == 1
    other = {"patient": {**prefetch["patient"], "id": "ehr-78"}}
    assert call(client, rsa_key, PATIENT_VIEW, patient_view("ehr-77", prefetch=other)) == []


def test_order_select_by_rxnorm_code_gives_the_courses_dose_and_next_level(
    client, ehr_system, rsa_key, linked, recommendation
) -> None:
    DrugCode.objects.create(system=RXNORM, code="999001", drug=recommendation.course.drug, display="testdrug")
    medication = {"medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "999001"}]}}
    cards = call(client, rsa_key, ORDER_SELECT, order_select("ehr-pat-1", medication))
    assert len(cards) == 1
    assert cards[0]["summary"].startswith("MIPD dose: Testdrug")
    assert (
        "700 mg" in cards[0]["detail"] or f"{recommendation.regimen['dose_mg']:.0f} mg" in cards[0]["detail"]
    )
    assert "**Next level**" in cards[0]["detail"]


def test_order_select_matches_atc_and_text_and_ignores_other_drugs(
    client, ehr_system, rsa_key, linked, recommendation
) -> None:
    drug = recommendation.course.drug
    drug.atc_code = "J01XA99"
    drug.save()
    by_atc = {"medicationCodeableConcept": {"coding": [{"system": ATC, "code": "J01XA99"}]}}
    assert len(call(client, rsa_key, ORDER_SELECT, order_select("ehr-pat-1", by_atc))) == 1
    by_text = {"medicationCodeableConcept": {"text": "TESTDRUG 1 g in 250 mL NaCl 0.9 %"}}
    assert len(call(client, rsa_key, ORDER_SELECT, order_select("ehr-pat-1", by_text))) == 1
    contained = {
        "contained": [{"resourceType": "Medication", "id": "m", "code": {"text": "testdrug injection"}}],
        "medicationReference": {"reference": "#m"},
    }
    assert len(call(client, rsa_key, ORDER_SELECT, order_select("ehr-pat-1", contained))) == 1
    other = {"medicationCodeableConcept": {"text": "amoxicillin 1 g"}}
    assert call(client, rsa_key, ORDER_SELECT, order_select("ehr-pat-1", other)) == []


def test_order_select_without_an_open_course_offers_to_open_one(
    client, ehr_system, rsa_key, linked, published_version
) -> None:
    medication = {"medicationCodeableConcept": {"text": "testdrug 1 g"}}
    cards = call(client, rsa_key, ORDER_SELECT, order_select("ehr-pat-1", medication))
    assert len(cards) == 1
    assert "open a course for an a-priori dose" in cards[0]["summary"]
    assert (
        cards[0]["links"][0]["url"] == f"http://testserver/patients/{linked.patient.public_id}/courses/new/"
    )


def test_a_modified_recommendation_shows_the_signed_regimen_and_its_own_figures(
    client, ehr_system, rsa_key, linked, recommendation, pharmacist
) -> None:
    from dosing import services
    from tests.auth import next_totp_code
    from tests.factories import PASSWORD

    change = {"dose_mg": 1000, "interval_h": 12, "duration_h": 1}
    preview = services.modification_preview(
        recommendation=recommendation, user=pharmacist, final_regimen=change
    )
    reviewed = services.recommendation_review(
        recommendation=recommendation,
        user=pharmacist,
        decision="modify",
        password=PASSWORD,
        otp_code=next_totp_code(pharmacist),
        note="rounded to the vial",
        final_regimen=change,
        forecast_token=preview["preview_token"],
    )
    card = call(client, rsa_key, PATIENT_VIEW, patient_view("ehr-pat-1"))[0]
    assert "q12h 1000 mg over 1 h" in card["summary"]
    assert f"PTA {reviewed.final_figures['pta'] * 100:.0f} %" in card["summary"]
    assert "approved with changes" in card["summary"]
    assert "**Order**: Testdrug 1000 mg" in card["detail"]
    low, high = reviewed.final_figures["metric_ci90"]
    assert f"(90 % interval {low:.3g}–{high:.3g})" in card["detail"]


def test_a_rejected_recommendation_gives_no_dose(
    client, ehr_system, rsa_key, linked, recommendation, pharmacist
) -> None:
    from dosing import services
    from tests.auth import next_totp_code
    from tests.factories import PASSWORD

    services.recommendation_review(
        recommendation=recommendation,
        user=pharmacist,
        decision="reject",
        password=PASSWORD,
        otp_code=next_totp_code(pharmacist),
        note="patient on CRRT since this morning",
    )
    card = call(client, rsa_key, PATIENT_VIEW, patient_view("ehr-pat-1"))[0]
    assert "rejected by the pharmacist" in card["summary"]
    assert " mg" not in card["summary"] and " mg" not in card["detail"]
    assert "**Reason**: patient on CRRT since this morning" in card["detail"]
