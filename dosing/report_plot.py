"""The concentration plot of a printed report, drawn on the server as SVG from the stored plot document.

The document is the one the course page draws in the browser (``dosing.results.plot_document``): times in
hours from ``t0``, the 50 % and 90 % bands, the MAP and population curves, the levels, the doses and the
forecast of the regimen. Matplotlib (already the engine's plotting library) draws it with the object API
(no pyplot, no global state); the SVG carries no date and a fixed id salt, so the same plot gives the same
bytes.
"""

from __future__ import annotations

import datetime as dt
import io
import math
from typing import Any

from django.utils import timezone
from matplotlib import rc_context
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MultipleLocator

from dosing.monitoring import thinned

BAND_90 = "#c9d9ec"
BAND_50 = "#94b4d9"
MAP = "#1f4e8c"
FORECAST = "#b35c00"
POPULATION = "#7a7a7a"
TARGET = "#2e7d32"
TOXIC = "#b71c1c"


def _pairs(times: list[float], values: list[float | None] | None) -> tuple[list[float], list[float]]:
    if not values:
        return [], []
    kept = [(t, v) for t, v in zip(times, values, strict=False) if v is not None and math.isfinite(v)]
    return [t for t, _ in kept], [v for _, v in kept]


def concentration_svg(plot: dict[str, Any], *, width_in: float = 7.0, height_in: float = 3.3) -> str:
    """The plot as an SVG document (text), sized for an A4 page."""
    t0 = dt.datetime.fromisoformat(plot["t0"])
    times = list(plot.get("times_h") or [])
    figure = Figure(figsize=(width_in, height_in), dpi=100)
    axes = figure.add_axes((0.085, 0.3, 0.895, 0.66))
    bands = plot.get("bands") or {}
    if bands.get("0.05") and bands.get("0.95"):
        band_label = "90 % credible band" if plot.get("band_kind") == "credible" else "90 % population band"
        _band(axes, times, bands["0.05"], bands["0.95"], BAND_90, band_label)
    if bands.get("0.25") and bands.get("0.75"):
        _band(axes, times, bands["0.25"], bands["0.75"], BAND_50, "50 % band")
    t, v = _pairs(times, plot.get("population"))
    if t:
        axes.plot(t, v, color=POPULATION, linestyle="--", linewidth=1.0, label="population (a priori)")
    t, v = _pairs(times, plot.get("map"))
    if t:
        axes.plot(t, v, color=MAP, linewidth=1.6, label="individual (MAP)")
    forecast = plot.get("forecast") or None
    if forecast:
        f_times = forecast.get("times_h") or []
        f_bands = forecast.get("bands") or {}
        if f_bands.get("0.05") and f_bands.get("0.95"):
            _band(axes, f_times, f_bands["0.05"], f_bands["0.95"], "#f6d7b8", "forecast 90 % band")
        t, v = _pairs(f_times, forecast.get("median") or forecast.get("map"))
        if t:
            axes.plot(t, v, color=FORECAST, linewidth=1.6, label="forecast (median)")
    for series in plot.get("series") or []:
        t, v = thinned(list(series["times_h"]), list(series["values"]))
        axes.plot(t, v, color="#6a1b9a", linestyle="none", marker=".", markersize=2.0, label=series["label"])
    observations = plot.get("observations") or []
    quantified = [o for o in observations if not o["below_lloq"]]
    level_marks = (  # which levels, the value drawn, its legend
        ([o for o in quantified if not o["excluded"]], "value", "level (in the fit)"),
        ([o for o in quantified if o["excluded"]], "value", "level (not used)"),
        ([o for o in observations if o["below_lloq"]], "lloq", "below the LLOQ"),
    )
    styles = (
        {"marker": "o", "markersize": 4.5, "markerfacecolor": "black", "markeredgecolor": "white"},
        {"marker": "x", "markersize": 5, "color": "black"},
        {"marker": "v", "markersize": 5, "color": "black"},
    )
    for (levels, drawn, label), style in zip(level_marks, styles, strict=True):
        if levels:
            times = [o["time_h"] for o in levels]
            axes.plot(times, [o[drawn] for o in levels], linestyle="none", label=label, **style)
    target = plot.get("target") or {}
    if target.get("is_concentration"):
        if target.get("low") is not None:
            axes.axhline(target["low"], color=TARGET, linewidth=0.8, linestyle=":")
        if target.get("high") is not None:
            axes.axhline(target["high"], color=TARGET, linewidth=0.8, linestyle=":", label="target range")
    if target.get("toxicity_limit") is not None and target.get("is_concentration"):
        axes.axhline(target["toxicity_limit"], color=TOXIC, lw=0.8, linestyle="-.", label="toxic limit")
    for dose in plot.get("doses") or []:
        axes.axvline(dose["time_h"], ymax=0.04, color="black", linewidth=1.2)
    axes.set_ylim(bottom=0)
    axes.set_ylabel(f"concentration ({plot.get('unit', '')})", fontsize=8)
    axes.xaxis.set_major_locator(MultipleLocator(_tick_hours(axes.get_xlim())))
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: _clock(t0, value)))
    axes.tick_params(labelsize=7)
    axes.grid(True, color="#e0e0e0", linewidth=0.5)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.set_xlabel(
        f"time ({timezone.get_current_timezone_name()}); ticks at the foot are doses", fontsize=7, labelpad=2
    )
    # Below the axes: the curves stay readable wherever they are.
    axes.legend(fontsize=6.5, ncols=4, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    buffer = io.StringIO()
    # Fixed SVG ids, and text as paths: the PDF then needs no font for the plot.
    with rc_context({"svg.hashsalt": "mipd-report", "svg.fonttype": "path"}):
        FigureCanvasSVG(figure).print_svg(buffer, metadata={"Date": None})
    return buffer.getvalue()


def _band(axes: Any, times: list[float], low: list, high: list, color: str, label: str) -> None:
    kept = [
        (t, lo, hi) for t, lo, hi in zip(times, low, high, strict=False) if lo is not None and hi is not None
    ]
    if kept:
        axes.fill_between(
            [k[0] for k in kept], [k[1] for k in kept], [k[2] for k in kept], color=color, lw=0, label=label
        )


def _tick_hours(limits: tuple[float, float]) -> float:
    """Ticks on clock-friendly steps (1, 2, 3, 6, 12, 24 h ...), at most about eight of them."""
    span = max(limits[1] - limits[0], 1.0)
    for step in (1, 2, 3, 6, 12, 24, 48, 72, 168):
        if span / step <= 8:
            return float(step)
    return 24.0 * math.ceil(span / 8 / 24)


def _clock(t0: dt.datetime, time_h: float) -> str:
    moment = timezone.localtime(t0 + dt.timedelta(hours=float(time_h)))
    return f"{moment:%d %b}\n{moment:%H:%M}"
