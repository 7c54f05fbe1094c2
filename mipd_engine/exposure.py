"""Exposure metrics over time windows, for a batch of parameter sets.

Between breakpoints (dose times, infusion ends, lag ends of the typical patient, parameter changes) a linear
model's concentration is a smooth sum of exponentials, so Gauss-Legendre quadrature on sub-intervals that
start and end at the breakpoints is accurate to near machine precision. Breakpoints that move with the
random effects (lag times, modeled durations) leave a kink inside a sub-interval; sub-intervals are kept at
most ``max_step_h`` long so that the error stays far below assay precision (the tests state it).

Cmax and time above a threshold use a dense grid with every breakpoint included; the maximum is refined by
a parabola through the three grid points around it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from .errors import InvalidInputError
from .schedule import build_pieces, evaluate_segments
from .simulation import PatientSimulator

_GAUSS_NODES, _GAUSS_WEIGHTS = np.polynomial.legendre.leggauss(12)

# Bounded work for any span (issue 14): a window of weeks (an 8-weekly biologic) at 0.02-0.05 h steps made
# tens of thousands of grid times, each simulated for every posterior draw. The uniform part of a dense grid
# has at most MAX_DENSE_STEPS steps (the step grows with the span beyond 48 h at 0.02 h), and AUC quadrature
# at most MAX_AUC_PIECES pieces (the piece length grows beyond 512 h at 2 h); breakpoints are always kept.
# Windows up to 48 h (dense) and 512 h (AUC) are sampled exactly as before. Between breakpoints the curve is
# a smooth sum of exponentials whose time scale grows with the interval a drug is given at, so the relative
# error stays far below assay precision (tests/engine/test_long_interval.py states it).
MAX_DENSE_STEPS = 2400
MAX_AUC_PIECES = 256


@dataclass(frozen=True)
class Window:
    start_h: float
    end_h: float

    def __post_init__(self) -> None:
        if not np.isfinite(self.start_h) or not np.isfinite(self.end_h) or self.end_h <= self.start_h:
            raise InvalidInputError("window_h", f"need start < end, got [{self.start_h:g}, {self.end_h:g}]")


def breakpoints(simulator: PatientSimulator, start_h: float, end_h: float) -> np.ndarray:
    """Dose times, infusion and lag ends of the typical patient, and parameter changes, in [start, end]."""
    points = [start_h, end_h, *simulator.schedule.boundaries_h]
    table = simulator.schedule.table
    if table.time_h.size:
        points += list(table.time_h)
        # The typical patient's lag and infusion ends (a batch shares the administration times).
        eta0 = np.zeros((1, simulator.model.n_eta))
        values = evaluate_segments(simulator.model, simulator.schedule, eta0, None)
        pieces = build_pieces(simulator.model, simulator.schedule, values, 1)
        points += list(pieces.start_h[0]) + list((pieces.start_h + pieces.duration_h)[0])
    array = np.unique(np.asarray(points, dtype=float))
    return array[(array >= start_h) & (array <= end_h)]


def dense_grid(
    simulator: PatientSimulator, start_h: float, end_h: float, step_h: float
) -> tuple[np.ndarray, np.ndarray]:
    """A grid over [start, end] with every breakpoint and a point just after each (a bolus shows from the
    instant after its time); and the breakpoints. The uniform step is ``step_h``, or coarser for a window
    longer than :data:`MAX_DENSE_STEPS` steps."""
    step_h = max(step_h, (end_h - start_h) / MAX_DENSE_STEPS)
    n = max(2, int(np.ceil((end_h - start_h) / step_h)) + 1)
    points = breakpoints(simulator, start_h, end_h)
    after = np.minimum(points + 1e-9, end_h)
    grid = np.unique(np.concatenate((np.linspace(start_h, end_h, n), points, after)))
    return grid, points


def auc(
    simulator: PatientSimulator,
    window: Window,
    *,
    eta: np.ndarray | None = None,
    kappa: np.ndarray | None = None,
    output: str | None = None,
    max_step_h: float = 2.0,
) -> np.ndarray:
    """Area under the concentration curve over ``window`` (unit of the output × h), shape (N,)."""
    name = output or simulator.model.default_output
    max_step_h = max(max_step_h, (window.end_h - window.start_h) / MAX_AUC_PIECES)
    edges = _refine(breakpoints(simulator, window.start_h, window.end_h), max_step_h)
    lo, hi = edges[:-1], edges[1:]
    half = 0.5 * (hi - lo)
    nodes = (0.5 * (hi + lo))[:, None] + half[:, None] * _GAUSS_NODES[None, :]
    weights = half[:, None] * _GAUSS_WEIGHTS[None, :]
    values = simulator.predict(nodes.ravel(), eta, kappa, outputs=[name]).outputs[name]
    return values @ weights.ravel()


def _refine(edges: np.ndarray, max_step_h: float) -> np.ndarray:
    refined = [edges[:1]]
    for lo, hi in itertools.pairwise(edges):
        n = max(1, int(np.ceil((hi - lo) / max_step_h)))
        refined.append(np.linspace(lo, hi, n + 1)[1:])
    return np.concatenate(refined)


def peak_of_curve(grid: np.ndarray, values: np.ndarray, breakpoints_h: np.ndarray) -> np.ndarray:
    """Maximum (N,) of curves (N, T) sampled on ``grid``; interior maxima refined by a local quartic.

    A maximum at a breakpoint (infusion end, dose time) is exact as sampled. Elsewhere the quartic through
    the five grid points around the maximum (a parabola through three when five do not fit between
    breakpoints) is maximised by Newton's method within the neighbouring grid points.
    """
    values = np.asarray(values, dtype=float)
    n_rows, n_times = values.shape
    index = np.argmax(values, axis=1)
    peak = values[np.arange(n_rows), index].copy()
    # Grid points that are breakpoints or just after one: no smoothness across them.
    kink = np.zeros(n_times, dtype=bool)
    if breakpoints_h.size:
        for shift in (0.0, 1e-9):
            position = np.searchsorted(grid, breakpoints_h + shift)
            kink[position[position < n_times]] = True
    kinks_before = np.concatenate(([0], np.cumsum(kink)))  # number of kinks in grid[:i]
    pending = np.ones(n_rows, dtype=bool)
    for width in (2, 1):
        lo, hi = index - width, index + width
        ok = pending & (lo >= 0) & (hi < n_times)
        rows = np.nonzero(ok)[0]
        rows = rows[kinks_before[hi[rows] + 1] == kinks_before[lo[rows]]]
        if rows.size == 0:
            continue
        pending[rows] = False
        offsets = np.arange(-width, width + 1)
        columns = index[rows][:, None] + offsets[None, :]
        x_raw = grid[columns]
        centre = grid[index[rows]][:, None]
        half_span = 0.5 * (x_raw[:, -1] - x_raw[:, 0])[:, None]
        x = (x_raw - centre) / half_span
        y = values[rows[:, None], columns]
        powers = np.arange(2 * width + 1)
        coefficients = np.linalg.solve(x[:, :, None] ** powers[None, None, :], y[:, :, None])[:, :, 0]
        d1_coef = coefficients[:, 1:] * powers[1:]
        d2_coef = d1_coef[:, 1:] * powers[1:-1]
        bound_lo, bound_hi = x[:, width - 1], x[:, width + 1]
        u = np.zeros(rows.size)
        for _ in range(25):
            d1 = (d1_coef * u[:, None] ** powers[:-1]).sum(axis=1)
            d2 = (d2_coef * u[:, None] ** powers[:-2]).sum(axis=1)
            concave = d2 < 0
            step = np.where(concave, -d1 / np.where(concave, d2, -1.0), 0.0)
            u = np.clip(u + step, bound_lo, bound_hi)
        candidate = (coefficients * u[:, None] ** powers).sum(axis=1)
        better = np.isfinite(candidate) & (candidate > peak[rows])
        peak[rows[better]] = candidate[better]
    return peak


def cmax(
    simulator: PatientSimulator,
    window: Window,
    *,
    eta: np.ndarray | None = None,
    kappa: np.ndarray | None = None,
    output: str | None = None,
    step_h: float = 0.05,
) -> tuple[np.ndarray, np.ndarray]:
    """Maximum concentration in the window and its time, each (N,)."""
    name = output or simulator.model.default_output
    grid, points = dense_grid(simulator, window.start_h, window.end_h, step_h)
    values = simulator.predict(grid, eta, kappa, outputs=[name]).outputs[name]
    index = np.argmax(values, axis=1)
    time = grid[index]
    # The time: parabolic refinement where the maximum is a smooth interior peak, not at or next to a
    # breakpoint (an infusion end is a kink, where a parabola would overshoot).
    near_kink = np.zeros(grid.size, dtype=bool)
    for shift in (0.0, 1e-9):
        position = np.searchsorted(grid, points + shift)
        position = position[position < grid.size]
        for offset in (-1, 0, 1):
            near_kink[np.clip(position + offset, 0, grid.size - 1)] = True
    inner = (index > 0) & (index < grid.size - 1) & ~near_kink[index]
    if np.any(inner):
        rows = np.nonzero(inner)[0]
        i = index[rows]
        t0, t1, t2 = grid[i - 1], grid[i], grid[i + 1]
        y0, y1, y2 = values[rows, i - 1], values[rows, i], values[rows, i + 1]
        denom = (t0 - t1) * (t0 - t2) * (t1 - t2)
        a = (t2 * (y1 - y0) + t1 * (y0 - y2) + t0 * (y2 - y1)) / np.where(denom == 0, 1, denom)
        b = (t2**2 * (y0 - y1) + t1**2 * (y2 - y0) + t0**2 * (y1 - y2)) / np.where(denom == 0, 1, denom)
        vertex = np.where(a < 0, -b / (2 * np.where(a == 0, 1, a)), t1)
        vertex = np.clip(vertex, t0, t2)
        time[rows[a < 0]] = vertex[a < 0]
    # The value from a local quartic (no new simulation per row): accurate to ~1e-9 relative.
    return peak_of_curve(grid, values, points), time


def trough_before(
    simulator: PatientSimulator,
    dose_time_h: float,
    *,
    eta: np.ndarray | None = None,
    kappa: np.ndarray | None = None,
    output: str | None = None,
) -> np.ndarray:
    """Concentration just before a dose at ``dose_time_h`` (a level drawn at a dose time is pre-dose)."""
    name = output or simulator.model.default_output
    return simulator.predict([dose_time_h], eta, kappa, outputs=[name]).outputs[name][:, 0]


def time_above(
    simulator: PatientSimulator,
    window: Window,
    threshold: float,
    *,
    eta: np.ndarray | None = None,
    kappa: np.ndarray | None = None,
    output: str | None = None,
    step_h: float = 0.02,
) -> np.ndarray:
    """Hours within the window with concentration above ``threshold`` (crossings interpolated), (N,)."""
    if not threshold >= 0:
        raise InvalidInputError("threshold", f"must be a concentration >= 0, got {threshold!r}")
    name = output or simulator.model.default_output
    grid, _ = dense_grid(simulator, window.start_h, window.end_h, step_h)
    values = simulator.predict(grid, eta, kappa, outputs=[name]).outputs[name] - threshold
    left, right = values[:, :-1], values[:, 1:]
    dt = np.diff(grid)[None, :]
    both = (left > 0) & (right > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction_left = np.where(left > 0, left / (left - right), 0.0)  # falling crossing
        fraction_right = np.where(right > 0, right / (right - left), 0.0)  # rising crossing
    partial = np.where(left > 0, fraction_left, fraction_right)
    above = np.where(both, dt, np.where((left > 0) != (right > 0), partial * dt, 0.0))
    return above.sum(axis=1)
