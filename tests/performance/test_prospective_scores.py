"""Each new quantified level gets its prospective score; alerts reach the recommendation, card and page."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from dosing import services
from dosing.models import BayesianUpdate
from performance import sequential
from performance import services as perf_services
from performance.models import CusumTrack, PerformanceAlert, PerformanceSummary, ProspectiveScore
from tests.auth import login

pytestmark = pytest.mark.django_db


def _level(course, user, hours_ago: float, value: float) -> None:
    services.level_record(
        course=course,
        sampled_at=timezone.now() - dt.timedelta(hours=hours_ago),
        value=value,
        unit="mg/L",
        user=user,
    )


@pytest.fixture
def scored(dosed_course, clinician, django_capture_on_commit_callbacks, celery_eager):
    with django_capture_on_commit_callbacks(execute=True):
        _level(dosed_course, clinician, 2.0, 13.0)  # inside the 90 % interval: accepted
    return dosed_course


def test_a_new_level_is_stored_with_its_forecast_from_the_data_before_it(scored) -> None:
    level = scored.levels.get()
    row = ProspectiveScore.objects.get(level=level)
    document = level.plausibility_score
    assert row.model_version_id == scored.model_version_id
    assert row.basis == "prior"  # the first level: the forecast from the covariates only
    assert row.observed == pytest.approx(document["value"], rel=1e-12)
    assert row.predicted_median == pytest.approx(document["median"], rel=1e-12)
    assert row.pi90_low == pytest.approx(document["interval_90"][0], rel=1e-12)
    assert row.pi50_low < row.predicted_median < row.pi50_high
    assert row.pi90_low < row.pi50_low and row.pi50_high < row.pi90_high
    assert row.pit == pytest.approx(document["quantile"], rel=1e-12)
    assert row.error == pytest.approx(row.observed - row.predicted_median, rel=1e-12)
    assert row.relative_error == pytest.approx(row.error / row.predicted_median, rel=1e-12)
    # the fixture's patient: a 66-year-old woman, 70 kg, in the ICU, no creatinine and no height recorded
    assert (row.age_band, row.sex, row.weight_band, row.care_setting) == (
        "65-79 y",
        "female",
        "60-79 kg",
        "ICU",
    )
    assert (row.renal_band, row.bmi_band, row.renal_support) == ("not recorded", "not recorded", "none")
    assert (
        CusumTrack.objects.filter(model_version=scored.model_version, n_levels=1).count() == 6
    )  # all, age, sex, weight, ICU, renal support
    summary = PerformanceSummary.objects.get(model_version=scored.model_version)  # refreshed on commit
    assert summary.n_scores == 1 and summary.data["groups"][0]["n_levels"] == 1


def test_scoring_twice_stores_one_score_and_advances_the_tests_once(scored, clinician) -> None:
    level = scored.levels.get()
    row = ProspectiveScore.objects.get(level=level)
    again = perf_services.score_record(
        level=level,
        model_version=scored.model_version,
        course=scored,
        score=level.plausibility_score,
        unit=row.unit,
        subgroups=perf_services.Subgroups(
            **{f: getattr(row, f) for f in perf_services.Subgroups.__dataclass_fields__}
        ),
    )
    assert again.pk == row.pk
    assert ProspectiveScore.objects.count() == 1
    assert CusumTrack.objects.get(model_version=scored.model_version, dimension="all").n_levels == 1


def _alarm(version, dimension: str, band: str) -> None:
    """A subgroup whose bias CUSUM sits just below the threshold: the next high level raises the alert."""
    CusumTrack.objects.update_or_create(
        model_version=version,
        dimension=dimension,
        band=band,
        defaults={"n_levels": 80, "bias_high": sequential.THRESHOLD - 0.01},
    )


def test_an_alert_in_the_patients_subgroup_warns_on_the_recommendation(
    dosed_course, clinician, django_capture_on_commit_callbacks, celery_eager
) -> None:
    _alarm(dosed_course.model_version, "care_setting", "ICU")
    with django_capture_on_commit_callbacks(execute=True):
        _level(dosed_course, clinician, 2.0, 14.0)  # above the median (PIT about 0.9): accepted, z > 0
    alert = PerformanceAlert.objects.get()
    assert (alert.dimension, alert.band, alert.test, alert.status) == (
        "care_setting",
        "ICU",
        "bias_high",
        "open",
    )
    update = BayesianUpdate.objects.filter(course=dosed_course).latest("pk")
    assert update.status == BayesianUpdate.Status.SUCCEEDED, update.error
    codes = [a["code"] for a in update.results["alerts"]]
    assert f"model_performance:{alert.pk}" in codes
    message = next(
        a["message"] for a in update.results["alerts"] if a["code"] == f"model_performance:{alert.pk}"
    )
    assert "ICU or ward ICU" in message and "higher than predicted" in message
    recommendation = dosed_course.recommendations.latest("pk")
    assert f"model_performance:{alert.pk}" in [a["code"] for a in recommendation.alerts]


def test_an_alert_in_another_subgroup_does_not_warn_this_patient(scored, clinician) -> None:
    PerformanceAlert.objects.create(
        model_version=scored.model_version,
        dimension="care_setting",
        band="ward",
        test="bias_low",
        statistic=10.5,
        threshold=sequential.THRESHOLD,
        n_levels=70,
        raised_at=timezone.now(),
    )
    from dosing import adapters

    case = adapters.course_case(scored)
    assert perf_services.alerts_for_course(course=scored, case=case) == []


def test_the_card_and_the_page_show_the_alert_and_a_curator_closes_it(scored, client, clinician) -> None:
    from accounts.roles import Role
    from tests.factories import UserFactory

    alert = PerformanceAlert.objects.create(
        model_version=scored.model_version,
        dimension="all",
        band="all",
        test="dispersion",
        statistic=10.2,
        threshold=sequential.THRESHOLD,
        n_levels=90,
        raised_at=timezone.now(),
    )
    card_url = reverse("models_catalog:version_detail", args=[scored.model_version.pk])
    page_url = reverse("performance:version", args=[scored.model_version.pk])
    login(client, clinician)
    card = client.get(card_url).content.decode()
    assert "Performance in this hospital" in card and "prediction intervals too narrow" in card
    assert page_url not in card  # the page is for curators and pharmacists
    assert client.get(page_url).status_code == 403
    curator = UserFactory(username="curator", roles=[Role.MODEL_CURATOR])
    login(client, curator)
    assert page_url in client.get(card_url).content.decode()
    page = client.get(page_url)
    assert page.status_code == 200
    text = page.content.decode()
    assert "performance-data" in text and 'id="alert-' in text and "Model performance" in text
    response = client.post(reverse("performance:alert_close", args=[alert.pk]), {"reason": "recalibrated"})
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.status == "closed" and alert.closed_by == curator and alert.close_reason == "recalibrated"
    assert CusumTrack.objects.get(model_version=scored.model_version, dimension="all").dispersion == 0.0


def test_a_pharmacist_sees_the_page_but_cannot_close_an_alert(scored, client, pharmacist) -> None:
    alert = PerformanceAlert.objects.create(
        model_version=scored.model_version,
        dimension="all",
        band="all",
        test="bias_low",
        statistic=10.2,
        threshold=sequential.THRESHOLD,
        n_levels=90,
        raised_at=timezone.now(),
    )
    login(client, pharmacist)
    assert client.get(reverse("performance:index")).status_code == 200
    assert client.get(reverse("performance:version", args=[scored.model_version.pk])).status_code == 200
    client.post(reverse("performance:alert_close", args=[alert.pk]), {"reason": "no"})
    alert.refresh_from_db()
    assert alert.status == "open"
