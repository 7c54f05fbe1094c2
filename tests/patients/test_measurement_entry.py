"""Measurements: model-specific quantities are checked like the usual ones; wrong entries are struck."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from patients import services
from patients.models import CovariateMeasurement

pytestmark = pytest.mark.django_db


def record(patient, user, kind, value, unit, **kwargs):
    return services.measurement_record(
        patient=patient, kind=kind, value=value, unit=unit, measured_at=timezone.now(), user=user, **kwargs
    )


@pytest.mark.parametrize(
    ("kind", "value", "unit", "message"),
    [
        ("donor_deceased", 5, "flag", "1 \\(yes\\) or 0"),
        ("hematocrit", 35, "L/L", "not a percentage"),
        ("hematocrit", 0.35, "%", "recorded in 'L/L'"),
    ],
)
def test_model_specific_quantities_are_checked(patient, clinician, kind, value, unit, message) -> None:
    declared = {"donor_deceased": "flag", "hematocrit": "L/L"}[kind]
    with pytest.raises(ValidationError, match=message):
        record(patient, clinician, kind, value, unit, declared_unit=declared)
    assert not CovariateMeasurement.objects.filter(kind=kind).exists()


def test_the_gestational_age_at_birth_is_stored_in_weeks_within_20_to_45(patient, clinician) -> None:
    stored = record(patient, clinician, "gestational_age_at_birth", 27.5, "weeks")
    assert (stored.value, stored.unit) == (27.5, "weeks")
    with pytest.raises(ValidationError, match="plausible range 20-45"):
        record(patient, clinician, "gestational_age_at_birth", 275, "weeks")  # days typed as weeks
    with pytest.raises(ValidationError, match="unknown unit"):
        record(patient, clinician, "gestational_age_at_birth", 193, "days")


def test_an_unknown_kind_is_refused(patient, clinician) -> None:
    with pytest.raises(ValidationError, match="unknown measurement kind"):
        record(patient, clinician, "shoe_size", 42, "EU")


def test_a_wrong_measurement_is_struck_with_who_and_why(patient, clinician) -> None:
    weight = record(patient, clinician, "weight", 80, "kg")
    services.entry_mark_in_error(entry=weight, reason="another patient's", user=clinician)
    weight.refresh_from_db()
    assert weight.entered_in_error
    assert weight.error_marked_by == clinician
    assert weight.error_marked_at <= timezone.now() + dt.timedelta(seconds=1)
    with pytest.raises(ValidationError, match="already"):
        services.entry_mark_in_error(entry=weight, reason="again", user=clinician)
