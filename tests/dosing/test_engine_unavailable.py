"""An engine call refused or out of time in a request: 503 with Retry-After, JSON under /api/ and a page in
the browser, never a 500 and never a partial result; nothing is stored (``mipd_web.engine_calls``)."""

from __future__ import annotations

import threading

import pytest
from django.test import override_settings

from mipd_web import engine_calls
from tests.dosing.api_helpers import api, counts

REGIMEN = {"dose_mg": 1000, "interval_h": 12, "duration_h": 1, "route": "iv_infusion"}


@pytest.fixture
def slots_taken(monkeypatch):
    """Every engine slot of this process held by someone else."""
    monkeypatch.setattr(engine_calls, "QUEUE_WAIT_S", 0.05)
    slots = threading.BoundedSemaphore(1)
    slots.acquire()
    monkeypatch.setattr(engine_calls, "_semaphore", lambda: (1, slots))
    return slots


@pytest.mark.django_db
def test_the_api_answers_503_with_retry_after_when_the_engine_is_busy(
    clinician, dosed_course, slots_taken
) -> None:
    before = counts()
    response = api(clinician).post(
        f"/api/v1/courses/{dosed_course.public_id}/what-if/", REGIMEN, format="json"
    )
    assert response.status_code == 503
    assert response["Retry-After"] == str(engine_calls.BUSY_RETRY_AFTER_S)
    body = response.json()
    assert body["code"] == "engine_busy" and "retry in" in body["detail"]
    assert counts() == before


@pytest.mark.django_db
def test_the_api_answers_503_and_no_figures_when_the_budget_runs_out(clinician, dosed_course) -> None:
    """The real engine stops at its first check after the budget: no plot, no figures, nothing stored."""
    before = counts()
    with override_settings(ENGINE_REQUEST_BUDGET_S=1e-6):
        response = api(clinician).post(
            f"/api/v1/courses/{dosed_course.public_id}/what-if/", REGIMEN, format="json"
        )
    assert response.status_code == 503
    assert response["Retry-After"] == str(engine_calls.DEADLINE_RETRY_AFTER_S)
    body = response.json()
    assert body["code"] == "engine_deadline" and "shorter forecast" in body["detail"]
    assert "plot" not in body and "figures" not in body
    assert counts() == before
    ok = api(clinician).post(f"/api/v1/courses/{dosed_course.public_id}/what-if/", REGIMEN, format="json")
    assert ok.status_code == 200  # with the default budget the same request is answered


@pytest.mark.django_db
def test_the_what_if_page_says_the_engine_is_busy_and_to_retry(
    client, clinician, dosed_course, slots_taken
) -> None:
    client.force_login(clinician)
    page = f"/courses/{dosed_course.public_id}/"
    response = client.get(f"{page}what-if/", REGIMEN, HTTP_REFERER=f"http://testserver{page}")
    assert response.status_code == 503
    assert response["Retry-After"] == str(engine_calls.BUSY_RETRY_AFTER_S)
    assert "engine_busy.html" in [template.name for template in response.templates]
    text = response.content.decode()
    assert "The dosing engine is busy" in text and "send it again" in text
    assert f'href="http://testserver{page}"' in text


@pytest.mark.django_db
def test_a_foreign_referer_is_not_linked(client, clinician, dosed_course, slots_taken) -> None:
    client.force_login(clinician)
    response = client.get(
        f"/courses/{dosed_course.public_id}/what-if/", REGIMEN, HTTP_REFERER="https://evil.example/x"
    )
    assert response.status_code == 503
    assert "evil.example" not in response.content.decode()


@pytest.fixture
def recommendation(course, clinician, django_capture_on_commit_callbacks, celery_eager):
    import datetime as dt

    from django.utils import timezone

    from dosing import services
    from dosing.models import Recommendation

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


@pytest.mark.django_db
def test_a_signed_change_whose_forecast_runs_out_of_time_signs_nothing(recommendation, pharmacist) -> None:
    """The review recomputes the changed regimen in its transaction: stopped, it rolls back whole."""
    from dosing import services
    from dosing.models import Recommendation
    from mipd_web.engine_calls import EngineTimedOut, engine_call
    from tests.auth import next_totp_code
    from tests.factories import PASSWORD

    change = {"dose_mg": 1000, "interval_h": 12, "duration_h": 1}
    preview = services.modification_preview(
        recommendation=recommendation, user=pharmacist, final_regimen=change
    )
    with pytest.raises(EngineTimedOut):
        engine_call(
            services.recommendation_review,
            budget_s=1e-6,
            recommendation=recommendation,
            user=pharmacist,
            decision="modify",
            password=PASSWORD,
            otp_code=next_totp_code(pharmacist),
            note="rounded to the vial",
            final_regimen=change,
            forecast_token=preview["preview_token"],
        )
    recommendation.refresh_from_db()
    assert recommendation.status == Recommendation.Status.PENDING_REVIEW
    assert recommendation.reviewed_by is None and recommendation.final_regimen in (None, {})
