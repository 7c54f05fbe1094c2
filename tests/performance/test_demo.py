"""The demo history gives the performance page figures and the CRRT subgroup's bias alert."""

from __future__ import annotations

import pytest

from performance.demo import LEVELS_PER_PATIENT, N_PATIENTS, demo_history_seed
from performance.models import PerformanceAlert, PerformanceSummary, ProspectiveScore

pytestmark = pytest.mark.django_db


def test_the_history_raises_the_crrt_alert_and_fills_the_summary(
    published_version, clinician, django_capture_on_commit_callbacks, celery_eager
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        line = demo_history_seed(clinician=clinician, model_id=published_version.model_id)
    assert f"{N_PATIENTS * LEVELS_PER_PATIENT} scored levels" in line
    assert ProspectiveScore.objects.count() == N_PATIENTS * LEVELS_PER_PATIENT
    alerts = {(a.dimension, a.band, a.test) for a in PerformanceAlert.objects.all()}
    assert ("renal_support", "CRRT", "bias_high") in alerts  # the subgroup whose clearance is 20 % lower
    assert not any(
        band in ("none", "ward") for _, band, _ in alerts
    )  # the correctly predicted ones stay quiet
    summary = PerformanceSummary.objects.get(model_version=published_version)
    crrt = next(g for g in summary.data["groups"] if g["band"] == "CRRT")
    assert crrt["mean_relative_error_pct"]["low"] > 0  # biased upwards, beyond its interval
    assert demo_history_seed(clinician=clinician, model_id=published_version.model_id).endswith(
        "already there"
    )
