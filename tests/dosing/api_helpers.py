"""Helpers shared by the dosing API tests: an authenticated client and the counts of stored records."""

from __future__ import annotations

from typing import Any

from rest_framework.test import APIClient

from dosing.models import BayesianUpdate, DoseAdministration, DrugLevel, TherapyCourse


def api(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def counts() -> dict[str, int]:
    """What a refused request must leave unchanged."""
    return {
        "courses": TherapyCourse.objects.count(),
        "doses": DoseAdministration.objects.count(),
        "levels": DrugLevel.objects.count(),
        "updates": BayesianUpdate.objects.count(),
    }
