"""Is renal function stable enough for a creatinine-based clearance estimate? KDIGO's creatinine criteria.

Cockcroft-Gault, CKD-EPI and Schwartz assume a steady-state serum creatinine. During acute kidney injury the
creatinine lags behind the fall in filtration, so the estimated clearance (and every dose derived from it) is
too high. KDIGO 2012 (Kidney Int Suppl 2012;2:1-138, section 2.1.1) defines AKI by a rise in serum creatinine
of at least 0.3 mg/dL (26.5 µmol/L) within 48 hours, or to at least 1.5 times baseline within the prior
7 days. :func:`creatinine_stability` applies both criteria to every rise that ends within the last 7 days,
taking as baseline any earlier value from the 7 days before the rise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

ABSOLUTE_RISE_MG_PER_DL = 0.3
ABSOLUTE_WINDOW_H = 48.0
RELATIVE_RISE = 1.5
RELATIVE_WINDOW_H = 7 * 24.0


@dataclass(frozen=True)
class RenalStability:
    stable: bool
    message: str  # "" when stable
    criterion: str = ""  # which KDIGO criterion was met
    from_mg_per_dl: float | None = None
    to_mg_per_dl: float | None = None
    from_h: float | None = None
    to_h: float | None = None


def creatinine_stability(series: Sequence[tuple[float, float]], *, now_h: float) -> RenalStability:
    """KDIGO creatinine criteria over ``series`` of (time_h, serum creatinine mg/dL) up to ``now_h``.

    Only rises that end within the last 7 days count (an old, resolved episode does not); the baseline is an
    earlier value at most 7 days (48 h for the absolute rise) before. The largest qualifying rise is reported.
    """
    points = sorted((t, v) for t, v in series if t <= now_h + 1e-9)
    best: tuple[float, str, tuple[float, float], tuple[float, float]] | None = None
    for j, (t_j, v_j) in enumerate(points):
        if t_j < now_h - RELATIVE_WINDOW_H:
            continue  # the rise must have happened within the last 7 days
        for t_i, v_i in points[:j]:
            if t_j - t_i <= 0 or t_j - t_i > RELATIVE_WINDOW_H:
                continue
            criterion = ""
            if t_j - t_i <= ABSOLUTE_WINDOW_H and v_j - v_i >= ABSOLUTE_RISE_MG_PER_DL - 1e-12:
                criterion = f"a rise of at least {ABSOLUTE_RISE_MG_PER_DL:g} mg/dL within 48 h"
            if v_i > 0 and v_j >= RELATIVE_RISE * v_i - 1e-12:
                criterion = f"at least {RELATIVE_RISE:g} times the lowest value of the last 7 days"
            if criterion and (best is None or v_j - v_i > best[0]):
                best = (v_j - v_i, criterion, (t_i, v_i), (t_j, v_j))
    if best is None:
        return RenalStability(True, "")
    _, criterion, (t_i, v_i), (t_j, v_j) = best
    message = (
        f"renal function unstable: serum creatinine rose from {v_i:.2f} to {v_j:.2f} mg/dL in "
        f"{t_j - t_i:.0f} h ({criterion}: KDIGO acute kidney injury). Creatinine-based clearance assumes a "
        "steady state and overestimates renal function while creatinine rises: recheck creatinine and "
        "measure levels more often"
    )
    return RenalStability(False, message, criterion, v_i, v_j, t_i, t_j)
