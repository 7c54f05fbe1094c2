"""Patient fixtures: one user per role and a registered patient without any measurement."""

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
def curator(db: None) -> Any:
    from accounts.roles import Role
    from tests.factories import UserFactory

    return UserFactory(username="curator", roles=[Role.MODEL_CURATOR])


@pytest.fixture
def patient(clinician: Any) -> Any:
    from patients import services

    return services.patient_create(
        mrn="MRN-0001",
        family_name="Martin",
        given_name="Alice",
        birth_date=dt.date(1960, 5, 17),
        sex="female",
        ward="ICU",
        user=clinician,
    )
