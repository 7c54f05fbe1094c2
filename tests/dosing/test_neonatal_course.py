"""A neonate on vancomycin Dao 2020: the postmenstrual age comes from the recorded gestational age at birth
and the birth date, the domain accepts the neonate, and the Bayesian update runs with the covariates the
model needs. Expected values are worked by hand (PMA = gestational age + days since birth / 7).
"""

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


def neonate(clinician: Any, *, days_old: int, gestational_age_weeks: float | None) -> Any:
    now = timezone.now()
    patient = patients.patient_create(
        mrn="NEO-1",
        family_name="Neonate",
        given_name="Test",
        birth_date=timezone.localtime(now).date() - dt.timedelta(days=days_old),
        sex="female",
        user=clinician,
    )
    measured = now - dt.timedelta(hours=30)
    patients.measurement_record(
        patient=patient, kind="weight", value=1.3, unit="kg", measured_at=measured, user=clinician
    )
    patients.measurement_record(
        patient=patient,
        kind="serum_creatinine",
        value=50,
        unit="umol/L",
        measured_at=measured,
        user=clinician,
    )
    if gestational_age_weeks is not None:
        patients.measurement_record(
            patient=patient,
            kind="gestational_age_at_birth",
            value=gestational_age_weeks,
            unit="weeks",
            measured_at=measured,
            user=clinician,
        )
    patients.consent_record(
        patient=patient, scope=ConsentRecord.Scope.MODEL_BASED_DOSING, status="granted", user=clinician
    )
    return patient


def open_course(clinician: Any, patient: Any) -> TherapyCourse:
    version = ModelVersion.objects.published().get(model_id="vancomycin-dao-2020")
    protocol = TargetProtocol.objects.filter(drug__name="vancomycin", target__metric="auc24").first()
    return services.course_open(
        patient=patient,
        model_version=version,
        target_protocol=protocol,
        # The catalog's vancomycin steps (250 mg) are for adults: a neonatal course states its own.
        target={**protocol.target, "dose_step_mg": 1, "max_dose_mg": 40},
        indication="late-onset sepsis, CoNS (test)",
        user=clinician,
        no_organ_support_confirmed=True,
    )


def test_a_neonate_is_dosed_on_the_pma_from_the_gestational_age_and_the_birth_date(
    library, clinician, run_updates
) -> None:
    patient = neonate(clinician, days_old=20, gestational_age_weeks=28.0)
    with run_updates():
        course = open_course(clinician, patient)
        first = timezone.now() - dt.timedelta(hours=24)
        for i in range(2):
            services.dose_record(
                course=course,
                given_at=first + dt.timedelta(hours=12 * i),
                amount_mg=20,
                route="iv_infusion",
                infusion_duration_h=1,
                user=clinician,
            )
        services.level_record(
            course=course,
            sampled_at=first + dt.timedelta(hours=11.5),
            value=9.5,
            unit="mg/L",
            assay="immunoassay (test)",
            user=clinician,
        )
    update = course.updates.order_by("-pk").first()
    assert update.status == BayesianUpdate.Status.SUCCEEDED, update.error
    covariates = update.inputs["covariates"]
    # 20 days old now, 19 at the first dose (24 h ago): 28 + 19/7 weeks, within a day's rounding of the clock
    assert covariates["PMA"] == pytest.approx(28.0 + 19.0 / 7.0, abs=1.0 / 7.0)
    assert covariates["SCR"] == pytest.approx(50 / 88.42, rel=1e-9)
    assert covariates["WT"] == pytest.approx(1.3)
    regimen = course.recommendations.get().regimen
    assert regimen["dose_mg"] <= 40 and regimen["dose_mg"] == round(regimen["dose_mg"])


def test_without_the_gestational_age_the_course_says_what_to_record(library, clinician) -> None:
    patient = neonate(clinician, days_old=20, gestational_age_weeks=None)
    with pytest.raises(
        ValidationError, match=r"PMA needs a gestational age at birth measurement \(in weeks\)"
    ):
        open_course(clinician, patient)
    assert not TherapyCourse.objects.exists()
