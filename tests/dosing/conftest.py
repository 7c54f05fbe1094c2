"""Dosing fixtures: a published test model (one compartment, weight on CL and V), a consenting patient."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest


@pytest.fixture
def clinician(db: None) -> Any:
    from accounts.roles import Role
    from tests.factories import UserFactory, care_team

    user = UserFactory(username="clinician", roles=[Role.CLINICIAN])
    care_team(user)  # the ICU team: the test patients lie in the ICU
    return user


@pytest.fixture
def pharmacist(db: None) -> Any:
    from accounts.roles import Role
    from tests.factories import UserFactory, care_team

    user = UserFactory(username="pharmacist", roles=[Role.PHARMACIST])
    care_team(user)
    return user


@pytest.fixture
def published_version(db: None) -> Any:
    from accounts.roles import Role
    from tests.factories import UserFactory, published_test_version

    return published_test_version(
        curator=UserFactory(username="curator-one", roles=[Role.MODEL_CURATOR]),
        second_curator=UserFactory(username="curator-two", roles=[Role.MODEL_CURATOR]),
    )


@pytest.fixture
def patient(clinician: Any) -> Any:
    from tests.factories import consenting_icu_patient

    return consenting_icu_patient(mrn="MRN-0001", user=clinician)


@pytest.fixture
def course(patient: Any, published_version: Any, clinician: Any) -> Any:
    from dosing import services

    return services.course_open(
        patient=patient,
        model_version=published_version,
        indication="test infection",
        target={"metric": "trough", "low": 5, "high": 10},
        user=clinician,
    )


def record_doses_every_12_h(*, course: Any, user: Any, start: dt.datetime, count: int = 3) -> None:
    """``count`` 1000 mg one-hour infusions every 12 h from ``start``, recorded through the services."""
    from dosing import services

    for i in range(count):
        services.dose_record(
            course=course,
            given_at=start + dt.timedelta(hours=12 * i),
            amount_mg=1000,
            route="iv_infusion",
            infusion_duration_h=1,
            user=user,
        )


@pytest.fixture
def dosed_course(course: Any, clinician: Any) -> Any:
    """The course with one 1000 mg infusion given 10 h ago."""
    from django.utils import timezone

    from dosing import services

    services.dose_record(
        course=course,
        given_at=timezone.now() - dt.timedelta(hours=10),
        amount_mg=1000,
        route="iv_infusion",
        infusion_duration_h=1,
        user=clinician,
    )
    return course
