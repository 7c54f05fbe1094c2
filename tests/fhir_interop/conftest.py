"""Fixtures: the dosing tests' users and patient; a course on the library's vancomycin model (Goti 2018)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.dosing.conftest import clinician, patient, pharmacist  # noqa: F401

LIBRARY = Path(__file__).resolve().parents[2] / "models_catalog" / "library"


@pytest.fixture
def vancomycin_version(db: None, tmp_path: Path) -> Any:
    """The library with its drugs and the one vancomycin model, published by two curators."""
    from accounts.roles import Role
    from models_catalog.library import library_load
    from models_catalog.models import ModelVersion
    from tests.factories import UserFactory

    (tmp_path / "models").mkdir()
    for name in ("drugs.json", "README.md"):
        shutil.copy(LIBRARY / name, tmp_path / name)
    shutil.copy(LIBRARY / "models" / "vancomycin-goti-2018.json", tmp_path / "models")
    first = UserFactory(username="curator-a", roles=[Role.MODEL_CURATOR])
    second = UserFactory(username="curator-b", roles=[Role.MODEL_CURATOR])
    library_load(directory=tmp_path, requested_by=first, approved_by=second)
    return ModelVersion.objects.published().get(model_id="vancomycin-goti-2018")


@pytest.fixture
def course(patient: Any, vancomycin_version: Any, clinician: Any) -> Any:  # noqa: F811
    import datetime as dt

    from django.utils import timezone

    from dosing import services
    from models_catalog.models import TargetProtocol
    from patients import services as patient_services

    measured = timezone.now() - dt.timedelta(days=2)
    for kind, value, unit in (("height", 170, "cm"), ("serum_creatinine", 1.0, "mg/dL")):
        patient_services.measurement_record(
            patient=patient, kind=kind, value=value, unit=unit, measured_at=measured, user=clinician
        )
    return services.course_open(
        patient=patient,
        model_version=vancomycin_version,
        indication="MRSA bacteraemia",
        user=clinician,
        no_organ_support_confirmed=True,
        target_protocol=TargetProtocol.objects.filter(drug__name="vancomycin", active=True).first(),
        missing_data_reason="",
    )
