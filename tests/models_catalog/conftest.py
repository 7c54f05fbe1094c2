"""Catalog fixtures: a drug for the test model, two curators and a clinician.

Django imports stay inside the fixtures: conftest modules load before Django is set up."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def drug(db: None) -> Any:
    from models_catalog.models import Drug

    return Drug.objects.create(name="testdrug", display_name="Testdrug", routes=["iv_bolus"], dose_step_mg=50)


@pytest.fixture
def curator(db: None) -> Any:
    from accounts.roles import Role
    from tests.factories import UserFactory

    return UserFactory(username="curator-a", roles=[Role.MODEL_CURATOR])


@pytest.fixture
def second_curator(db: None) -> Any:
    from accounts.roles import Role
    from tests.factories import UserFactory

    return UserFactory(username="curator-b", roles=[Role.MODEL_CURATOR])


@pytest.fixture
def clinician(db: None) -> Any:
    from accounts.roles import Role
    from tests.factories import UserFactory

    return UserFactory(username="clinician", roles=[Role.CLINICIAN])
