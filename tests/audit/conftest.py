"""Audit fixtures: the dosing fixtures (a published model, a consenting ICU patient, a course), an auditor."""

from __future__ import annotations

from typing import Any

import pytest

from tests.dosing.conftest import clinician, course, patient, pharmacist, published_version  # noqa: F401


@pytest.fixture
def auditor(db: None) -> Any:
    from accounts.roles import Role
    from tests.factories import UserFactory

    return UserFactory(username="auditor", roles=[Role.AUDITOR])
