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


@dataclass(frozen=True)
class Window:
    start_h: float
    end_h: float

    def __post_init__(self) -> None:
        if not np.isfinite(self.start_h) or not np.isfinite(self.end_h) or self.end_h <= self.start_h:
            raise InvalidInputError("window_h", f"need start < end, got [{self.start_h:g}, {self.end_h:g}]")


def _breakpoints(simulator: PatientSimulator, window: Window, eta, kappa) -> np.ndarray:
    """Times inside the window where the typical patient's inputs start or stop, and parameter changes."""
    table = simulator.schedule.table
    points = [window.start_h, window.end_h, *simulator.schedule.boundaries_h]
    if table.time_h.size:
        points += list(table.time_h)
        # The typical patient's lag and infusion ends (a batch shares the administration times).
        eta0 = np.zeros((1, simulator.model.n_eta))
        values = evaluate_segments(simulator.model, simulator.schedule, eta0, None)
        pieces = build_pieces(simulator.model, simulator.schedule, values, 1)
        points += list(pieces.start_h[0]) + list((pieces.start_h + pieces.duration_h)[0])
    points = np.unique(np.asarray(points, dtype=float))
    return points[(points >= window.start_h) & (points <= window.end_h)]


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
    edges = _refine(_breakpoints(simulator, window, eta, kappa), max_step_h)
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


def _dense_grid(simulator, window: Window, eta, kappa, step_h: float) -> np.ndarray:
    n = max(2, int(np.ceil((window.end_h - window.start_h) / step_h)) + 1)
    grid = np.linspace(window.start_h, window.end_h, n)
    points = _breakpoints(simulator, window, eta, kappa)
    # Just after each breakpoint too: a bolus shows from the instant after its time.
    after = np.minimum(points + 1e-9, window.end_h)
    return np.unique(np.concatenate((grid, points, after)))


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
    grid = _dense_grid(simulator, window, eta, kappa, step_h)
    values = simulator.predict(grid, eta, kappa, outputs=[name]).outputs[name]
    index = np.argmax(values, axis=1)
    peak = values[np.arange(values.shape[0]), index]
    time = grid[index]
    # Parabolic refinement where the maximum is interior (a smooth peak, not an infusion end).
    inner = (index > 0) & (index < grid.size - 1)
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
        refined = simulator.predict(np.unique(vertex), eta, kappa, outputs=[name]).outputs[name]
        lookup = {t: k for k, t in enumerate(np.unique(vertex))}
        candidate = refined[rows, [lookup[t] for t in vertex]]
        better = candidate > peak[rows]
        peak[rows[better]] = candidate[better]
        time[rows[better]] = vertex[better]
    return peak, time


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
    grid = _dense_grid(simulator, window, eta, kappa, step_h)
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
