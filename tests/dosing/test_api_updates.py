"""Dosing REST API, results: Bayesian updates run in process and are read back; supersession; what-if."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from dosing.models import BayesianUpdate, Recommendation
from tests.dosing.api_helpers import api

pytestmark = pytest.mark.django_db
COURSES = "/api/v1/courses/"


def record_doses_and_a_level(client: APIClient, course_id: int) -> None:
    start = timezone.now() - dt.timedelta(hours=30)
    for i in range(3):
        response = client.post(
            f"{COURSES}{course_id}/doses/",
            {
                "given_at": (start + dt.timedelta(hours=12 * i)).isoformat(),
                "amount_mg": 1000,
                "route": "iv_infusion",
                "infusion_duration_h": 1,
            },
            format="json",
        )
        assert response.status_code == 201, response.data
    response = client.post(
        f"{COURSES}{course_id}/levels/",
        {"sampled_at": (start + dt.timedelta(hours=23.5)).isoformat(), "value": 6.2, "unit": "mg/L"},
        format="json",
    )
    assert response.status_code == 201, response.data


def test_a_level_posted_through_the_api_gives_an_update_readable_with_its_results(
    clinician, pharmacist, course, django_capture_on_commit_callbacks, celery_eager
) -> None:
    client = api(clinician)
    with django_capture_on_commit_callbacks(execute=True):
        record_doses_and_a_level(client, course.public_id)
    updates = api(pharmacist).get(f"{COURSES}{course.public_id}/updates/")
    assert updates.status_code == 200
    newest = updates.data[0]
    assert newest["trigger"] == "new level"
    assert newest["status"] == "succeeded", newest["error"]
    assert newest["is_finished"] is True
    assert "results" not in newest
    assert {row["status"] for row in updates.data[1:]} <= {"superseded", "succeeded"}
    detail = api(pharmacist).get(f"/api/v1/updates/{newest['id']}/")
    assert detail.status_code == 200
    assert detail.data["timings_s"]["total_s"] > 0
    assert detail.data["engine_version"]
    plot = detail.data["results"]["plot"]
    assert plot["band_kind"] == "credible"
    assert len(plot["times_h"]) == len(plot["bands"]["0.05"])
    assert plot["observations"][0]["value"] == pytest.approx(6.2)
    course_view = api(pharmacist).get(f"{COURSES}{course.public_id}/")
    assert course_view.data["latest_update"]["id"] == newest["id"]
    recommendation = course_view.data["recommendation"]
    assert recommendation["status"] == "pending_review"
    assert recommendation["update"] == newest["id"]
    assert 0 <= recommendation["probability_of_target"] <= 1
    listed = api(pharmacist).get(f"{COURSES}{course.public_id}/recommendations/")
    assert listed.data[0]["id"] == recommendation["id"]


def test_two_update_requests_in_one_transaction_supersede_the_first(
    clinician, course, django_capture_on_commit_callbacks, celery_eager
) -> None:
    from dosing import services

    services.dose_record(
        course=course,
        given_at=timezone.now() - dt.timedelta(hours=6),
        amount_mg=1000,
        route="iv_infusion",
        infusion_duration_h=1,
        user=clinician,
    )
    client = api(clinician)
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(f"{COURSES}{course.public_id}/updates/", {"trigger": "check"}, format="json")
        second = client.post(f"{COURSES}{course.public_id}/updates/", {}, format="json")
    assert first.status_code == second.status_code == 202
    assert first.data["status"] == "queued"
    assert first.data["trigger"] == "requested by clinician: check"
    first_now = client.get(f"/api/v1/updates/{first.data['id']}/").data
    assert first_now["status"] == "superseded"
    assert first_now["results"] == {}
    second_now = client.get(f"/api/v1/updates/{second.data['id']}/").data
    assert second_now["status"] == "succeeded", second_now["error"]
    assert second_now["results"]["basis"].startswith("a priori")
    assert Recommendation.objects.filter(course=course).count() == 1
    assert not BayesianUpdate.objects.filter(status=BayesianUpdate.Status.QUEUED).exists()


def test_a_queued_update_is_polled_until_it_has_run(clinician, course) -> None:
    update = course.updates.get()
    polled = api(clinician).get(f"/api/v1/updates/{update.public_id}/")
    assert polled.data["status"] == "queued"
    assert polled.data["is_finished"] is False
    assert polled.data["started_at"] is None


def test_what_if_returns_the_forecast_of_a_typed_regimen(clinician, pharmacist, course) -> None:
    record_doses_and_a_level(api(clinician), course.public_id)
    response = api(pharmacist).post(
        f"{COURSES}{course.public_id}/what-if/",
        {"dose_mg": 1500, "interval_h": 12, "duration_h": 1.5, "route": "iv_infusion"},
        format="json",
    )
    assert response.status_code == 200, response.data
    forecast = response.data["plot"]["forecast"]
    assert forecast["label"] == "what if: 1500 mg every 12 h"
    assert len(forecast["times_h"]) == len(forecast["map"]) == len(forecast["bands"]["0.95"])
    assert forecast["times_h"][0] >= response.data["start_h"] - 1e-9
    assert response.data["regimen"]["dose_mg"] == 1500
    assert response.data["regimen"]["start_h"] == pytest.approx(response.data["start_h"])
    assert response.data["predicted"]["unit"] == "mg/L"  # the course's trough target
    figures = response.data["figures"]
    assert figures["metric_median"] == response.data["predicted"]["median"]
    assert {e["metric"] for e in figures["exposure"]} == {"auc24", "trough", "cmax"}
    assert figures["order"]["rate_mg_per_h"] == pytest.approx(1000)
    assert not Recommendation.objects.exists()


def test_what_if_figures_equal_the_candidate_row_of_the_same_regimen(
    clinician, pharmacist, course, django_capture_on_commit_callbacks, celery_eager
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        record_doses_and_a_level(api(clinician), course.public_id)
    update = course.updates.filter(status="succeeded").order_by("-pk").first()
    row = update.results["regimens"][1]  # not the first: any candidate row
    response = api(pharmacist).post(
        f"{COURSES}{course.public_id}/what-if/",
        {
            "dose_mg": row["dose_mg"],
            "interval_h": row["interval_h"],
            "duration_h": row["duration_h"],
            "route": "iv_infusion",
        },
        format="json",
    )
    assert response.status_code == 200, response.data
    figures = response.data["figures"]
    for key in ("metric_median", "pta", "p_toxic"):
        if row[key] is None:
            assert figures[key] is None
        else:
            assert figures[key] == pytest.approx(row[key], rel=1e-9, abs=1e-12), key
    assert figures["metric_ci90"] == pytest.approx(row["metric_ci90"], rel=1e-9)
    for ours, theirs in zip(figures["exposure"], row["exposure"], strict=True):
        assert ours["median"] == pytest.approx(theirs["median"], rel=1e-9)


@pytest.mark.parametrize(
    ("regimen", "field"),
    [
        ({"dose_mg": 0, "interval_h": 12}, "dose_mg"),
        ({"dose_mg": 1000, "interval_h": 0}, "interval_h"),
        ({"dose_mg": 1000}, "interval_h"),
        ({"dose_mg": 1000, "interval_h": 12, "n_doses": 0}, "n_doses"),
    ],
)
def test_a_bad_what_if_regimen_is_refused_with_the_field(clinician, course, regimen, field) -> None:
    response = api(clinician).post(f"{COURSES}{course.public_id}/what-if/", regimen, format="json")
    assert response.status_code == 400
    assert field in response.data, response.data


@pytest.mark.parametrize(
    ("regimen", "field", "words"),
    [
        ({"dose_mg": 1000, "interval_h": 12, "route": "intrathecal"}, "route", "not intrathecal"),
        (
            {"dose_mg": 1000, "interval_h": 12, "route": "iv_bolus", "duration_h": 2},
            "duration_h",
            "no infusion",
        ),
        ({"dose_mg": 1000, "interval_h": 12, "route": "iv_infusion"}, "duration_h", "needs its duration"),
        (
            {"dose_mg": 2000, "interval_h": 12, "route": "iv_infusion", "duration_h": 1},
            "duration_h",
            "2.00 h",
        ),
    ],
)
def test_a_what_if_breaking_the_administration_rules_is_a_400(
    clinician, course, regimen, field, words
) -> None:
    record_doses_and_a_level(api(clinician), course.public_id)
    response = api(clinician).post(f"{COURSES}{course.public_id}/what-if/", regimen, format="json")
    assert response.status_code == 400
    assert words in response.data[field][0], response.data
