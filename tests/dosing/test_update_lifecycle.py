"""Updates and recommendations stay consistent with the data: ordering, staleness, consent, limits."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from dosing import adapters, claims, services
from dosing.models import BayesianUpdate, Recommendation
from patients import services as patient_services
from patients.models import ConsentRecord
from tests.auth import next_totp_code
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db
Status = BayesianUpdate.Status


def dose(course, user, hours_ago: float, amount_mg: float = 1000) -> None:
    services.dose_record(
        course=course,
        given_at=timezone.now() - dt.timedelta(hours=hours_ago),
        amount_mg=amount_mg,
        route="iv_infusion",
        infusion_duration_h=1,
        user=user,
    )


def level(course, user, hours_ago: float, value: float) -> None:
    services.level_record(
        course=course,
        sampled_at=timezone.now() - dt.timedelta(hours=hours_ago),
        value=value,
        unit="mg/L",
        user=user,
    )


@pytest.fixture
def dosed(course, clinician, django_capture_on_commit_callbacks, celery_eager):
    with django_capture_on_commit_callbacks(execute=True):
        dose(course, clinician, 26)
        dose(course, clinician, 14)
        level(course, clinician, 2.5, 6.5)
    return course


def test_an_older_update_finishing_last_never_replaces_a_newer_one(dosed, clinician) -> None:
    old = services.update_request(
        course=dosed, user=clinician, trigger="old"
    )  # not run: on_commit not executed
    assert claims.update_claim(update_id=old.pk, task_id="old-task") is not None  # a worker starts it...
    level(dosed, clinician, 1.0, 7.0)  # ...new data arrives meanwhile
    new = dosed.updates.order_by("-pk").first()
    services.update_run(update_id=new.pk)
    old.refresh_from_db()
    assert old.status == Status.RUNNING
    # The old worker finishes last.
    old.refresh_from_db()  # with the claim's token
    services._finish(old, recommended={"success": True}, results={"recommendation": {"x": 1}}, timings={})
    old.refresh_from_db()
    assert old.status == Status.SUPERSEDED
    current = Recommendation.objects.exclude(status=Recommendation.Status.SUPERSEDED).get(course=dosed)
    assert current.update_id == new.pk


def test_new_data_retires_the_pending_recommendation_at_once(dosed, clinician) -> None:
    pending = Recommendation.objects.get(course=dosed, status=Recommendation.Status.PENDING_REVIEW)
    level(dosed, clinician, 1.0, 7.0)  # the update is queued, not run
    pending.refresh_from_db()
    assert pending.status == Recommendation.Status.SUPERSEDED


def test_withdrawn_consent_blocks_dosing_despite_an_earlier_override(
    patient, published_version, clinician, django_capture_on_commit_callbacks, celery_eager
) -> None:
    patient_services.consent_record(
        patient=patient, scope=ConsentRecord.Scope.MODEL_BASED_DOSING, status="withdrawn", user=clinician
    )
    with pytest.raises(ValidationError, match="withdrawn"):
        services.course_open(
            patient=patient,
            model_version=published_version,
            indication="x",
            target={"metric": "trough", "low": 5, "high": 10},
            consent_override_reason="unconscious patient",
            user=clinician,
        )


def test_consent_withdrawn_after_opening_fails_the_update_and_retires_the_recommendation(
    dosed, patient, clinician, django_capture_on_commit_callbacks, celery_eager
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        patient_services.consent_record(
            patient=patient, scope=ConsentRecord.Scope.MODEL_BASED_DOSING, status="withdrawn", user=clinician
        )
    update = dosed.updates.order_by("-pk").first()
    assert update.status == Status.FAILED
    assert "consent was withdrawn" in update.error
    assert not Recommendation.objects.filter(
        course=dosed, status=Recommendation.Status.PENDING_REVIEW
    ).exists()


def test_a_course_target_cannot_lift_the_drug_limits(dosed, clinician) -> None:
    dosed.target = {**dosed.target, "max_dose_mg": 50000, "max_daily_dose_mg": 1e6}
    dosed.save()
    target = adapters.course_case(dosed).document["target"]
    assert target["max_dose_mg"] == 3000  # the drug's limits (test drug: 3000 mg, 6000 mg/day)
    assert target["max_daily_dose_mg"] == 6000
    dosed.target = {**dosed.target, "max_dose_mg": 1500}
    dosed.save()
    assert adapters.course_case(dosed).document["target"]["max_dose_mg"] == 1500  # narrowing is fine


def test_the_next_dose_never_starts_before_the_last_one_ends() -> None:
    # A 3-h infusion started 1 h ago: not before it ends.
    assert adapters.earliest_start_hour([(0.0, 3.0)], now_h=1.0) == 3.0
    # An infusion that ended long ago: from the next half hour.
    assert adapters.earliest_start_hour([(0.0, 1.0), (12.0, 13.0)], now_h=30.2) == 30.5


def test_each_candidate_starts_one_of_its_own_intervals_after_the_last_dose(dosed) -> None:
    """After the last dose a q24h regimen starts 24 h later and a q12h one 12 h later, never "now"."""
    case = adapters.course_case(dosed)
    last = case.last_dose_h
    assert last is not None and case.document["target"]["last_dose_h"] == last
    assert adapters.regimen_start_hour(case, 24.0) == pytest.approx(max(case.next_dose_h, last + 24.0))
    assert adapters.regimen_start_hour(case, 12.0) == pytest.approx(max(case.next_dose_h, last + 12.0))
    recommended = dosed.recommendations.order_by("-pk").first()
    if recommended is not None:
        regimen = recommended.regimen
        expected = max(case.next_dose_h, last + regimen["interval_h"])
        assert regimen["start_h"] == pytest.approx(expected, abs=0.5)


def test_a_dose_entered_in_error_leaves_the_fit(
    dosed, clinician, django_capture_on_commit_callbacks, celery_eager
) -> None:
    wrong = dosed.doses.order_by("pk").last()
    with django_capture_on_commit_callbacks(execute=True):
        services.entry_mark_in_error(entry=wrong, reason="given to another patient", user=clinician)
    wrong.refresh_from_db()
    assert wrong.error_marked_by == clinician
    update = dosed.updates.order_by("-pk").first()
    assert update.status == Status.SUCCEEDED, update.error
    assert len(update.inputs["doses"]) == 1
    with pytest.raises(ValidationError, match="already"):
        services.entry_mark_in_error(entry=wrong, reason="again", user=clinician)


def test_a_pharmacist_cannot_approve_a_changed_regimen_above_the_limits(dosed, pharmacist) -> None:
    pending = Recommendation.objects.get(course=dosed, status=Recommendation.Status.PENDING_REVIEW)
    with pytest.raises(ValidationError, match="exceeds the maximum dose"):
        services.recommendation_review(
            recommendation=pending,
            user=pharmacist,
            decision="modify",
            password=PASSWORD,
            otp_code=next_totp_code(pharmacist),
            note="more",
            final_regimen={"dose_mg": 50_000, "interval_h": 0.5, "duration_h": 0.5},
        )
    pending.refresh_from_db()
    assert pending.status == Recommendation.Status.PENDING_REVIEW


def test_a_pharmacist_cannot_approve_an_infusion_longer_than_its_interval(dosed, pharmacist) -> None:
    pending = Recommendation.objects.get(course=dosed, status=Recommendation.Status.PENDING_REVIEW)
    with pytest.raises(ValidationError, match="the infusion must end within the interval"):
        services.recommendation_review(
            recommendation=pending,
            user=pharmacist,
            decision="modify",
            password=PASSWORD,
            otp_code=next_totp_code(pharmacist),
            note="longer infusion",
            final_regimen={"dose_mg": 1000, "interval_h": 12, "duration_h": 13},
        )
    pending.refresh_from_db()
    assert pending.status == Recommendation.Status.PENDING_REVIEW
