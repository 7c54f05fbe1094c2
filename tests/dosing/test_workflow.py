"""The dosing workflow in process: doses and levels in, a Bayesian update and a recommendation out."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from dosing import services
from dosing.models import BayesianUpdate, Recommendation
from tests.dosing.conftest import record_doses_every_12_h

pytestmark = pytest.mark.django_db


def test_a_level_gives_a_bayesian_update_with_bands_and_a_recommendation(
    course, clinician, django_capture_on_commit_callbacks, celery_eager
) -> None:
    start = timezone.now() - dt.timedelta(hours=30)
    with django_capture_on_commit_callbacks(execute=True):
        record_doses_every_12_h(course=course, user=clinician, start=start)
        services.level_record(
            course=course, sampled_at=start + dt.timedelta(hours=23.5), value=6.2, unit="mg/L", user=clinician
        )
    update = course.updates.order_by("-pk").first()
    assert update.status == BayesianUpdate.Status.SUCCEEDED, update.error
    results = update.results
    assert results["basis"].startswith("Bayesian")
    plot = results["plot"]
    assert plot["band_kind"] == "credible"
    assert len(plot["times_h"]) == len(plot["bands"]["0.05"])
    assert plot["observations"][0]["value"] == pytest.approx(6.2)
    recommendation = Recommendation.objects.get(update=update)
    assert recommendation.status == Recommendation.Status.PENDING_REVIEW
    assert 0 <= recommendation.probability_of_target <= 1
    assert "9 in 10 chance that the trough lies between" in recommendation.uncertainty_text
    assert update.inputs["observations"][0]["value"] == pytest.approx(6.2)
    assert update.engine_version
    # earlier updates of the same course were superseded or done, never left queued
    assert not course.updates.filter(status=BayesianUpdate.Status.QUEUED).exists()


def test_without_a_maximum_dose_the_update_fails_and_says_why(
    course, clinician, django_capture_on_commit_callbacks, celery_eager
) -> None:
    course.drug.max_single_dose_mg = None
    course.drug.save()
    with django_capture_on_commit_callbacks(execute=True):
        services.dose_record(
            course=course,
            given_at=timezone.now() - dt.timedelta(hours=6),
            amount_mg=1000,
            route="iv_infusion",
            infusion_duration_h=1,
            user=clinician,
        )
    update = course.updates.order_by("-pk").first()
    assert update.status == BayesianUpdate.Status.FAILED
    assert "no maximum single dose" in update.error
    assert not Recommendation.objects.filter(update=update).exists()
