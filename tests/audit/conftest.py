"""Audit fixtures: the dosing fixtures (a published model, a consenting ICU patient, a course), an auditor."""

from __future__ import annotations

from typing import Any

import pytest

from tests.dosing import conftest as dosing_fixtures

# The dosing fixtures: a published test model, a consenting ICU patient, a course, ICU staff.
clinician, pharmacist = dosing_fixtures.clinician, dosing_fixtures.pharmacist
patient, course, published_version = (
    dosing_fixtures.patient,
    dosing_fixtures.course,
    dosing_fixtures.published_version,
)


@pytest.fixture
def auditor(db: None) -> Any:
    from accounts.roles import Role
    from tests.factories import UserFactory

    return UserFactory(username="auditor", roles=[Role.AUDITOR])
