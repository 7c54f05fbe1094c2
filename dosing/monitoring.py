"""Dense data: concentration time series from continuous monitoring devices, imported from CSV.

The file format (documented in README, "Dense data"):

* UTF-8 text; lines starting with ``#`` are comments (a device's export metadata) and blank lines are skipped;
* a header line ``sampled_at,value`` (case and spaces ignored), then one row per reading;
* ``sampled_at``: ISO 8601 date and time with its UTC offset (``2026-12-01T08:05:00+01:00`` or ``...Z``);
* ``value``: the concentration, a number >= 0, in the device type's unit.

Every row is checked and every bad row is reported with its line number; a file with any bad row stores
nothing. The readings are stored in the model output's unit with the device type's residual error model (its
additive part converted to that unit), and every fit uses that error for them instead of the assay's.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import math
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from dosing.models import MonitoringDevice, MonitoringSeries, TherapyCourse
from mipd_engine.errors import ModelError
from mipd_engine.model import parse_error_model, parse_model
from mipd_units import concentration as units

HEADER = ("sampled_at", "value")
MIN_POINTS = 2
MAX_POINTS = 5000
MAX_BYTES = 2_000_000
MAX_REPORTED = 25  # bad rows listed one by one; the rest are counted
ALREADY_IMPORTED = "this file was already imported for this course (mark that series entered in error first)"
FUTURE_SLACK = dt.timedelta(minutes=5)  # device clocks drift a little
# A plot shows at most this many points of a series (the page stays light); the fit uses all of them.
MAX_SERIES_POINTS = 200


@dataclass(frozen=True)
class Reading:
    line: int
    sampled_at: dt.datetime
    value: float


def device_error(device: MonitoringDevice, *, model_unit: str, molar_mass_g_per_mol: float | None) -> dict:
    """The device's error model in the model's unit: the additive sd scales with the unit, nothing else."""
    try:
        error = parse_error_model("residual_error", device.residual_error)
    except ModelError as exc:
        raise ValidationError({"device": [f"{device}: its error model is invalid ({exc})"]}) from None
    factor = units.convert(1.0, device.unit, model_unit, molar_mass_g_per_mol=molar_mass_g_per_mol)
    additive = error.additive if error.model == "exponential" else error.additive * factor
    return {"model": error.model, "additive": additive, "proportional": error.proportional}


def parse_readings(content: bytes, *, earliest: dt.datetime | None, now: dt.datetime) -> list[Reading]:
    """The readings of a CSV export, or ValidationError listing every bad row as ``line N: why``."""
    if len(content) > MAX_BYTES:
        raise ValidationError({"file": [f"the file is larger than {MAX_BYTES // 1_000_000} MB"]})
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError({"file": [f"the file is not UTF-8 text (byte {exc.start})"]}) from None
    problems: list[str] = []
    readings: list[Reading] = []
    header_seen = False
    for line_no, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or all(not cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
            continue
        if not header_seen:
            if tuple(cell.strip().lower() for cell in row) != HEADER:
                raise ValidationError(
                    {
                        "file": [
                            f"line {line_no}: the header must be 'sampled_at,value', found {','.join(row)!r}"
                        ]
                    }
                )
            header_seen = True
            continue
        problem, reading = _reading(line_no, row, readings[-1] if readings else None, earliest, now)
        if problem:
            problems.append(f"line {line_no}: {problem}")
        else:
            readings.append(reading)
    if not header_seen:
        problems.append("no header line 'sampled_at,value': is this a device export?")
    elif not problems and len(readings) < MIN_POINTS:
        problems.append(f"{len(readings)} reading(s): a series needs at least {MIN_POINTS}")
    if len(readings) > MAX_POINTS:
        problems.append(f"{len(readings)} readings: at most {MAX_POINTS} per file (split the export)")
    if problems:
        shown = problems[:MAX_REPORTED]
        if len(problems) > MAX_REPORTED:
            shown.append(f"and {len(problems) - MAX_REPORTED} more bad rows")
        raise ValidationError({"file": ["nothing was imported: " + shown[0], *shown[1:]]})
    return readings


def _reading(
    line_no: int, row: list[str], previous: Reading | None, earliest: dt.datetime | None, now: dt.datetime
) -> tuple[str, Reading | None]:
    if len(row) != 2:
        return f"expected 2 columns (sampled_at,value), found {len(row)}", None
    stamp, raw = row[0].strip(), row[1].strip()
    try:
        moment = parse_datetime(stamp)
    except ValueError:
        moment = None
    if moment is None:
        return f"sampled_at {stamp!r} is not an ISO 8601 date and time", None
    if timezone.is_naive(moment):
        return f"sampled_at {stamp!r} has no UTC offset (add +01:00, Z, ...)", None
    try:
        value = float(raw)
    except ValueError:
        return f"value {raw!r} is not a number", None
    if not math.isfinite(value) or value < 0:
        return f"value {raw} is not a concentration (a finite number >= 0)", None
    if previous is not None and moment <= previous.sampled_at:
        return f"{stamp} is not after the reading of line {previous.line} (times must increase)", None
    if earliest is not None and moment < earliest:
        return f"{stamp} precedes the course's first dose ({earliest.isoformat()})", None
    if moment > now + FUTURE_SLACK:
        return f"{stamp} is in the future", None
    return "", Reading(line_no, moment, value)


@transaction.atomic
def series_import(
    *,
    course: TherapyCourse,
    device: MonitoringDevice,
    content: bytes,
    source_name: str,
    user: AbstractBaseUser,
    device_serial: str = "",
    model_output: str = "",
) -> MonitoringSeries:
    """Store a device's series for the course and queue the update; nothing is stored if any row is bad."""
    from dosing import services  # services imports the adapters, which read the series

    services._require_clinician(user)
    if not device.active:
        raise ValidationError({"device": [f"{device} is no longer in use"]})
    model = parse_model(course.model_version.document)
    output = model_output or model.default_output
    if output not in model.outputs:
        raise ValidationError({"model_output": [f"the model has no output '{output}'"]})
    model_unit = model.outputs[output].unit
    molar_mass = course.drug.molar_mass_g_per_mol
    try:
        error = device_error(device, model_unit=model_unit, molar_mass_g_per_mol=molar_mass)
        factor = units.convert(1.0, device.unit, model_unit, molar_mass_g_per_mol=molar_mass)
    except units.UnitError as exc:
        raise ValidationError({"device": [f"{device}: {exc}"]}) from None
    first_dose = course.doses.filter(entered_in_error=False).order_by("given_at").first()
    if first_dose is None:
        raise ValidationError({"file": ["record the doses first: a series is fitted from the first dose on"]})
    readings = parse_readings(content, earliest=first_dose.given_at, now=timezone.now())
    if error["model"] == "exponential" and any(r.value <= 0 for r in readings):
        bad = next(r for r in readings if r.value <= 0)
        raise ValidationError(
            {
                "file": [
                    f"nothing was imported: line {bad.line}: the device's exponential error needs values > 0"
                ]
            }
        )
    _check_ceiling(course, readings, device.unit, molar_mass)
    digest = hashlib.sha256(content).hexdigest()
    if course.monitoring_series.filter(source_sha256=digest, entered_in_error=False).exists():
        raise ValidationError({"file": [ALREADY_IMPORTED]})
    first = readings[0].sampled_at
    points = [[(r.sampled_at - first).total_seconds() / 3600.0, r.value * factor] for r in readings]
    series = MonitoringSeries(
        course=course,
        device=device,
        device_serial=device_serial,
        residual_error=error,
        model_output="" if output == model.default_output else output,
        unit=model_unit,
        points=points,
        n_points=len(points),
        first_at=first,
        last_at=readings[-1].sampled_at,
        source_name=source_name[:255],
        source_sha256=digest,
        uploaded_by=user,
    )
    series.full_clean()
    try:
        with transaction.atomic():
            series.save()
    except IntegrityError:
        raise ValidationError({"file": [ALREADY_IMPORTED]}) from None  # the same file, at the same moment
    services.update_request(
        course=course, user=user, trigger=f"monitoring series imported ({len(points)} points)"
    )
    return series


def _check_ceiling(
    course: TherapyCourse, readings: list[Reading], unit: str, molar_mass: float | None
) -> None:
    ceiling = course.drug.max_plausible_concentration
    if ceiling is None:
        return
    drug_unit = course.drug.concentration_unit
    factor = units.convert(1.0, unit, drug_unit, molar_mass_g_per_mol=molar_mass)
    high = [r for r in readings if r.value * factor > ceiling]
    if high:
        lines = ", ".join(str(r.line) for r in high[:MAX_REPORTED])
        raise ValidationError(
            {
                "file": [
                    f"nothing was imported: {len(high)} reading(s) above the plausible maximum {ceiling:g} "
                    f"{drug_unit} (lines {lines}): check the device's unit"
                ]
            }
        )


def series_in_fit(course: TherapyCourse) -> list[MonitoringSeries]:
    return list(course.monitoring_series.filter(entered_in_error=False).select_related("device"))


def series_observations(series: MonitoringSeries, origin: dt.datetime) -> list[dict[str, Any]]:
    """The series' points as case-file observations, each with the device's error model."""
    start_h = (series.first_at - origin).total_seconds() / 3600.0
    base: dict[str, Any] = {"error": dict(series.residual_error)}
    if series.model_output:
        base["output"] = series.model_output
    return [{"time_h": start_h + t, "value": value, **base} for t, value in series.points]


def thinned(times: list[float], values: list[float], limit: int = MAX_SERIES_POINTS):
    """Every k-th point so that at most ``limit`` remain (the first and last kept)."""
    if len(times) <= limit:
        return times, values
    step = math.ceil(len(times) / limit)
    keep = list(range(0, len(times), step))
    if keep[-1] != len(times) - 1:
        keep.append(len(times) - 1)
    return [times[i] for i in keep], [values[i] for i in keep]
