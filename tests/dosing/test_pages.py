"""Patient and course pages: forms with field errors, the course page with plot data and recommendation."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.urls import reverse
from django.utils import timezone

from dosing import services
from dosing.models import DoseAdministration, DrugLevel
from tests.auth import login
from tests.dosing.conftest import record_doses_every_12_h

pytestmark = pytest.mark.django_db


def local(moment: dt.datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def course_with_level(course, clinician, django_capture_on_commit_callbacks, celery_eager):
    start = timezone.now() - dt.timedelta(hours=30)
    with django_capture_on_commit_callbacks(execute=True):
        record_doses_every_12_h(course=course, user=clinician, start=start)
        services.level_record(
            course=course, sampled_at=start + dt.timedelta(hours=23.5), value=6.2, unit="mg/L", user=clinician
        )
    return course


def test_the_course_page_shows_plot_data_recommendation_and_basis(
    client, course_with_level, clinician
) -> None:
    login(client, clinician)
    page = client.get(reverse("dosing:course", args=[course_with_level.public_id]))
    assert page.status_code == 200
    html = page.content.decode()
    plot = json.loads(html.split('<script id="plot-data" type="application/json">')[1].split("</script>")[0])
    assert plot["band_kind"] == "credible"
    assert plot["forecast"]["label"].startswith("recommended:")
    assert "9 in 10 chance that the trough lies between" in html
    assert "Decision support" in html
    assert "Model-based dosing" in html and "granted" in html
    assert "Test A. A model for tests" in html


def test_the_status_endpoint_reports_the_latest_update(client, course_with_level, clinician) -> None:
    login(client, clinician)
    status = client.get(reverse("dosing:course_status", args=[course_with_level.public_id])).json()
    assert status["status"] == "succeeded"
    assert status["finished"] is True


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"value": "-1", "unit": "mg/L"}, "value", "cannot be negative"),
        ({"value": "5", "unit": "mg/dm"}, "unit", "unknown concentration unit"),
        ({"value": "50000", "unit": "mg/L"}, "value", "plausible maximum"),
        ({"value": "5", "unit": "mg/L", "hours_before_first_dose": 2}, "sampled_at", "before the first dose"),
        ({"unit": "mg/L", "below_lloq": "on"}, "lloq", "limit of quantification"),
    ],
)
def test_bad_levels_get_a_field_error_and_nothing_is_stored(
    client, course_with_level, clinician, data, field, message
) -> None:
    login(client, clinician)
    first = course_with_level.doses.order_by("given_at").first().given_at
    when = first - dt.timedelta(hours=data.pop("hours_before_first_dose", -1))
    before = DrugLevel.objects.count()
    response = client.post(
        reverse("dosing:course_record", args=[course_with_level.public_id, "level"]),
        {"sampled_at": local(when), **data},
    )
    assert response.status_code == 400
    assert message in " ".join(response.context["level_form"].errors.get(field, []))
    assert DrugLevel.objects.count() == before


def test_a_dose_in_the_future_is_refused(client, course_with_level, clinician) -> None:
    login(client, clinician)
    before = DoseAdministration.objects.count()
    response = client.post(
        reverse("dosing:course_record", args=[course_with_level.public_id, "dose"]),
        {
            "given_at": local(timezone.now() + dt.timedelta(days=2)),
            "amount_mg": "1000",
            "route": "iv_infusion",
            "infusion_duration_h": "1",
        },
    )
    assert response.status_code == 400
    assert "not in advance" in " ".join(response.context["dose_form"].errors["given_at"])
    assert DoseAdministration.objects.count() == before


def test_a_weight_of_700_kg_is_refused_on_the_patient_page(client, patient, clinician) -> None:
    login(client, clinician)
    response = client.post(
        reverse("patients:record", args=[patient.public_id, "measurement"]),
        {"kind": "weight", "value": "700", "unit": "kg", "measured_at": local(timezone.now())},
    )
    assert response.status_code == 400
    assert "plausible range" in " ".join(response.context["measurement_form"].errors["value"])
    assert patient.measurements.count() == 1


def test_what_if_puts_the_typed_regimen_in_the_plot(client, course_with_level, clinician) -> None:
    login(client, clinician)
    page = client.get(
        reverse("dosing:what_if", args=[course_with_level.public_id]),
        {"dose_mg": "1500", "interval_h": "24", "duration_h": "1.5", "route": "iv_infusion"},
    )
    html = page.content.decode()
    plot = json.loads(html.split('<script id="plot-data" type="application/json">')[1].split("</script>")[0])
    assert plot["forecast"]["label"] == "what if: 1500 mg every 24 h"


def test_curators_cannot_see_patients(client, patient) -> None:
    from accounts.roles import Role
    from tests.factories import UserFactory

    login(client, UserFactory(username="cur", roles=[Role.MODEL_CURATOR]))
    assert client.get(reverse("patients:detail", args=[patient.public_id])).status_code == 403
