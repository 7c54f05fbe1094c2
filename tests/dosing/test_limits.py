"""The horizon limits of a regimen typed in a request (``dosing.limits``): refused before the engine runs.

The test drug's usual intervals are 12 and 24 h, so its shortest allowed interval is 6 h. ``dosed_course``
has one dose 10 h ago, so a 12-hourly what-if starts 2 h from now: 55 doses end at 662 h, 56 at 674 h.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from dosing import limits, services
from dosing.models import Recommendation
from models_catalog.models import Drug
from tests.dosing.api_helpers import api

pytestmark = pytest.mark.django_db
COURSES = "/api/v1/courses/"
BASE = {"dose_mg": 1000, "interval_h": 12, "duration_h": 1, "route": "iv_infusion"}


def _what_if(user, course, **changes):
    payload = {**BASE, **changes}
    return api(user).post(f"{COURSES}{course.public_id}/what-if/", payload, format="json")


@pytest.mark.parametrize(
    ("options", "shortest"), [([12, 24], 6.0), ([8, 12, 24], 4.0), ([0.75], 0.5), ([], 0.5), (None, 0.5)]
)
def test_the_shortest_interval_is_half_the_drugs_shortest_usual_one(options, shortest) -> None:
    assert limits.shortest_interval_h(Drug(name="x", interval_options_h=options)) == shortest


def test_an_interval_shorter_than_half_the_drugs_shortest_is_refused(clinician, dosed_course) -> None:
    response = _what_if(clinician, dosed_course, interval_h=3, dose_mg=100)
    assert response.status_code == 400, response.data
    assert "at least every 6 h" in response.data["interval_h"][0]
    assert "12 h" in response.data["interval_h"][0]  # names the drug's interval it comes from
    assert _what_if(clinician, dosed_course, interval_h=6, dose_mg=100, duration_h=1).status_code == 200


def test_a_count_whose_last_dose_ends_beyond_four_weeks_is_refused(clinician, dosed_course) -> None:
    response = _what_if(clinician, dosed_course, n_doses=56)
    assert response.status_code == 400, response.data
    message = response.data["n_doses"][0]
    assert "672 h" in message and "at most 55 doses" in message
    accepted = _what_if(clinician, dosed_course, n_doses=55)
    assert accepted.status_code == 200, accepted.data
    assert accepted.data["regimen"]["n_doses"] == 55


def test_100_doses_every_336_h_is_refused_without_running_the_engine(
    clinician, dosed_course, monkeypatch
) -> None:
    """Issue 14 measured this at ~6 s: now the limits answer before the course's case is even built."""

    def never(*args, **kwargs):
        raise AssertionError("the engine ran")

    monkeypatch.setattr(services.adapters, "course_case", never)
    response = _what_if(clinician, dosed_course, n_doses=100, interval_h=336)
    assert response.status_code == 400
    assert "at most 2 doses" in response.data["n_doses"][0]


def test_a_count_of_doses_weeks_apart_is_told_to_leave_the_count_empty(clinician, dosed_course) -> None:
    response = _what_if(clinician, dosed_course, n_doses=1, interval_h=24 * 7 * 8)
    assert response.status_code == 400
    message = response.data["n_doses"][0]
    assert message.startswith("1 dose every 1344 h") and message.endswith(
        "leave the count empty (until further notice)"
    )
    assert "at most 0 doses" not in message


def test_more_than_100_doses_is_refused_with_what_to_do(clinician, dosed_course) -> None:
    response = _what_if(clinician, dosed_course, n_doses=101, interval_h=6)
    assert response.status_code == 400
    assert response.data["n_doses"] == [limits.TOO_MANY_DOSES]


@pytest.mark.parametrize("ahead_h", [24 * 365, 169])
def test_a_first_dose_more_than_a_week_ahead_is_refused(clinician, dosed_course, ahead_h) -> None:
    start = timezone.now() + dt.timedelta(hours=ahead_h)
    response = _what_if(clinician, dosed_course, start_at=start.isoformat())
    assert response.status_code == 400, response.data
    assert "at most 168 h (7 days) ahead" in response.data["start_at"][0]


def test_a_first_dose_within_the_week_is_forecast(clinician, dosed_course) -> None:
    start = timezone.now() + dt.timedelta(hours=100)
    response = _what_if(clinician, dosed_course, start_at=start.isoformat(), n_doses=10)
    assert response.status_code == 200, response.data
    assert response.data["start_h"] == pytest.approx(110.0, abs=0.05)  # the dose 10 h ago is t = 0


def test_the_what_if_page_shows_the_limits_on_the_fields(client, clinician, dosed_course) -> None:
    client.force_login(clinician)
    url = f"/courses/{dosed_course.public_id}/what-if/"
    response = client.get(url, {**BASE, "interval_h": "3", "dose_mg": "100"})
    form = response.context["what_if_form"]
    assert "at least every 6 h" in form.errors["interval_h"][0]
    assert "at least every 6 h" in response.content.decode()
    ahead = timezone.localtime(timezone.now() + dt.timedelta(days=30))
    response = client.get(url, {**BASE, "start_at": ahead.strftime("%Y-%m-%dT%H:%M")})
    form = response.context["what_if_form"]
    assert "at most 168 h" in form.errors["start_at"][0]
    assert response.context["what_if"] is None  # no plot for a refused regimen


@pytest.fixture
def recommendation(course, clinician, django_capture_on_commit_callbacks, celery_eager) -> Recommendation:
    start = timezone.now() - dt.timedelta(hours=20)
    with django_capture_on_commit_callbacks(execute=True):
        services.dose_record(
            course=course,
            given_at=start,
            amount_mg=1000,
            route="iv_infusion",
            infusion_duration_h=1,
            user=clinician,
        )
        services.level_record(
            course=course, sampled_at=start + dt.timedelta(hours=11.5), value=7.0, unit="mg/L", user=clinician
        )
    return Recommendation.objects.get(course=course, status=Recommendation.Status.PENDING_REVIEW)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"interval_h": 3}, "interval_h: every 3 h is too often"),
        ({"start_at": "in 10 days"}, "start_at: the first dose lies"),
    ],
)
def test_a_pharmacists_change_meets_the_same_limits(recommendation, pharmacist, change, expected) -> None:
    if change.get("start_at"):
        change = {"start_at": (timezone.now() + dt.timedelta(days=10)).isoformat()}
    regimen = {"dose_mg": 250, "interval_h": 12, "duration_h": 1, **change}
    with pytest.raises(ValidationError) as refused:
        services.modification_preview(recommendation=recommendation, user=pharmacist, final_regimen=regimen)
    assert any(expected in message for message in refused.value.message_dict["final_regimen"])
    response = api(pharmacist).post(
        f"/api/v1/recommendations/{recommendation.public_id}/preview-change/",
        {"final_regimen": regimen},
        format="json",
    )
    assert response.status_code == 400
    assert any(expected in message for message in response.data["final_regimen"])


def test_an_eight_weekly_interval_is_a_valid_interval_but_its_forecast_is_refused_past_four_weeks(
    clinician, dosed_course
) -> None:
    """Infliximab runs every 4-8 weeks: such an interval is physical (ranges), but a what-if of it would
    reach past the 28-day horizon, which bounds the engine's work: a clear field error, never a 503."""
    Drug.objects.filter(pk=dosed_course.drug_id).update(interval_options_h=[672, 1344])
    response = _what_if(clinician, dosed_course, interval_h=1344, n_doses=1)
    assert response.status_code == 400, response.data
    assert "interval_h" not in response.data
    assert "672 h" in response.data["n_doses"][0]
    too_long = _what_if(clinician, dosed_course, interval_h=24 * 7 * 13, n_doses=1)
    assert too_long.status_code == 400 and "interval_h" in too_long.data
