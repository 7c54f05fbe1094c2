"""A morbidly obese adult on vancomycin Smit 2020: the obesity flag the clinician records selects the model's
variability of clearance, and a course cannot be dosed until it is recorded."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from dosing import services
from dosing.models import BayesianUpdate, TherapyCourse
from models_catalog.models import ModelVersion, TargetProtocol
from patients import services as patients
from patients.models import ConsentRecord

pytestmark = pytest.mark.django_db


@pytest.fixture
def library(db: None) -> None:
    from accounts.roles import Role
    from models_catalog.library import library_load
    from tests.factories import UserFactory

    library_load(
        requested_by=UserFactory(username="curator-a", roles=[Role.MODEL_CURATOR]),
        approved_by=UserFactory(username="curator-b", roles=[Role.MODEL_CURATOR]),
    )


@pytest.fixture
def run_updates(django_capture_on_commit_callbacks: Any, celery_eager: None) -> Any:
    return lambda: django_capture_on_commit_callbacks(execute=True)


def obese_adult(clinician: Any, *, flag: int | None) -> Any:
    now = timezone.now()
    patient = patients.patient_create(
        mrn="OBESE-1",
        family_name="Obese",
        given_name="Test",
        birth_date=(now - dt.timedelta(days=round(365.25 * 41))).date(),
        sex="female",
        user=clinician,
    )
    measured = now - dt.timedelta(hours=30)
    for kind, value, unit in (
        ("weight", 152, "kg"),
        ("height", 165, "cm"),
        ("serum_creatinine", 0.8, "mg/dL"),
    ):
        patients.measurement_record(
            patient=patient, kind=kind, value=value, unit=unit, measured_at=measured, user=clinician
        )
    if flag is not None:
        patients.measurement_record(
            patient=patient,
            kind="morbidly_obese",
            value=flag,
            unit="flag",
            measured_at=measured,
            user=clinician,
        )
    patients.consent_record(
        patient=patient, scope=ConsentRecord.Scope.MODEL_BASED_DOSING, status="granted", user=clinician
    )
    return patient


def open_course(clinician: Any, patient: Any) -> TherapyCourse:
    return services.course_open(
        patient=patient,
        model_version=ModelVersion.objects.published().get(model_id="vancomycin-smit-2020"),
        target_protocol=TargetProtocol.objects.filter(
            drug__name="vancomycin", target__metric="auc24"
        ).first(),
        indication="cellulitis, MRSA (test)",
        user=clinician,
        no_organ_support_confirmed=True,
    )


def test_an_obese_adult_is_dosed_with_the_recorded_obesity_flag(library, clinician, run_updates) -> None:
    patient = obese_adult(clinician, flag=1)
    with run_updates():
        course = open_course(clinician, patient)
        first = timezone.now() - dt.timedelta(hours=24)
        for i in range(2):
            services.dose_record(
                course=course,
                given_at=first + dt.timedelta(hours=12 * i),
                amount_mg=2500,
                route="iv_infusion",
                infusion_duration_h=4.5,
                user=clinician,
            )
        services.level_record(
            course=course,
            sampled_at=first + dt.timedelta(hours=11.5),
            value=8.1,
            unit="mg/L",
            assay="immunoassay (test)",
            user=clinician,
        )
    update = course.updates.order_by("-pk").first()
    assert update.status == BayesianUpdate.Status.SUCCEEDED, update.error
    assert update.inputs["covariates"]["OBESE"] == 1
    assert update.inputs["covariates"]["WT"] == pytest.approx(152)
    assert course.recommendations.get().regimen["dose_mg"] <= 3000  # the catalog's single-dose cap


def test_without_the_obesity_flag_the_course_says_what_to_record(library, clinician) -> None:
    with pytest.raises(ValidationError, match="morbidly obese"):
        open_course(clinician, obese_adult(clinician, flag=None))
    assert not TherapyCourse.objects.exists()
