"""Server-side SVG of a typical-patient curve with its 90 % prediction band (the curator's preview)."""

from __future__ import annotations

import io
from collections.abc import Sequence

from matplotlib.figure import Figure  # the object API: no global pyplot state shared between requests


def prediction_band_svg(
    *,
    times_h: Sequence[float],
    typical: Sequence[float],
    low: Sequence[float],
    median: Sequence[float],
    high: Sequence[float],
    unit: str,
    title: str,
) -> str:
    figure = Figure(figsize=(8, 3.6), dpi=96)
    axes = figure.add_subplot()
    axes.fill_between(
        times_h, low, high, color="#0b5cab", alpha=0.18, linewidth=0, label="90 % prediction band"
    )
    axes.plot(times_h, median, color="#0b5cab", linewidth=1, linestyle="--", label="median")
    axes.plot(times_h, typical, color="#1d2430", linewidth=1.6, label="typical patient (all etas 0)")
    axes.set_xlabel("time (h)")
    axes.set_ylabel(f"concentration ({unit})")
    axes.set_title(title, fontsize=10)
    axes.set_xlim(left=0)
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend(loc="upper right", fontsize=8, frameon=False)
    figure.tight_layout()
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg")
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]  # drop the XML prolog and doctype: the SVG is inlined in HTML
