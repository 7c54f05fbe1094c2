"""The database lost mid-request (PostgreSQL restarting, a dropped connection): 503 with Retry-After and
nothing stored, never a 500 (tests/faults/ restarts a real PostgreSQL; this pins the answer itself)."""

from __future__ import annotations

import pytest
from django.db import InterfaceError, OperationalError

from dosing import services
from dosing.models import DrugLevel
from tests.dosing.api_helpers import api

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("error", [OperationalError, InterfaceError])
def test_a_level_post_answers_503_when_the_database_goes_away(clinician, dosed_course, monkeypatch, error):
    def lost(**kwargs):
        raise error("server closed the connection unexpectedly")

    monkeypatch.setattr(services, "level_record", lost)
    before = DrugLevel.objects.count()
    response = api(clinician).post(
        f"/api/v1/courses/{dosed_course.public_id}/levels/",
        {"sampled_at": "2026-01-01T00:00:00Z", "value": 10, "unit": "mg/L"},
        format="json",
    )
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response.json()["code"] == "database_unavailable"
    assert DrugLevel.objects.count() == before


def test_a_page_answers_a_self_contained_503_when_the_database_goes_away(
    client, clinician, dosed_course, monkeypatch
) -> None:
    from dosing import views

    def lost(*args, **kwargs):
        raise OperationalError("could not connect to server")

    client.force_login(clinician)
    monkeypatch.setattr(views.selectors, "course_get", lost)
    response = client.get(f"/courses/{dosed_course.public_id}/")
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert (
        b"The database is unavailable" in response.content
        and b"nothing from this request" in response.content
    )


def test_other_errors_are_not_disguised_as_an_outage(clinician, dosed_course, monkeypatch) -> None:
    def bug(**kwargs):
        raise ZeroDivisionError

    monkeypatch.setattr(services, "level_record", bug)
    with pytest.raises(ZeroDivisionError):
        api(clinician).post(
            f"/api/v1/courses/{dosed_course.public_id}/levels/",
            {"sampled_at": "2026-01-01T00:00:00Z", "value": 10, "unit": "mg/L"},
            format="json",
        )
