"""What the pages polled and opened on every round read: few queries, never the big stored JSON they do not
show (the engine's inputs, the results of older updates)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from dosing import selectors, services
from tests.auth import login
from tests.dosing.conftest import record_doses_every_12_h

pytestmark = pytest.mark.django_db

UPDATE_TABLE = '"dosing_bayesianupdate"'


def update_columns_read(queries: CaptureQueriesContext) -> list[str]:
    """The SELECTs on the update table that read its inputs or results."""
    return [
        query["sql"]
        for query in queries.captured_queries
        if query["sql"].startswith("SELECT")
        and (f'{UPDATE_TABLE}."inputs"' in query["sql"] or f'{UPDATE_TABLE}."results"' in query["sql"])
    ]


@pytest.fixture
def course_with_levels(course, clinician, django_capture_on_commit_callbacks, celery_eager):
    """A course with three doses and two levels: three updates, each with its recommendation."""
    start = timezone.now() - dt.timedelta(hours=30)
    with django_capture_on_commit_callbacks(execute=True):
        record_doses_every_12_h(course=course, user=clinician, start=start)
    for after_h, value in ((11.5, 6.2), (23.5, 7.0)):
        with django_capture_on_commit_callbacks(execute=True):
            services.level_record(
                course=course,
                sampled_at=start + dt.timedelta(hours=after_h),
                value=value,
                unit="mg/L",
                user=clinician,
            )
    assert course.recommendations.count() >= 3
    return course


def test_the_status_poll_reads_no_stored_inputs_or_results(client, course_with_levels, clinician) -> None:
    login(client, clinician)
    url = reverse("dosing:course_status", args=[course_with_levels.public_id])
    with CaptureQueriesContext(connection) as queries:
        status = client.get(url).json()
    latest = course_with_levels.updates.order_by("-requested_at", "-pk").first()
    assert status["update"] == str(latest.public_id)
    assert status["status"] == "succeeded" and status["finished"] is True
    assert status["total_s"] == latest.timings_s.get("total_s")
    assert update_columns_read(queries) == []


def test_the_api_lists_recommendations_without_a_query_per_row(
    client, course_with_levels, clinician, django_capture_on_commit_callbacks
) -> None:
    login(client, clinician)
    url = reverse("api:course-recommendations", args=[course_with_levels.public_id])
    client.get(url)  # the session's first request does more (its activity stamp)
    with CaptureQueriesContext(connection) as queries:
        listed = client.get(url).json()
    n_queries = len(queries.captured_queries)
    assert [row["update"] for row in listed] == [
        str(rec.update.public_id) for rec in course_with_levels.recommendations.order_by("-created_at", "-pk")
    ]
    assert update_columns_read(queries) == []
    start = timezone.now() - dt.timedelta(hours=30)
    with django_capture_on_commit_callbacks(execute=True):  # one more recommendation, as many queries
        services.level_record(
            course=course_with_levels,
            sampled_at=start + dt.timedelta(hours=26),
            value=9.0,
            unit="mg/L",
            user=clinician,
        )
    with CaptureQueriesContext(connection) as queries:
        listed_again = client.get(url).json()
    assert len(listed_again) == len(listed) + 1
    assert len(queries.captured_queries) == n_queries


def test_the_course_page_reads_the_engine_inputs_of_no_update(client, course_with_levels, clinician) -> None:
    login(client, clinician)
    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("dosing:course", args=[course_with_levels.public_id]))
    assert page.status_code == 200
    inputs_read = [q["sql"] for q in queries.captured_queries if f'{UPDATE_TABLE}."inputs"' in q["sql"]]
    assert inputs_read == []
    results_read = [q["sql"] for q in queries.captured_queries if f'{UPDATE_TABLE}."results"' in q["sql"]]
    assert len(results_read) == 1  # the shown update's, once


def test_the_results_panel_shows_a_new_update_at_once(
    client, course_with_levels, clinician, django_capture_on_commit_callbacks
) -> None:
    login(client, clinician)
    url = reverse("dosing:course_results", args=[course_with_levels.public_id])
    shown = course_with_levels.updates.filter(status="succeeded").order_by("-pk").first()
    panel = client.get(url).content.decode()
    assert f"update #{shown.pk} finished" in panel
    assert 'id="timeline"' not in panel  # the page's part, not fetched again with the results
    with django_capture_on_commit_callbacks(execute=True):
        services.level_record(
            course=course_with_levels,
            sampled_at=timezone.now() - dt.timedelta(hours=3),
            value=8.5,
            unit="mg/L",
            user=clinician,
        )
    newer = course_with_levels.updates.filter(status="succeeded").order_by("-pk").first()
    assert newer.pk > shown.pk
    panel = client.get(url).content.decode()
    assert f"update #{newer.pk} finished" in panel
    assert f"update #{shown.pk} finished" not in panel
    recommendation = course_with_levels.recommendations.get(update=newer)
    assert str(recommendation.public_id) in panel  # its report link


def test_a_recommendation_of_an_older_update_shows_its_own_proposal(course_with_levels) -> None:
    recommendations = list(course_with_levels.recommendations.order_by("pk"))
    older, newest = recommendations[0], recommendations[-1]
    done = newest.update
    assert selectors.update_proposal(recommendation=newest, done=done) == done.results["recommendation"]
    proposal = selectors.update_proposal(recommendation=older, done=done)
    assert proposal == older.update.results["recommendation"]
    assert proposal != done.results["recommendation"]


def test_the_course_page_picks_the_last_dose_and_held_levels_from_one_read(course_with_levels) -> None:
    from dosing.models import DrugLevel

    course = course_with_levels
    doses, levels = list(course.doses.order_by("given_at", "pk")), list(course.levels.order_by("sampled_at"))
    type(doses[-1]).objects.filter(pk=doses[-1].pk).update(entered_in_error=True, error_reason="typo")
    DrugLevel.objects.filter(pk=levels[0].pk).update(plausibility=DrugLevel.Plausibility.HELD)
    DrugLevel.objects.filter(pk=levels[1].pk).update(
        plausibility=DrugLevel.Plausibility.PENDING, excluded=True, exclusion_reason="haemolysed"
    )
    doses, levels = list(course.doses.all()), list(course.levels.all())
    with CaptureQueriesContext(connection) as queries:
        picked = (
            selectors.last_dose(course=course, doses=doses),
            selectors.held_levels(course=course, levels=levels),
            [entry for entry in selectors.course_timeline(course=course, doses=doses, levels=levels)],
        )
    assert picked == (
        selectors.last_dose(course=course),
        selectors.held_levels(course=course),
        selectors.course_timeline(course=course),
    )
    assert picked[0] == doses[1] and picked[1] == [levels[0]]  # not the dose in error, not the excluded level
    assert not any(
        '"dosing_doseadministration"' in q["sql"] or '"dosing_druglevel"' in q["sql"] for q in queries
    )
