"""A regimen as an order a nurse can give: drug, dose (mg and mg/kg), route, infusion duration and rate
(mg/h, and mL/h at the drug's standard concentration), interval, the clock time of every administration, the
loading dose, the predicted exposure, and when the next level is due.

Clock times are the regimen's record times (hours from the case origin) on the hospital's clock.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from models_catalog.labels import route_label
from models_catalog.models import Drug

SCHEDULE_SHOWN = 4  # administrations listed with their clock time


def _at(origin: dt.datetime, time_h: float) -> dt.datetime:
    return origin + dt.timedelta(hours=time_h)


def _clock(moment: dt.datetime) -> str:
    return f"{timezone.localtime(moment):%d %b %H:%M}"


def _number(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def order(
    *,
    regimen: dict[str, Any],
    drug: Drug,
    origin: dt.datetime,
    weight_kg: float | None,
    exposure: list[dict[str, Any]] | None = None,
    next_level: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The order of ``regimen`` (the engine's ``Regimen.as_dict()`` form); ``next_level``: sampling advice."""
    dose = float(regimen["dose_mg"])
    interval = float(regimen["interval_h"])
    start = float(regimen["start_h"])
    duration = float(regimen.get("duration_h") or 0.0)
    continuous = bool(regimen.get("continuous"))
    concentration = drug.standard_concentration_mg_per_ml
    loading_mg = regimen.get("loading_dose_mg")
    loading = None
    first_maintenance_h = start
    if loading_mg is not None:
        loading_duration = float(regimen.get("loading_duration_h") or 0.0)
        loading = {
            "dose_mg": float(loading_mg),
            "duration_h": loading_duration or None,
            "at": _at(origin, start).isoformat(),
            "clock": _clock(_at(origin, start)),
        }
        first_maintenance_h = start + (loading_duration if continuous else interval)
    rate = dose / duration if duration > 0 else None
    if continuous:
        rate = dose / interval
    times = [first_maintenance_h + k * interval for k in range(SCHEDULE_SHOWN)] if not continuous else []
    schedule = [{"at": _at(origin, t).isoformat(), "clock": _clock(_at(origin, t))} for t in times]
    result: dict[str, Any] = {
        "drug": drug.display_name,
        "dose_mg": dose,
        "dose_mg_per_kg": dose / weight_kg if weight_kg else None,
        "weight_kg": weight_kg,
        "route": regimen.get("route"),
        "route_label": route_label(str(regimen.get("route", ""))),
        "continuous": continuous,
        "infusion_duration_h": duration or None,
        "rate_mg_per_h": rate,
        "rate_ml_per_h": rate / concentration if rate is not None and concentration else None,
        "concentration_mg_per_ml": concentration,
        "interval_h": interval,
        "daily_dose_mg": dose * 24.0 / interval,
        "loading": loading,
        "start_at": _at(origin, start).isoformat(),
        "start_clock": _clock(_at(origin, start)),
        "first_maintenance_at": _at(origin, first_maintenance_h).isoformat(),
        "first_maintenance_clock": _clock(_at(origin, first_maintenance_h)),
        "schedule": schedule,
        "exposure": list(exposure or []),
        "next_level": next_level,
        "doses_until_next_level": None,
    }
    if next_level is not None:
        at = _at(origin, float(next_level["time_h"]))
        result["next_level"] = {**next_level, "at": at.isoformat(), "clock": _clock(at)}
    if next_level is not None and not continuous:
        level_h = float(next_level["time_h"])
        before = [t for t in (first_maintenance_h + k * interval for k in range(200)) if t < level_h]
        result["doses_until_next_level"] = len(before) + (1 if loading is not None else 0)
    result["text"] = order_text(result)
    return result


def order_text(order: dict[str, Any]) -> str:
    """``Vancomycin 1250 mg (15.6 mg/kg) IV infusion over 2.5 h (500 mg/h, 100 mL/h at 5 mg/mL) every 12 h,
    first dose 03 Dec 08:00``; a continuous infusion as its daily amount and rate."""
    per_kg = f" ({order['dose_mg_per_kg']:.3g} mg/kg)" if order["dose_mg_per_kg"] else ""
    pump = ""
    if order["rate_mg_per_h"] is not None:
        pump = f"{_number(order['rate_mg_per_h'])} mg/h"
        if order["rate_ml_per_h"] is not None:
            pump += f", {_number(order['rate_ml_per_h'])} mL/h at {order['concentration_mg_per_ml']:g} mg/mL"
    text = ""
    if order["loading"] is not None:
        loading = order["loading"]
        text = f"loading dose {_number(loading['dose_mg'])} mg"
        if loading["duration_h"]:
            text += f" over {loading['duration_h']:g} h"
        text += f" at {loading['clock']}, then "
    if order["continuous"]:
        daily = _number(order["daily_dose_mg"])
        text += f"{order['drug']} continuous infusion {daily} mg/24 h{per_kg} ({pump}), "
        text += f"from {order['first_maintenance_clock']}"
    else:
        text += f"{order['drug']} {_number(order['dose_mg'])} mg{per_kg} {order['route_label']}"
        if order["infusion_duration_h"]:
            text += f" over {order['infusion_duration_h']:g} h ({pump})"
        text += f" every {order['interval_h']:g} h, first dose {order['first_maintenance_clock']}"
    return text


def regimen_label(regimen: dict[str, Any]) -> str:
    """A regimen in a few words with human route names: "q12h 1250 mg over 2.5 h", "q12h 16 mg oral"."""
    dose = float(regimen["dose_mg"])
    interval = float(regimen["interval_h"])
    if regimen.get("continuous"):
        text = f"continuous infusion {_number(dose * 24.0 / interval)} mg/24 h"
    else:
        text = f"q{interval:g}h {_number(dose)} mg"
        duration = regimen.get("duration_h")
        text += (
            f" over {float(duration):g} h" if duration else f" {route_label(str(regimen.get('route', '')))}"
        )
    if regimen.get("n_doses") and not regimen.get("continuous"):
        text += f", {regimen['n_doses']} dose{'s' if regimen['n_doses'] != 1 else ''}"
    if regimen.get("loading_dose_mg") is not None:
        loading = f"loading {_number(float(regimen['loading_dose_mg']))} mg"
        if regimen.get("loading_duration_h"):
            loading += f" over {float(regimen['loading_duration_h']):g} h"
        text = f"{loading}, then {text}"
    return text
