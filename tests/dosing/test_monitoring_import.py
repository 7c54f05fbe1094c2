"""Dense data: a monitoring device's CSV export. Every bad row is reported by line and nothing is stored; the
readings are stored in the model's unit with the device's error model; a fit of 500 readings recovers the
parameters they were simulated from."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pypdfium2 as pdfium
import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from dosing import monitoring, reports, services
from dosing.models import BayesianUpdate, MonitoringDevice, MonitoringSeries
from mipd_engine.model import ErrorModel
from tests.auth import login
from tests.engine.test_dense_observations import _one_compartment_conc
from tests.models_catalog.documents import CL_L_PER_H, V_L

DEVICE_ERROR = {"model": "combined", "additive": 0.5, "proportional": 0.1}


@pytest.fixture
def device(db):
    return MonitoringDevice.objects.create(
        code="test-microneedle",
        name="Test microneedle sensor",
        manufacturer="Test devices",
        unit="mg/L",
        residual_error=DEVICE_ERROR,
        error_source="test fixture: validation against LC-MS/MS (invented figures)",
    )


def _csv(rows: list[tuple[str, str]], *, header: str = "sampled_at,value") -> bytes:
    lines = ["# device: test microneedle sensor, serial 42", header, *(f"{t},{v}" for t, v in rows)]
    return ("\n".join(lines) + "\n").encode()


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat()


def _first_dose(course) -> dt.datetime:
    return course.doses.get().given_at


@pytest.mark.django_db
def test_bad_rows_are_reported_with_their_line_numbers_and_nothing_is_stored(dosed_course, device, clinician):
    start = _first_dose(dosed_course)
    good = [(_stamp(start + dt.timedelta(hours=1 + i)), "10.5") for i in range(3)]
    rows = [
        (_stamp(start - dt.timedelta(hours=1)), "9"),  # line 3: before the first dose
        *good,  # lines 4-6
        ("yesterday", "11"),  # line 7
        ((start + dt.timedelta(hours=5)).replace(tzinfo=None).isoformat(), "11"),  # line 8: no offset
        (_stamp(start + dt.timedelta(hours=6)), "-2"),  # line 9
        (_stamp(start + dt.timedelta(hours=2)), "9"),  # line 10: goes back in time
        (_stamp(start + dt.timedelta(hours=7)), "ten"),  # line 11
        (_stamp(timezone.now() + dt.timedelta(hours=3)), "9"),  # line 12: in the future
    ]
    content = _csv(rows) + b"2026-12-01T10:00:00Z,1,extra\n"  # line 13
    updates_before = BayesianUpdate.objects.count()
    with pytest.raises(ValidationError) as caught:
        monitoring.series_import(
            course=dosed_course, device=device, content=content, source_name="export.csv", user=clinician
        )
    messages = caught.value.message_dict["file"]
    assert messages[0].startswith("nothing was imported: line 3: ")
    for line, why in (
        (3, "precedes the course's first dose"),
        (7, "not an ISO 8601"),
        (8, "no UTC offset"),
        (9, "not a concentration"),
        (10, "is not after the reading of line 6"),
        (11, "not a number"),
        (12, "in the future"),
        (13, "expected 2 columns"),
    ):
        assert any(f"line {line}: " in m and why in m for m in messages), (line, messages)
    assert len(messages) == 8
    assert MonitoringSeries.objects.count() == 0
    assert BayesianUpdate.objects.count() == updates_before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"time;conc\n2026-12-01T10:00:00Z;1\n", "line 1: the header must be 'sampled_at,value'"),
        (b"# only comments\n", "no header line"),
        (b"\xff\xfe\x00bad", "not UTF-8"),
    ],
)
def test_a_file_that_is_not_an_export_is_refused(dosed_course, device, clinician, content, expected):
    with pytest.raises(ValidationError, match=expected):
        monitoring.series_import(
            course=dosed_course, device=device, content=content, source_name="x.csv", user=clinician
        )
    assert MonitoringSeries.objects.count() == 0


@pytest.mark.django_db
def test_readings_are_stored_in_the_model_unit_with_the_device_error_once(dosed_course, clinician):
    device = MonitoringDevice.objects.create(
        code="ng-device",
        name="Device in ng/mL",
        unit="ng/mL",
        residual_error={"model": "combined", "additive": 800, "proportional": 0.12},
        error_source="test fixture",
    )
    start = _first_dose(dosed_course)
    content = _csv([(_stamp(start + dt.timedelta(hours=2 + i / 4)), str(12000 - 100 * i)) for i in range(8)])
    series = monitoring.series_import(
        course=dosed_course, device=device, content=content, source_name="ng.csv", user=clinician
    )
    assert series.unit == "mg/L" and series.n_points == 8
    assert series.points[0][0] == 0.0 and series.points[0][1] == pytest.approx(12.0, rel=1e-12)
    assert series.points[7][0] == pytest.approx(1.75, abs=1e-9)
    assert series.residual_error["additive"] == pytest.approx(0.8, rel=1e-12)
    assert series.residual_error["proportional"] == pytest.approx(0.12, rel=1e-12)
    with pytest.raises(ValidationError, match="already imported"):
        monitoring.series_import(
            course=dosed_course, device=device, content=content, source_name="ng.csv", user=clinician
        )
    assert MonitoringSeries.objects.count() == 1


@pytest.mark.django_db
def test_a_fit_of_500_device_readings_recovers_the_true_parameters(
    course, device, clinician, client, django_capture_on_commit_callbacks, celery_eager
):
    start = timezone.now().replace(microsecond=0) - dt.timedelta(hours=30)
    doses = [(0.0, 1000.0, 1.0), (12.0, 1000.0, 1.0), (24.0, 1000.0, 1.0)]
    with django_capture_on_commit_callbacks(execute=True):
        for t, amount, duration in doses:
            services.dose_record(
                course=course,
                given_at=start + dt.timedelta(hours=t),
                amount_mg=amount,
                route="iv_infusion",
                infusion_duration_h=duration,
                user=clinician,
            )
    true_cl, true_v = CL_L_PER_H * math.exp(0.3), V_L * math.exp(-0.15)  # WT 70: no weight scaling
    times = np.arange(500) * (28.0 - 1.5) / 499 + 1.5
    truth = _one_compartment_conc(times, cl_l_per_h=true_cl, v_l=true_v, doses=doses)
    rng = np.random.default_rng(18)
    error = ErrorModel(DEVICE_ERROR["model"], DEVICE_ERROR["additive"], DEVICE_ERROR["proportional"])
    measured = np.maximum(truth + rng.normal(size=truth.shape) * np.sqrt(error.variance(truth)), 0.0)
    rows = [
        (_stamp(start + dt.timedelta(hours=float(t))), f"{v:.4g}")
        for t, v in zip(times, measured, strict=True)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        monitoring.series_import(
            course=course, device=device, content=_csv(rows), source_name="dense.csv", user=clinician
        )
    update = course.updates.filter(status=BayesianUpdate.Status.SUCCEEDED).order_by("-pk").first()
    assert update is not None and update.trigger.startswith("monitoring series imported (500 points)")
    dense = [o for o in update.inputs["observations"] if "error" in o]
    assert len(dense) == 500 and dense[0]["error"] == DEVICE_ERROR
    fitted = {p["name"]: p["value"] for p in update.results["map_parameters"]}
    # 500 readings with ~10 % noise: the standard error is ~1 %; 5 % leaves room for the prior's pull.
    assert fitted["CL"] == pytest.approx(true_cl, rel=0.05)
    assert fitted["V"] == pytest.approx(true_v, rel=0.05)
    series_plot = update.results["plot"]["series"]
    assert len(series_plot) == 1 and series_plot[0]["n_points"] == 500
    assert 100 <= len(series_plot[0]["times_h"]) <= monitoring.MAX_SERIES_POINTS  # the plot is thinned
    login(client, clinician)
    page = client.get(reverse("dosing:course", args=[course.public_id])).content.decode()
    assert "Test microneedle sensor" in page and "500" in page
    document = pdfium.PdfDocument(reports.recommendation_pdf(update.recommendation))
    text = " ".join(
        " ".join(document[i].get_textpage().get_text_range() for i in range(len(document))).split()
    )
    assert "Monitoring device series: Test microneedle sensor (500 points" in text


@pytest.mark.django_db
def test_a_series_marked_entered_in_error_leaves_the_fit(client, dosed_course, device, clinician):
    from dosing.adapters import course_case

    start = _first_dose(dosed_course)
    content = _csv([(_stamp(start + dt.timedelta(hours=2 + i / 4)), str(12 - i / 10)) for i in range(8)])
    series = monitoring.series_import(
        course=dosed_course, device=device, content=content, source_name="s.csv", user=clinician
    )
    assert sum("error" in o for o in course_case(dosed_course).document["observations"]) == 8
    login(client, clinician)
    url = reverse("dosing:entry_error", args=[dosed_course.public_id, "series", series.public_id])
    assert client.post(url, {"reason": "sensor placed in the wrong patient"}).status_code == 302
    series.refresh_from_db()
    assert series.entered_in_error and series.error_reason == "sensor placed in the wrong patient"
    assert not any("error" in o for o in course_case(dosed_course).document["observations"])
    assert dosed_course.updates.order_by("-pk").first().trigger == "monitoring series entered in error"
