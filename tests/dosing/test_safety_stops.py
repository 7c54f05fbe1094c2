"""Safe to act on: every stop and red warning of issue 11, through the services and the public REST API.

The courses run on the shipped library (vancomycin Goti 2018, meropenem Li 2006, ...), loaded and published by
two curators as in production; updates run in process after each commit.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from rest_framework.test import APIClient

from dosing import services
from dosing.models import BayesianUpdate, DoseAdministration, DrugLevel, Recommendation, TherapyCourse
from models_catalog.models import ModelVersion, TargetProtocol
from patients import services as patients
from patients.models import ConsentRecord
from tests.auth import next_totp_code
from tests.dosing.api_helpers import api
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db
COURSES = "/api/v1/courses/"


@pytest.fixture
def library(db: None) -> None:
    from accounts.roles import Role
    from models_catalog.library import library_load
    from tests.factories import UserFactory

    library_load(
        requested_by=UserFactory(username="curator-a", roles=[Role.MODEL_CURATOR]),
        approved_by=UserFactory(username="curator-b", roles=[Role.MODEL_CURATOR]),
    )


@pytest.fixture
def run_updates(django_capture_on_commit_callbacks: Any, celery_eager: None) -> Any:
    """Run the on-commit Bayesian updates of a block, in process."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def published(model_id: str) -> ModelVersion:
    return ModelVersion.objects.published().get(model_id=model_id)


def protocol(drug: str, metric: str) -> TargetProtocol:
    return TargetProtocol.objects.filter(drug__name=drug, target__metric=metric).first()


def make_patient(
    clinician: Any,
    *,
    mrn: str = "SAFE-1",
    age_years: float = 60,
    weight_kg: float = 80,
    scr_mg_per_dl: float | None = 1.0,
    sex: str = "male",
) -> Any:
    now = timezone.now()
    patient = patients.patient_create(
        mrn=mrn,
        family_name="Safety",
        given_name="Test",
        birth_date=(now - dt.timedelta(days=round(365.25 * age_years))).date(),
        sex=sex,
        user=clinician,
    )
    patients.measurement_record(
        patient=patient,
        kind="weight",
        value=weight_kg,
        unit="kg",
        measured_at=now - dt.timedelta(days=3),
        user=clinician,
    )
    if scr_mg_per_dl is not None:
        patients.measurement_record(
            patient=patient,
            kind="serum_creatinine",
            value=scr_mg_per_dl,
            unit="mg/dL",
            measured_at=now - dt.timedelta(days=3),
            user=clinician,
        )
    patients.consent_record(
        patient=patient, scope=ConsentRecord.Scope.MODEL_BASED_DOSING, status="granted", user=clinician
    )
    return patient


def goti_course(clinician: Any, patient: Any) -> TherapyCourse:
    return services.course_open(
        patient=patient,
        model_version=published("vancomycin-goti-2018"),
        target_protocol=protocol("vancomycin", "auc24"),
        indication="MRSA bacteraemia",
        user=clinician,
        no_organ_support_confirmed=True,
    )


def give_doses(clinician: Any, course: TherapyCourse, *, first: dt.datetime, n: int = 4, every_h: float = 12):
    for i in range(n):
        services.dose_record(
            course=course,
            given_at=first + dt.timedelta(hours=every_h * i),
            amount_mg=1000,
            route="iv_infusion",
            infusion_duration_h=2,
            user=clinician,
        )


def latest(course: TherapyCourse) -> BayesianUpdate:
    return course.updates.order_by("-pk").first()


# -- routes and administration rules --------------------------------------------------------------------


def test_a_new_vancomycin_course_is_recommended_as_an_infusion_never_a_bolus(
    library, clinician, run_updates
) -> None:
    with run_updates():
        course = goti_course(clinician, make_patient(clinician))
    update = latest(course)
    assert update.status == BayesianUpdate.Status.SUCCEEDED, update.error
    regimen = course.recommendations.get().regimen
    assert regimen["route"] == "iv_infusion"
    assert regimen["duration_h"] >= 2.0 - 1e-9  # the usual duration, lengthened to 600 mg/h for large doses
    assert regimen["dose_mg"] / regimen["duration_h"] <= 600 + 1e-9
    assert update.inputs["target"]["route"] == "iv_infusion"


def test_the_dose_api_refuses_a_route_the_drug_does_not_have(library, clinician) -> None:
    course = goti_course(clinician, make_patient(clinician))
    response = api(clinician).post(
        f"{COURSES}{course.public_id}/doses/",
        {
            "given_at": timezone.now().isoformat(),
            "amount_mg": 1000,
            "route": "iv_bolus",
            "infusion_duration_h": 2,
        },
        format="json",
    )
    assert response.status_code == 400
    assert "not IV bolus" in response.data["route"][0]
    assert not DoseAdministration.objects.exists()


def test_a_bolus_has_no_duration_and_an_infusion_needs_one(clinician, course) -> None:
    # The test drug may be given as a bolus or an infusion.
    client = api(clinician)
    now = timezone.now().isoformat()
    bolus = client.post(
        f"{COURSES}{course.public_id}/doses/",
        {"given_at": now, "amount_mg": 500, "route": "iv_bolus", "infusion_duration_h": 2},
        format="json",
    )
    assert bolus.status_code == 400
    assert "no infusion duration" in bolus.data["infusion_duration_h"][0]
    infusion = client.post(
        f"{COURSES}{course.public_id}/doses/",
        {"given_at": now, "amount_mg": 500, "route": "iv_infusion"},
        format="json",
    )
    assert infusion.status_code == 400
    assert "needs its duration" in infusion.data["infusion_duration_h"][0]
    assert not DoseAdministration.objects.exists()


def test_an_infusion_faster_than_the_rate_limit_is_held_for_confirmation(library, clinician) -> None:
    course = goti_course(clinician, make_patient(clinician))
    client = api(clinician)
    body = {
        "given_at": timezone.now().isoformat(),
        "amount_mg": 1500,
        "route": "iv_infusion",
        "infusion_duration_h": 1,
    }
    refused = client.post(f"{COURSES}{course.public_id}/doses/", body, format="json")
    assert refused.status_code == 409
    assert "faster than the maximum rate of 600 mg/h" in refused.data["confirmation_reason"][0]
    assert "at least 2.50 h" in refused.data["confirmation_reason"][0]
    assert not DoseAdministration.objects.exists()
    confirmed = client.post(
        f"{COURSES}{course.public_id}/doses/",
        {**body, "confirmation_reason": "given in theatre, checked"},
        format="json",
    )
    assert confirmed.status_code == 201, confirmed.data
    assert confirmed.data["notices"][0]["code"] == "rate_above_limit"
    assert confirmed.data["notices"][0]["reason"] == "given in theatre, checked"


def test_a_duplicate_dose_is_held_for_confirmation(library, clinician) -> None:
    course = goti_course(clinician, make_patient(clinician))
    client = api(clinician)
    body = {
        "given_at": (timezone.now() - dt.timedelta(hours=2)).isoformat(),
        "amount_mg": 1000,
        "route": "iv_infusion",
        "infusion_duration_h": 2,
    }
    assert client.post(f"{COURSES}{course.public_id}/doses/", body, format="json").status_code == 201
    again = client.post(f"{COURSES}{course.public_id}/doses/", body, format="json")
    assert again.status_code == 409
    assert "already recorded" in again.data["confirmation_reason"][0]
    assert DoseAdministration.objects.count() == 1
    second = client.post(
        f"{COURSES}{course.public_id}/doses/", {**body, "confirmation_reason": "two bags hung"}, format="json"
    )
    assert second.status_code == 201
    assert DoseAdministration.objects.count() == 2


def test_a_pharmacist_cannot_change_an_infusion_to_run_faster_than_the_limit(
    library, clinician, pharmacist, run_updates
) -> None:
    with run_updates():
        course = goti_course(clinician, make_patient(clinician))
    recommendation = course.recommendations.get()
    with pytest.raises(ValidationError, match="faster than the maximum rate"):
        services.recommendation_review(
            recommendation=recommendation,
            user=pharmacist,
            decision="modify",
            password=PASSWORD,
            otp_code=next_totp_code(pharmacist),
            note="faster",
            final_regimen={"dose_mg": 1500, "interval_h": 12, "duration_h": 1},
            acknowledged_alerts=[a["code"] for a in recommendation.alerts],
        )


def test_the_course_page_offers_the_drugs_routes_only_with_the_usual_duration(
    library, clinician, client
) -> None:
    course = goti_course(clinician, make_patient(clinician))
    client.force_login(clinician)
    page = client.get(f"/courses/{course.public_id}/").content.decode()
    dose_form = page[page.index('id="dose-form"') : page.index("</form>", page.index('id="dose-form"'))]
    assert 'value="iv_infusion"' in dose_form
    assert "iv_bolus" not in dose_form
    assert 'name="infusion_duration_h" value="2.0"' in dose_form


# -- model eligibility ----------------------------------------------------------------------------------


def test_a_child_on_an_adult_model_is_refused_with_the_reason(library, clinician) -> None:
    child = make_patient(clinician, mrn="CHILD-8", age_years=8, weight_kg=25, scr_mg_per_dl=0.4)
    body = {
        "patient": str(child.public_id),
        "model_version": published("vancomycin-goti-2018").pk,
        "target_protocol": protocol("vancomycin", "auc24").pk,
        "indication": "osteomyelitis",
        "no_organ_support_confirmed": True,
    }
    response = api(clinician).post(COURSES, body, format="json")
    assert response.status_code == 400
    assert (
        "age 8 years lies below the model's domain (at least 17 years)" in response.data["model_version"][0]
    )
    assert response.data["alternatives"] == []  # the library has no paediatric vancomycin model
    assert not TherapyCourse.objects.exists()


def test_the_refusal_lists_the_published_models_whose_domain_fits(library, clinician) -> None:
    """Tobramycin Hennig 2008 is paediatric: an adult is refused. Conil 2011 (ICU adults) is listed once the
    record holds the height its clearance needs. The alternatives come from every published version of the
    same drug."""
    adult = make_patient(clinician, mrn="ADULT-CF", age_years=30)
    version = published("tobramycin-hennig-2008")

    def refusal_alternatives() -> list[str]:
        with pytest.raises(services.ModelNotApplicable) as refusal:
            services.course_open(
                patient=adult,
                model_version=version,
                target_protocol=protocol("tobramycin", "trough"),
                indication="CF",
                user=clinician,
                no_organ_support_confirmed=True,
            )
        assert "age 30 years lies above the model's domain (0.5-18 years)" in refusal.value.stop.message
        return [alternative["label"] for alternative in refusal.value.stop.alternatives]

    assert refusal_alternatives() == []  # no height recorded: Conil 2011 cannot be used yet
    patients.measurement_record(
        patient=adult,
        kind="height",
        value=175,
        unit="cm",
        measured_at=timezone.now() - dt.timedelta(days=3),
        user=clinician,
    )
    assert refusal_alternatives() == [str(published("tobramycin-conil-2011"))]


def test_a_patient_who_starts_crrt_during_the_course_gets_a_stop_not_a_dose(
    library, clinician, run_updates
) -> None:
    patient = make_patient(clinician)
    course = goti_course(clinician, patient)
    give_doses(clinician, course, first=timezone.now() - dt.timedelta(hours=40))
    with run_updates():
        patients.support_session_record(
            patient=patient,
            modality="crrt",
            started_at=timezone.now() - dt.timedelta(hours=4),
            user=clinician,
        )
    update = latest(course)
    assert update.status == BayesianUpdate.Status.FAILED
    stop = update.results["stop"]
    assert stop["code"] == "outside_domain"
    assert "continuous renal replacement therapy (CRRT)" in stop["message"]
    assert not course.recommendations.filter(status=Recommendation.Status.PENDING_REVIEW).exists()
    detail = api(clinician).get(f"/api/v1/updates/{update.public_id}/").data
    assert detail["results"]["stop"]["action"].startswith("No published model")


def test_outside_a_soft_range_the_pharmacist_must_acknowledge_the_red_warning(
    library, clinician, pharmacist, run_updates
) -> None:
    old = make_patient(clinician, mrn="OLD-1", age_years=103, weight_kg=60)
    with run_updates():
        course = goti_course(clinician, old)
    recommendation = course.recommendations.get()
    codes = [alert["code"] for alert in recommendation.alerts]
    assert "soft_domain:age_years" in codes
    client = api(pharmacist)
    url = f"/api/v1/recommendations/{recommendation.public_id}/review/"
    unread = client.post(
        url,
        {"decision": "approve", "password": PASSWORD, "otp_code": next_totp_code(pharmacist)},
        format="json",
    )
    assert unread.status_code == 400
    assert "age 103 years lies above the population" in unread.data["acknowledged_alerts"][0]
    approved = client.post(
        url,
        {
            "decision": "approve",
            "password": PASSWORD,
            "otp_code": next_totp_code(pharmacist),
            "acknowledged_alerts": codes,
        },
        format="json",
    )
    assert approved.status_code == 200, approved.data
    assert approved.data["acknowledged_alerts"] == codes


def test_every_library_model_declares_a_numeric_domain_with_its_source(library) -> None:
    from mipd_engine.model import parse_model

    for version in ModelVersion.objects.published():
        domain = parse_model(version.document).domain
        assert domain is not None and domain.source, version
        assert any(rule.key == "age_years" for rule in domain.hard), version
    meropenem = parse_model(published("meropenem-li-2006").document).domain
    soft = {rule.key: (rule.low, rule.high) for rule in meropenem.soft}
    assert soft["age_years"] == (18, 93)
    assert soft["weight_kg"] == (40, 127)


# -- levels checked against what the patient's model expects ---------------------------------------------


def _level(
    client: APIClient, course: TherapyCourse, at: dt.datetime, value: float | None, unit: str, **extra
):
    return client.post(
        f"{COURSES}{course.public_id}/levels/",
        {"sampled_at": at.isoformat(), "value": value, "unit": unit, **extra},
        format="json",
    )


def test_a_level_in_the_wrong_unit_is_held_out_of_the_fit(library, clinician, run_updates) -> None:
    """18 ng/mL entered 13 minutes after 18 mg/L: held as a unit slip, not fitted, shown with the reason."""
    course = goti_course(clinician, make_patient(clinician))
    first = timezone.now() - dt.timedelta(hours=40)
    give_doses(clinician, course, first=first)
    client = api(clinician)
    trough = first + dt.timedelta(hours=35.5)
    with run_updates():
        accepted = _level(client, course, trough, 18, "mg/L")
    assert accepted.status_code == 201
    before = latest(course)
    assert DrugLevel.objects.get(public_id=accepted.data["id"]).plausibility == "accepted"
    with run_updates():
        slipped = _level(client, course, trough + dt.timedelta(minutes=13), 18, "ng/mL")
    assert slipped.status_code == 201
    level = DrugLevel.objects.get(public_id=slipped.data["id"])
    assert level.plausibility == DrugLevel.Plausibility.HELD
    assert "18 mg/L" in level.plausibility_score["unit_slip"]["label"]
    update = latest(course)
    assert update.status == BayesianUpdate.Status.SUCCEEDED, update.error
    assert len(update.inputs["observations"]) == 1  # the held level is not in the fit
    assert update.inputs["observations"] == before.inputs["observations"]
    recommendation = course.recommendations.order_by("-pk").first()
    assert any(alert["code"] == f"level_held:{level.public_id}" for alert in recommendation.alerts)
    # Marking it entered in error keeps it out; confirming it puts it in the next fit.
    with run_updates():
        services.level_confirm(level=level, reason="re-measured: 18 ng/mL is right", user=clinician)
    level.refresh_from_db()
    assert level.plausibility == DrugLevel.Plausibility.CONFIRMED
    assert len(latest(course).inputs["observations"]) == 2


def test_the_course_page_shows_a_held_level_with_confirm_and_error_actions(
    library, clinician, client, run_updates
) -> None:
    course = goti_course(clinician, make_patient(clinician))
    first = timezone.now() - dt.timedelta(hours=40)
    give_doses(clinician, course, first=first)
    with run_updates():
        services.level_record(
            course=course,
            sampled_at=first + dt.timedelta(hours=35.5),
            value=0.018,
            unit="mg/L",
            user=clinician,
        )
    client.force_login(clinician)
    page = client.get(f"/courses/{course.public_id}/").content.decode()
    assert 'id="held-levels"' in page
    assert "fits a unit slip" in page or "lies far below" in page
    assert "Confirm level" in page


def test_a_number_below_the_lloq_is_used_as_below_the_lloq(library, clinician, run_updates) -> None:
    course = goti_course(clinician, make_patient(clinician))
    first = timezone.now() - dt.timedelta(hours=40)
    give_doses(clinician, course, first=first)
    response = _level(api(clinician), course, first + dt.timedelta(hours=35.5), 1.2, "mg/L", lloq=2)
    assert response.status_code == 201
    assert response.data["below_lloq"] is True
    assert response.data["value"] is None
    assert response.data["value_as_entered"] == 1.2
    assert "below the LLOQ" in response.data["notices"][0]["message"]


def test_a_level_of_zero_is_refused_unless_marked_below_the_lloq(library, clinician) -> None:
    course = goti_course(clinician, make_patient(clinician))
    first = timezone.now() - dt.timedelta(hours=40)
    give_doses(clinician, course, first=first)
    response = _level(api(clinician), course, first + dt.timedelta(hours=35.5), 0, "mg/L")
    assert response.status_code == 400
    assert "mark the result below the LLOQ" in response.data["value"][0]
    assert not DrugLevel.objects.exists()


def test_a_level_drawn_during_an_infusion_is_flagged(library, clinician, pharmacist, run_updates) -> None:
    course = goti_course(clinician, make_patient(clinician))
    first = timezone.now() - dt.timedelta(hours=40)
    give_doses(clinician, course, first=first)
    with run_updates():
        response = _level(api(clinician), course, first + dt.timedelta(hours=36.5), 25, "mg/L")
    assert response.data["notices"][0]["code"] == "during_infusion"
    recommendation = course.recommendations.order_by("-pk").first()
    assert any(a["code"].startswith("level_during_infusion:") for a in recommendation.alerts)


# -- covariate semantics -------------------------------------------------------------------------------


def test_haemodialysis_started_mid_course_stops_a_model_whose_flag_is_patient_level(
    library, clinician, run_updates
) -> None:
    """Goti 2018's DIAL is a baseline covariate: a session on day 3 opens a decision, not a flag flip."""
    patient = make_patient(clinician)
    course = goti_course(clinician, patient)
    first = timezone.now() - dt.timedelta(hours=60)
    give_doses(clinician, course, first=first, n=5)
    with run_updates():
        patients.support_session_record(
            patient=patient,
            modality="intermittent_haemodialysis",
            started_at=first + dt.timedelta(hours=50),
            ended_at=first + dt.timedelta(hours=54),
            user=clinician,
        )
    update = latest(course)
    assert update.status == BayesianUpdate.Status.FAILED
    assert update.results["stop"]["code"] == "baseline_changed"
    assert "DIAL is a baseline covariate" in update.results["stop"]["message"]
    assert "Open a new course" in update.results["stop"]["action"]


def test_a_patient_on_haemodialysis_before_the_course_has_dial_one_from_the_start(
    library, clinician, run_updates
) -> None:
    patient = make_patient(clinician, scr_mg_per_dl=6.0)
    start = timezone.now() - dt.timedelta(hours=72)
    patients.support_session_record(
        patient=patient,
        modality="intermittent_haemodialysis",
        started_at=start,
        ended_at=start + dt.timedelta(hours=4),
        user=clinician,
    )
    with run_updates():
        course = goti_course(clinician, patient)
    update = latest(course)
    assert update.status == BayesianUpdate.Status.SUCCEEDED, update.error
    assert update.inputs["covariates"]["DIAL"] == 1.0
    assert "DIAL" not in json.dumps(update.inputs["covariate_changes"])


def test_dialysis_is_recorded_as_a_session_not_a_measurement(clinician, patient) -> None:
    with pytest.raises(ValidationError, match="session"):
        patients.measurement_record(
            patient=patient, kind="dialysis", value=1, unit="flag", measured_at=timezone.now(), user=clinician
        )


# -- renal function stability -------------------------------------------------------------------------


def test_a_creatinine_that_doubles_in_two_days_marks_renal_function_unstable(
    library, clinician, run_updates
) -> None:
    patient = make_patient(clinician, scr_mg_per_dl=0.9)
    patients.measurement_record(
        patient=patient,
        kind="serum_creatinine",
        value=1.8,
        unit="mg/dL",
        measured_at=timezone.now() - dt.timedelta(days=1),
        user=clinician,
    )
    with run_updates():
        course = goti_course(clinician, patient)
    alerts = {a["code"]: a["message"] for a in course.recommendations.get().alerts}
    assert "renal_unstable" in alerts
    assert "0.90 to 1.80 mg/dL" in alerts["renal_unstable"]


# -- opening a course asks for what the model needs ----------------------------------------------------


def test_a_course_lacking_the_models_covariates_is_refused_until_given_or_explained(
    library, clinician, run_updates, client
) -> None:
    patient = make_patient(clinician, scr_mg_per_dl=None)
    body = {
        "patient": str(patient.public_id),
        "model_version": published("vancomycin-goti-2018").pk,
        "target_protocol": protocol("vancomycin", "auc24").pk,
        "indication": "sepsis",
        "no_organ_support_confirmed": True,
    }
    refused = api(clinician).post(COURSES, body, format="json")
    assert refused.status_code == 400
    assert "serum creatinine" in refused.data["missing_data_reason"][0]
    assert not TherapyCourse.objects.exists()
    with run_updates():
        opened = api(clinician).post(
            COURSES, {**body, "missing_data_reason": "creatinine drawn, result pending"}, format="json"
        )
    assert opened.status_code == 201
    course = TherapyCourse.objects.get()
    update = latest(course)
    assert update.status == BayesianUpdate.Status.FAILED
    assert update.results["stop"]["code"] == "missing_data"
    client.force_login(clinician)
    page = client.get(f"/courses/{course.public_id}/").content.decode()
    assert "being computed" not in page
    assert "No recommendation" in page
    assert "serum creatinine" in page


def test_an_unconfirmed_absence_of_dialysis_is_asked_for(library, clinician) -> None:
    with pytest.raises(ValidationError) as refusal:
        services.course_open(
            patient=make_patient(clinician),
            model_version=published("vancomycin-goti-2018"),
            target_protocol=protocol("vancomycin", "auc24"),
            indication="sepsis",
            user=clinician,
        )
    assert "no_organ_support_confirmed" in refusal.value.message_dict


# -- reproducible results --------------------------------------------------------------------------------


def test_running_the_update_again_on_the_same_data_gives_the_same_bytes(
    library, clinician, run_updates
) -> None:
    course = goti_course(clinician, make_patient(clinician))
    first = timezone.now() - dt.timedelta(hours=40)
    give_doses(clinician, course, first=first)
    with run_updates():
        services.level_record(
            course=course, sampled_at=first + dt.timedelta(hours=35.5), value=14, unit="mg/L", user=clinician
        )
    with run_updates():
        services.update_request(course=course, user=clinician, trigger="again")
    with run_updates():
        services.update_request(course=course, user=clinician, trigger="and again")
    a, b = course.updates.filter(status=BayesianUpdate.Status.SUCCEEDED).order_by("-pk")[:2]
    assert a.inputs_sha256 == b.inputs_sha256
    assert a.seed == b.seed == a.results["seed"]
    assert json.dumps(a.results, sort_keys=True) == json.dumps(b.results, sort_keys=True)
    with run_updates():
        services.level_record(
            course=course, sampled_at=first + dt.timedelta(hours=37), value=30, unit="mg/L", user=clinician
        )
    assert latest(course).inputs_sha256 != a.inputs_sha256


# -- review fixes: what-if stops, toxicity warnings, decided orders under a stop, the course's MIC ---------


def test_what_if_meets_the_same_stop_as_the_update(library, clinician, run_updates) -> None:
    patient = make_patient(clinician)
    course = goti_course(clinician, patient)
    give_doses(clinician, course, first=timezone.now() - dt.timedelta(hours=40))
    with run_updates():
        patients.support_session_record(
            patient=patient,
            modality="crrt",
            started_at=timezone.now() - dt.timedelta(hours=2),
            user=clinician,
        )
    response = api(clinician).post(
        f"{COURSES}{course.public_id}/what-if/",
        {"dose_mg": 1000, "interval_h": 12, "duration_h": 2, "route": "iv_infusion"},
        format="json",
    )
    assert response.status_code == 409
    assert "continuous renal replacement therapy (CRRT)" in response.data["stop"][0]


def test_a_crrt_session_that_ended_days_ago_does_not_count(library, clinician, run_updates) -> None:
    patient = make_patient(clinician)
    ended = timezone.now() - dt.timedelta(days=6)
    patients.support_session_record(
        patient=patient,
        modality="crrt",
        started_at=ended - dt.timedelta(days=2),
        ended_at=ended,
        user=clinician,
    )
    with run_updates():
        course = goti_course(clinician, patient)
    assert latest(course).status == BayesianUpdate.Status.SUCCEEDED, latest(course).error


def test_a_recommendation_above_the_toxicity_limit_carries_a_red_warning(
    library, clinician, pharmacist, run_updates
) -> None:
    frail = make_patient(
        clinician, mrn="FRAIL-1", age_years=90, weight_kg=45, scr_mg_per_dl=9.0, sex="female"
    )
    with run_updates():
        course = goti_course(clinician, frail)
    recommendation = course.recommendations.get()
    codes = {alert["code"]: alert["message"] for alert in recommendation.alerts}
    assert "toxicity_limit" in codes, recommendation.alerts
    assert "exceeds the protocol's toxicity limit" in codes["toxicity_limit"]
    with pytest.raises(ValidationError, match="acknowledge each red warning"):
        services.recommendation_review(
            recommendation=recommendation,
            user=pharmacist,
            decision="approve",
            password=PASSWORD,
            otp_code=next_totp_code(pharmacist),
            acknowledged_alerts=[c for c in codes if c != "toxicity_limit"],
        )


def test_a_recommendation_that_misses_the_target_carries_a_red_warning(
    library, clinician, pharmacist, run_updates
) -> None:
    # A 5 mg·h/L wide AUC24 window: no regimen reaches it with 50 % probability before any level.
    narrow = {**protocol("vancomycin", "auc24").target, "low": 500, "high": 505}
    with run_updates():
        course = services.course_open(
            patient=make_patient(clinician),
            model_version=published("vancomycin-goti-2018"),
            target=narrow,
            indication="MRSA bacteraemia",
            user=clinician,
            no_organ_support_confirmed=True,
        )
    recommendation = course.recommendations.get()
    codes = {alert["code"]: alert["message"] for alert in recommendation.alerts}
    assert "target_unreachable" in codes, recommendation.alerts
    assert (
        "no regimen within the hard limits and the toxicity limit reaches the target"
        in codes["target_unreachable"]
    )
    assert f"P(target) {recommendation.probability_of_target * 100:.0f} %" in codes["target_unreachable"]
    with pytest.raises(ValidationError, match="acknowledge each red warning"):
        services.recommendation_review(
            recommendation=recommendation,
            user=pharmacist,
            decision="approve",
            password=PASSWORD,
            otp_code=next_totp_code(pharmacist),
            acknowledged_alerts=[c for c in codes if c != "target_unreachable"],
        )


def test_an_order_decided_before_a_stop_is_marked_not_valid(
    library, clinician, pharmacist, run_updates, client
) -> None:
    patient = make_patient(clinician)
    with run_updates():
        course = goti_course(clinician, patient)
    recommendation = course.recommendations.get()
    services.recommendation_review(
        recommendation=recommendation,
        user=pharmacist,
        decision="approve",
        password=PASSWORD,
        otp_code=next_totp_code(pharmacist),
        acknowledged_alerts=[a["code"] for a in recommendation.alerts],
    )
    with run_updates():
        patients.support_session_record(
            patient=patient,
            modality="crrt",
            started_at=timezone.now() - dt.timedelta(hours=1),
            user=clinician,
        )
    client.force_login(clinician)
    page = client.get(f"/courses/{course.public_id}/").content.decode()
    assert 'id="stop"' in page
    assert 'id="order-invalidated"' in page
    assert "Do not give it until a new decision is made" in page


def test_the_courses_mic_overrides_the_protocols_default(library, clinician, run_updates) -> None:
    teenager = make_patient(
        clinician, mrn="CF-14", age_years=14, weight_kg=42, scr_mg_per_dl=0.5, sex="female"
    )
    with run_updates():
        course = services.course_open(
            patient=teenager,
            model_version=published("tobramycin-hennig-2008"),
            target_protocol=protocol("tobramycin", "cmax_mic"),  # the protocol's default MIC is 2 mg/L
            indication="Pseudomonas exacerbation",
            mic_mg_per_l=4,
            user=clinician,
            no_organ_support_confirmed=True,
        )
    update = latest(course)
    assert update.status == BayesianUpdate.Status.SUCCEEDED, update.error
    assert update.inputs["target"]["mic_mg_per_l"] == 4
    assert course.recommendations.get().update.results["recommendation"]["target"]["mic_mg_per_l"] == 4


def test_a_proposal_whose_first_dose_has_passed_cannot_be_approved(
    library, clinician, pharmacist, run_updates
) -> None:
    with run_updates():
        course = goti_course(clinician, make_patient(clinician))
    recommendation = course.recommendations.get()
    BayesianUpdate.objects.filter(pk=recommendation.update_id).update(
        origin=recommendation.update.origin - dt.timedelta(hours=6)  # as if proposed six hours ago
    )
    recommendation.refresh_from_db()
    with pytest.raises(ValidationError, match="which has passed"):
        services.recommendation_review(
            recommendation=recommendation,
            user=pharmacist,
            decision="approve",
            password=PASSWORD,
            otp_code=next_totp_code(pharmacist),
            acknowledged_alerts=[a["code"] for a in recommendation.alerts],
        )
