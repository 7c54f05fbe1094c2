"""What an update stores and the pages show: the plot document, the recommendation and its basis in words.

The plot document follows the contract of ``static/js/concentration_plot.js`` (times in hours from ``t0``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.utils import timezone

from dosing import orders
from dosing.adapters import CourseCase
from dosing.models import TherapyCourse
from dosing.monitoring import series_in_fit, series_observations, thinned
from dosing.safety import Alert
from mipd_engine import ENGINE_VERSION
from mipd_engine.targets import METRICS
from models_catalog.labels import parameter_unit
from models_catalog.models import Drug
from patients.selectors import consents_current


def plain_uncertainty(predicted: dict[str, Any], pta: float) -> str:
    """E.g. "9 in 10 chance that the AUC24 lies between 430 and 610 mg·h/L; 78 % chance ... in range"."""
    low, high = predicted["ci90"]
    return (
        f"9 in 10 chance that the {predicted['label']} lies between {low:.3g} and {high:.3g} "
        f"{predicted['unit']}; "
        f"{pta * 100:.0f} % chance that it lies in the target range."
    )


def _clip(times: list[float], values: list[float] | None, until_h: float | None) -> list[float | None] | None:
    if values is None:
        return None
    if until_h is None:
        return list(values)
    return [value if time <= until_h + 1e-9 else None for time, value in zip(times, values, strict=True)]


def plot_document(
    *,
    case: CourseCase,
    course: TherapyCourse,
    fit: dict[str, Any],
    forecast: dict[str, Any] | None,
    label: str,
    forecast_from_h: float | None = None,
) -> dict[str, Any]:
    """The plot: the fit up to the forecast's start (the next dose unless ``forecast_from_h``), then the
    forecast."""
    output = case.model.default_output
    unit = case.model.outputs[output].unit
    prediction = fit.get("prediction") or {}
    curves = (prediction.get("outputs") or {}).get(output, {})
    times = prediction.get("times_h", [])
    has_levels = bool(case.document["observations"])
    start = case.next_dose_h if forecast_from_h is None else forecast_from_h
    until = start if forecast is not None else None
    quantiles = curves.get("quantiles") or {}
    bands = (
        {q: _clip(times, quantiles.get(q), until) for q in ("0.05", "0.25", "0.75", "0.95")}
        if quantiles
        else None
    )
    # The plot shows the model's first output; levels of another output (another assay) are not on its scale.
    levels = course.levels.filter(entered_in_error=False, model_output__in=["", output]).order_by(
        "sampled_at", "pk"
    )
    observations = []
    for level in levels:
        time_h = (level.sampled_at - case.origin).total_seconds() / 3600.0
        held = level.plausibility in (level.Plausibility.HELD, level.Plausibility.PENDING)
        if level.excluded:
            shown = f"{level} (excluded: {level.exclusion_reason})"
        elif held:
            shown = f"{level} ({level.get_plausibility_display().lower()})"
        else:
            shown = str(level)
        observations.append(
            {
                "time_h": time_h,
                "value": level.value_model_unit,
                "excluded": level.excluded or held,
                "below_lloq": level.below_lloq,
                "lloq": level.lloq_model_unit,
                "label": shown,
            }
        )
    target = course.target
    info = METRICS.get(str(target.get("metric", "")))
    high = target.get("high")
    target_block = {
        "low": target.get("low"),
        "high": high,
        "toxicity_limit": target.get("toxicity_limit"),
        "label": f"{info.label if info else target.get('metric')} {target.get('low')}-"
        f"{high if high is not None else '∞'}",
        "is_concentration": bool(info and info.kind == "concentration"),
    }
    block = None
    if forecast is not None and forecast.get("success"):
        block = forecast_block(forecast, output=output, start_h=start, label=label)
    return {
        "t0": case.origin.isoformat(),
        "unit": unit,
        "now_h": None,  # set when the plot is shown: stored results do not depend on the clock
        "times_h": times,
        "map": _clip(times, curves.get("map"), until) if has_levels else None,
        "population": _clip(times, curves.get("apriori"), until),
        "bands": bands,
        "band_kind": "credible" if has_levels else "prior",
        "observations": observations,
        "doses": [
            {
                "time_h": dose["time_h"],
                "amount_mg": dose["amount_mg"],
                "duration_h": dose.get("duration_h"),
                "route": dose["route"],
            }
            for dose in case.document["doses"]
        ],
        "target": target_block,
        "forecast": block,
        "series": _series_block(course, case.origin),
    }


def _series_block(course: TherapyCourse, origin: dt.datetime) -> list[dict[str, Any]]:
    """The monitoring devices' series for the plot, thinned to a few hundred points (the fit uses all)."""
    shown = []
    for series in series_in_fit(course):
        points = series_observations(series, origin)
        times, values = thinned([p["time_h"] for p in points], [p["value"] for p in points])
        shown.append(
            {
                "label": f"{series.device} ({series.n_points} points)",
                "times_h": times,
                "values": values,
                "n_points": series.n_points,
            }
        )
    return shown


REGIMEN_KEYS = (
    "dose_mg",
    "interval_h",
    "start_h",
    "route",
    "duration_h",
    "rate_mg_per_h",
    "daily_dose_mg",
    "n_doses",
    "loading_dose_mg",
    "loading_duration_h",
    "continuous",
    "description",
)
# The figures of a regimen, for a candidate row, a what-if or an approved change (the engine's keys).
FIGURE_KEYS = (
    *REGIMEN_KEYS,
    "metric_median",
    "metric_ci90",
    "pta",
    "p_toxic",
    "p_toxic_by_limit",
    "exceeds_toxicity",
    "exposure",
    "rationale",
)


def latest_weight_kg(case: CourseCase) -> float | None:
    weights = case.facts.measurements.get("weight") or []
    return weights[-1][1] if weights else None


def figures(
    candidate: dict[str, Any],
    *,
    drug: Drug,
    origin: dt.datetime,
    weight_kg: float | None,
    next_level: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One regimen's figures as stored and shown: the engine's numbers, and the order a nurse can give."""
    shown = {key: candidate.get(key) for key in FIGURE_KEYS}
    shown["label"] = orders.regimen_label(candidate)
    shown["order"] = orders.order(
        regimen={key: candidate.get(key) for key in REGIMEN_KEYS},
        drug=drug,
        origin=origin,
        weight_kg=weight_kg,
        exposure=candidate.get("exposure") or [],
        next_level=next_level,
    )
    return shown


def target_summary(search: dict[str, Any]) -> dict[str, Any]:
    """The target as shown: description (one-sided ranges, MIC, toxicity markers), unit and P(toxic) limit."""
    target = search.get("target") or {}
    metric = target.get("metric", "")
    info = METRICS.get(metric)
    return {
        "metric": metric,
        "label": info.label if info else metric,
        "unit": target.get("unit", ""),
        "description": target.get("description", ""),
        "mic_mg_per_l": target.get("mic_mg_per_l"),
        "safety": target.get("safety", []),
        "max_p_toxic": target.get("max_p_toxic"),
    }


def forecast_block(forecast: dict[str, Any], *, output: str, start_h: float, label: str) -> dict[str, Any]:
    """The plot's forecast of a regimen from its start: median, 90 % band and MAP curve."""
    f_prediction = forecast["prediction"]
    f_curves = f_prediction["outputs"][output]
    f_times = f_prediction["times_h"]
    keep = [i for i, t in enumerate(f_times) if t >= start_h - 1e-9]
    quantiles = f_curves.get("quantiles")
    return {
        "times_h": [f_times[i] for i in keep],
        "median": [quantiles["0.5"][i] for i in keep] if quantiles else None,
        "bands": {q: [quantiles[q][i] for i in keep] for q in ("0.05", "0.95")} if quantiles else None,
        "map": [f_curves["map"][i] for i in keep],
        "label": label,
    }


def _recommendation(
    recommended: dict[str, Any], *, case: CourseCase, course: TherapyCourse
) -> dict[str, Any] | None:
    regimens = recommended.get("regimens") or []
    if not regimens:
        return None
    best = regimens[0]
    search = recommended.get("recommendation") or {}
    summary = target_summary(search)
    advice = recommended.get("sampling_advice") or None
    next_level = advice.get("best") if advice and advice.get("success") else None
    if advice and next_level:
        advice = {**advice, "plain_words": sampling_sentence(advice, origin=case.origin)}
    shown = figures(
        best, drug=course.drug, origin=case.origin, weight_kg=latest_weight_kg(case), next_level=next_level
    )
    return {
        **shown,  # the figure keys of a candidate row (metric, PTA, P(toxic), exposure) and the order
        "regimen": {key: best.get(key) for key in REGIMEN_KEYS},
        "predicted": {
            "metric": summary["metric"],
            "label": summary["label"],
            "unit": summary["unit"],
            "median": best["metric_median"],
            "ci90": best["metric_ci90"],
        },
        "target": summary,
        "pta": best["pta"],
        "p_toxic": best.get("p_toxic"),
        "p_toxic_by_limit": best.get("p_toxic_by_limit", []),
        "exposure": best.get("exposure", []),
        "order": shown["order"],
        "sampling_advice": advice,
        "rationale": best["rationale"],
        "reaches_target": bool(search.get("success")),
    }


def sampling_sentence(advice: dict[str, Any], *, origin: dt.datetime) -> str:
    """The engine's sampling advice on the hospital's clock: what to draw when, and what it would tell."""
    best = advice["best"]
    at = timezone.localtime(origin + dt.timedelta(hours=best["time_h"]))
    unit = advice.get("unit", "")
    shown_unit = "" if unit in ("ratio", "fraction", "") else f" {unit}"
    low, high = advice["current_ci90"]
    reduction = max(0.0, best["reduction"]) * 100
    what = {"trough": best["label"], "peak": f"a level {best['label']}", "random": "a level"}[best["kind"]]
    if best["reduction"] < 0.10:
        return (
            f"{what[0].upper()}{what[1:]} at {at:%a %d %b %H:%M} would be the most informative, but no "
            f"level in the next intervals would narrow the {advice['metric']} much "
            f"(variance down by {reduction:.0f} %)."
        )
    return (
        f"Draw {what} at {at:%a %d %b %H:%M}: it is expected to narrow the 90 % interval of the "
        f"{advice['metric']} from {low:.3g}–{high:.3g}{shown_unit} to about {best['expected_ci90_width']:.3g}"
        f"{shown_unit} wide (variance down by {reduction:.0f} %)."
    )


def map_parameters(case: CourseCase, recommended: dict[str, Any]) -> list[dict[str, Any]]:
    """The individual (MAP) parameters with their units."""
    values = (recommended.get("map") or {}).get("parameters") or {}
    return [{"name": name, "value": value, "unit": parameter_unit(name)} for name, value in values.items()]


def build_results(
    *,
    case: CourseCase,
    course: TherapyCourse,
    recommended: dict[str, Any],
    forecast: dict[str, Any] | None,
    alerts: Sequence[Alert] = (),
) -> dict[str, Any]:
    """Everything the course page needs to show one update, and the basis to review it independently.

    ``alerts`` are the red warnings the reviewer must acknowledge; ``warnings`` the other notes (an alert's
    message is not repeated among them).
    """
    version = course.model_version
    best = _recommendation(recommended, case=case, course=course) if recommended.get("success") else None
    label = f"recommended: {orders.regimen_label(best['regimen'])}" if best else ""
    warnings = [*case.warnings, *recommended.get("warnings", [])]
    if best and not best["reaches_target"]:
        warnings.append(
            (recommended.get("recommendation") or {}).get("message") or "no regimen reaches the target"
        )
    alert_messages = {alert.message for alert in alerts}
    # The engine may state one warning in two places; an alert is shown once, in red.
    warnings = [w for w in dict.fromkeys(warnings) if w not in alert_messages]
    card = version.model_card or {}
    basis = (recommended.get("recommendation") or {}).get(
        "basis", "bayesian" if case.document["observations"] else "a priori"
    )
    return {
        "success": bool(recommended.get("success")),
        "message": recommended.get("message", ""),
        "basis": "Bayesian (drug levels and covariates)"
        if basis == "bayesian"
        else "a priori (covariates only, no level yet)",
        "engine_version": ENGINE_VERSION,
        "model": {
            "id": version.model_id,
            "version": version.version,
            "title": version.title,
            "citation": version.citation_text,
            "doi": version.doi,
            "sha256": version.document_sha256,
            "population": version.document.get("population", {}),
            "limitations": card.get("limitations", []),
        },
        "consent": {
            scope: item["status"] for scope, item in consents_current(patient=course.patient).items()
        },
        "consent_override_reason": course.consent_override_reason,
        "genotype_used": case.genotype_used,
        "covariates": {
            "initial": case.covariates.initial,
            "changes": [[time_h, values] for time_h, values in case.covariates.changes],
            "derivations": [
                {
                    "name": d.name,
                    "description": case.model.covariates[d.name].description
                    if d.name in case.model.covariates
                    else "",
                    "value": d.value,
                    "unit": d.unit,
                    "formula": d.formula,
                    "notes": list(d.notes),
                }
                for d in case.covariates.derivations
            ],
        },
        "map": recommended.get("map"),
        "observations": recommended.get("observations", []),
        "posterior": recommended.get("posterior"),
        "plot": plot_document(
            case=case,
            course=course,
            fit=recommended,
            forecast=forecast,
            label=label,
            forecast_from_h=best["regimen"]["start_h"] if best else None,
        ),
        "recommendation": best,
        "map_parameters": map_parameters(case, recommended),
        "regimens": [
            figures(regimen, drug=course.drug, origin=case.origin, weight_kg=latest_weight_kg(case))
            for regimen in (recommended.get("regimens") or [])
        ],
        "warnings": warnings,
        "alerts": [alert.as_dict() for alert in alerts],
        "seed": case.seed,
        "inputs_sha256": case.inputs_sha256,
        "next_dose_h": case.next_dose_h,
    }


def plot_rows(plot: dict[str, Any], *, every_h: float = 6.0) -> dict[str, Any]:
    """The plot's data as table rows (keyboard and screen-reader users): levels, curves every few hours."""
    t0 = dt.datetime.fromisoformat(plot["t0"])

    def clock(time_h: float) -> str:
        return f"{timezone.localtime(t0 + dt.timedelta(hours=time_h)):%a %d %b %H:%M}"

    levels = []
    for obs in plot.get("observations", []):
        text = f"< {obs['lloq']:.3g} (below the LLOQ)" if obs["below_lloq"] else f"{obs['value']:.3g}"
        levels.append(
            {"clock": clock(obs["time_h"]), "text": text, "used": "no" if obs["excluded"] else "yes"}
        )
    times = plot.get("times_h") or []
    forecast = plot.get("forecast") or {}
    f_times = forecast.get("times_h") or []
    curve = []
    next_h = 0.0
    for i, time_h in enumerate(times):
        if time_h + 1e-9 < next_h:
            continue
        next_h = time_h + every_h
        row: dict[str, Any] = {"clock": clock(time_h), "forecast": None, "forecast_band": None}
        row["map"] = (plot.get("map") or [None] * len(times))[i]
        bands = plot.get("bands") or {}
        low, high = (
            (bands.get("0.05") or [None] * len(times))[i],
            (bands.get("0.95") or [None] * len(times))[i],
        )
        row["band"] = [low, high] if low is not None and high is not None else None
        row["population"] = (plot.get("population") or [None] * len(times))[i]
        if f_times and f_times[0] - 1e-9 <= time_h:
            j = min(range(len(f_times)), key=lambda k: abs(f_times[k] - time_h))
            median = forecast.get("median") or forecast.get("map")
            row["forecast"] = median[j] if median else None
            f_bands = forecast.get("bands") or {}
            if f_bands:
                row["forecast_band"] = [f_bands["0.05"][j], f_bands["0.95"][j]]
        curve.append(row)
    return {"levels": levels, "curve": curve, "every_h": every_h}
