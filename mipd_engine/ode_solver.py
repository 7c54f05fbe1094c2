"""Numerical solution for models with saturable (Michaelis-Menten) flows.

The batch of parameter sets is integrated as one system (chunks of ``_CHUNK`` patients) with scipy's LSODA
(``odeint``),
which switches to a stiff (BDF) method when the problem turns stiff, at tight tolerances. Integration
restarts at every breakpoint (bolus, start or end of an infusion, parameter change, reset) so that inputs
are piecewise constant within each call, as in NONMEM's ADVAN13. ``odeint`` runs LSODA's step loop in
Fortran, which is several times faster here than ``solve_ivp``'s Python step loop.
"""

from __future__ import annotations

import threading

import numpy as np
from scipy.integrate import odeint

from .deadline import check_deadline, remaining_s
from .errors import EngineError
from .linear_solver import rate_matrix
from .model import PopulationModel
from .schedule import Pieces, Schedule

RTOL = 1e-10
ATOL = 1e-12
_CHUNK = 64  # parameter sets integrated together (LSODA's non-stiff steps cost little more for more)
_SS_MAX_INTERVALS = 500
_SS_RTOL = 1e-10


class ODEFailure(EngineError):
    """The ODE solver did not reach the requested time."""


def simulate_ode(
    model: PopulationModel,
    schedule: Schedule,
    segment_values: list[dict[str, np.ndarray]],
    pieces: Pieces,
    times_h: np.ndarray,
    compartments: np.ndarray,
    *,
    rtol: float | None = None,
    atol: float | None = None,
) -> np.ndarray:
    """Amounts (N, T, C) at ``times_h`` for a model with saturable flows."""
    rtol = RTOL if rtol is None else rtol
    atol = ATOL if atol is None else atol
    n_batch = pieces.start_h.shape[0]
    out = np.zeros((n_batch, np.size(times_h), compartments.size))
    for lo in range(0, n_batch, _CHUNK):
        check_deadline()
        sl = slice(lo, min(n_batch, lo + _CHUNK))
        out[sl] = _simulate_chunk(
            model, schedule, segment_values, pieces, times_h, compartments, sl, rtol, atol
        )
    return out


def _simulate_chunk(model, schedule, segment_values, pieces, times_h, compartments, sl, rtol, atol):
    times_h = np.asarray(times_h, dtype=float)
    n_cmt = model.n_compartments
    start = pieces.start_h[sl]
    amount = pieces.amount_mg[sl]
    duration = pieces.duration_h[sl]
    n = start.shape[0]
    seg_k = []
    seg_sat = []
    for values in segment_values:
        vals = {key: v[sl] for key, v in values.items()}
        seg_k.append(rate_matrix(model, vals, n))
        seg_sat.append(
            [(f.source, f.target, vals[f.vmax], vals[f.km], vals[f.volume]) for f in model.saturable_flows]
        )
    is_bolus = duration <= 0
    end = start + np.where(is_bolus, 0.0, duration)
    rate = np.where(is_bolus, 0.0, amount / np.where(is_bolus, 1.0, duration))
    boundaries = schedule.boundaries_h
    points = np.unique(
        np.concatenate(
            (start.ravel(), end[~is_bolus].ravel(), boundaries, times_h, [np.min(times_h, initial=0)])
        )
    )
    points = points[points <= times_h.max(initial=-np.inf)]  # nothing after the last requested time matters
    if points.size == 0:
        return np.zeros((n, times_h.size, compartments.size))
    t_first = float(points.min())
    state = np.zeros((n, n_cmt))
    out = np.zeros((n, times_h.size, compartments.size))
    last_reset = -np.inf
    current = t_first
    order = np.argsort(times_h, kind="stable")
    sorted_times = times_h[order]
    next_obs = 0

    def record_until(t_reached: float, y: np.ndarray) -> None:
        nonlocal next_obs
        while next_obs < sorted_times.size and sorted_times[next_obs] <= t_reached:
            if sorted_times[next_obs] == t_reached:
                out[:, order[next_obs], :] = y[:, compartments]
            next_obs += 1

    reset_segments = {s.start_h: j for j, s in enumerate(schedule.segments) if s.reset}

    def reset_at(t: float, y: np.ndarray) -> np.ndarray:
        """Empty the state at a reset; at a steady-state dose, replace it by the steady-state amounts."""
        j = reset_segments.get(t)
        if j is None:
            return y
        y = np.zeros_like(y)
        ss = (pieces.administered_h == t) & ~np.isnan(pieces.steady_state_interval_h)
        if np.any(ss):
            y = _steady_state_ode(model, seg_k[j], seg_sat[j], pieces, sl, ss, rtol, atol, n, n_cmt)
            # A level drawn at the steady-state dose time is the steady-state trough.
            at_dose = np.nonzero(times_h == t)[0]
            if at_dose.size:
                out[:, at_dose, :] = y[:, None, compartments]
        return y

    # Values at t_first are pre-dose and pre-reset; then the reset (if any) applies.
    record_until(current, state)
    state = reset_at(current, state)
    if current in reset_segments:
        last_reset = current
    for target in points[points > current]:
        check_deadline()  # one integration per interval between events: thousands for a long regimen
        seg = int(schedule.segment_of_time(np.array([target]))[0])  # parameters for (current, target]
        valid = pieces.administered_h[None, :] >= last_reset
        # Boluses entering at `current`.
        bolus_now = is_bolus & (start == current) & valid
        if np.any(bolus_now):
            np.add.at(
                state,
                (np.nonzero(bolus_now)[0], pieces.compartment[np.nonzero(bolus_now)[1]]),
                amount[bolus_now],
            )
        # Infusion rates over (current, target].
        running = (~is_bolus) & (start <= current) & (end >= target) & valid
        input_rate = np.zeros((n, n_cmt))
        if np.any(running):
            rows, cols = np.nonzero(running)
            np.add.at(input_rate, (rows, pieces.compartment[cols]), rate[rows, cols])
        state = _integrate(state, current, target, seg_k[seg], seg_sat[seg], input_rate, rtol, atol)
        current = float(target)
        record_until(current, state)
        if current in reset_segments:
            state = reset_at(current, state)
            last_reset = current
    return out


def _rhs_factory(k, saturable, input_rate, *, compiled: bool = True):
    """The right-hand side as ``(function, args)`` for ``odeint(function, y0, t, args=args, tfirst=True)``:
    compiled with numba when it is installed (the right-hand side is called hundreds of times per
    integration, and its Python form costs more than the integrator), else numpy operations over the batch.
    Both do the same floating-point operations in the same order: the results are the same to the bit."""
    n, n_cmt = input_rate.shape
    # The nonzero entries of the rate matrices, so that the right-hand side is a few vector operations.
    flows = [
        (i, j, np.ascontiguousarray(k[:, i, j]))
        for i in range(n_cmt)
        for j in range(n_cmt)
        if np.any(k[:, i, j])
    ]
    function = _compiled_rhs() if compiled else None
    if function is not None:
        args = (
            np.ascontiguousarray(input_rate, dtype=float),
            np.array([f[0] for f in flows], dtype=np.int64),
            np.array([f[1] for f in flows], dtype=np.int64),
            np.array([f[2] for f in flows], dtype=float).reshape(len(flows), n),
            np.array([f[0] for f in saturable], dtype=np.int64),
            np.array([-1 if f[1] is None else f[1] for f in saturable], dtype=np.int64),
            *(
                np.array([np.broadcast_to(f[q], (n,)) for f in saturable], dtype=float).reshape(
                    len(saturable), n
                )
                for q in (2, 3, 4)
            ),
        )
        return function, args

    def rhs(_t, y):
        a = y.reshape(n, n_cmt)
        d = input_rate.copy()
        for i, j, rate in flows:
            d[:, i] += rate * a[:, j]
        for source, target, vmax, km, volume in saturable:
            c = a[:, source] / volume
            flux = vmax * c / (km + c)
            d[:, source] -= flux
            if target is not None:
                d[:, target] += flux
        return d.ravel()

    return rhs, ()


def _rhs_loops(_t, y, input_rate, flow_i, flow_j, flow_rate, sat_source, sat_target, vmax, km, volume):
    """The right-hand side of :func:`_rhs_factory`'s numpy form, element by element (compiled by numba)."""
    n, n_cmt = input_rate.shape
    d = input_rate.copy()
    for r in range(n):
        for f in range(flow_i.size):
            d[r, flow_i[f]] += flow_rate[f, r] * y[r * n_cmt + flow_j[f]]
        for q in range(sat_source.size):
            c = y[r * n_cmt + sat_source[q]] / volume[q, r]
            flux = vmax[q, r] * c / (km[q, r] + c)
            d[r, sat_source[q]] -= flux
            if sat_target[q] >= 0:
                d[r, sat_target[q]] += flux
    return d.ravel()


# The compiled right-hand side: [function] once compiled, [None] without numba, [] not yet. Compiling takes a
# second or two, once per process, and cannot stop at a deadline: under a budget it runs in the background and
# the numpy form (the same results to the bit) serves meanwhile; without one it runs at once.
_COMPILED: list = []
_COMPILE_LOCK = threading.Lock()
_COMPILING: list[threading.Thread] = []


def _compiled_rhs():
    if _COMPILED:
        return _COMPILED[0]
    if remaining_s() is None:
        _compile()
        return _COMPILED[0]
    with _COMPILE_LOCK:
        if not _COMPILING:
            _COMPILING.append(threading.Thread(target=_compile, name="mipd-ode-compile", daemon=True))
            _COMPILING[0].start()
    return None


def _compile() -> None:
    with _COMPILE_LOCK:
        if _COMPILED:
            return
        try:
            import numba  # imported here: only models with saturable flows need it
        except ImportError:
            _COMPILED.append(None)
            return
        # No fastmath: the same IEEE operations as the numpy form, in the same order. Compiled for the
        # argument types it is always called with, so that compiling happens here and not at the first call.
        vector, matrix, index = numba.float64[::1], numba.float64[:, ::1], numba.int64[::1]
        signature = vector(
            numba.float64, vector, matrix, index, index, matrix, index, index, matrix, matrix, matrix
        )
        _COMPILED.append(numba.njit(signature, cache=False)(_rhs_loops))


def _integrate(state, t0, t1, k, saturable, input_rate, rtol, atol):
    if t1 <= t0:
        return state
    if not saturable and not np.any(k) and not np.any(input_rate):
        return state
    rhs, args = _rhs_factory(k, saturable, input_rate)
    if t1 - t0 <= 1e-9 * max(1.0, abs(t0)):
        # Times a few ulps apart: odeint refuses them; one explicit Euler step is exact to O(dt^2) here.
        return np.maximum(state + (t1 - t0) * rhs(t0, state.ravel(), *args).reshape(state.shape), 0.0)
    scale = max(
        1.0, float(np.max(np.abs(state), initial=0.0)), float(np.max(input_rate, initial=0.0)) * (t1 - t0)
    )
    # odeint drives LSODA from Fortran (no Python loop per step, unlike solve_ivp).
    y, info = odeint(
        rhs,
        state.ravel(),
        [t0, t1],
        args=args,
        tfirst=True,
        rtol=rtol,
        atol=atol * scale,
        mxstep=100_000,
        full_output=True,
    )
    if info["message"] != "Integration successful.":
        raise ODEFailure(f"ODE solver failed between t={t0:g} h and {t1:g} h: {info['message']}")
    return np.maximum(y[-1].reshape(state.shape), 0.0)


def _steady_state_ode(model, k, saturable, pieces, sl, selected, rtol, atol, n, n_cmt):
    """Steady state of a nonlinear system by repeating the interval until amounts stop changing."""
    interval = float(np.unique(pieces.steady_state_interval_h[selected])[0])
    lag = pieces.start_h[sl][:, selected] - pieces.administered_h[selected]
    amount = pieces.amount_mg[sl][:, selected]
    duration = pieces.duration_h[sl][:, selected]
    compartment = pieces.compartment[selected]
    state = np.zeros((n, n_cmt))
    for _ in range(_SS_MAX_INTERVALS):
        previous = state.copy()
        state = _one_interval(state, interval, lag, amount, duration, compartment, k, saturable, rtol, atol)
        change = np.max(np.abs(state - previous) / np.maximum(np.abs(state), 1e-12))
        if change < _SS_RTOL * 100:
            return state
    raise ODEFailure(f"steady state not reached within {_SS_MAX_INTERVALS} intervals")


def _one_interval(state, interval, lag, amount, duration, compartment, k, saturable, rtol, atol):
    n, n_cmt = state.shape
    is_bolus = duration <= 0
    starts = lag
    ends = lag + np.where(is_bolus, 0.0, duration)
    # Inputs that spill past the interval wrap around (they overlap with the next dose's).
    points = np.unique(
        np.concatenate(([0.0, interval], np.mod(starts, interval).ravel(), np.mod(ends, interval).ravel()))
    )
    points = points[(points >= 0) & (points <= interval)]
    rate = np.where(is_bolus, 0.0, amount / np.where(is_bolus, 1.0, duration))
    current = 0.0
    for target in points[points > 0]:
        bolus_now = is_bolus & (np.mod(starts, interval) == current)
        if np.any(bolus_now):
            rows, cols = np.nonzero(bolus_now)
            np.add.at(state, (rows, compartment[cols]), amount[rows, cols])
        input_rate = np.zeros((n, n_cmt))
        mid = 0.5 * (current + target)
        # Rate at mid-interval from all (wrapped) repetitions of each infusion.
        for shift in range(0, int(np.ceil(np.max(ends, initial=0) / interval)) + 1):
            on = (~is_bolus) & (starts <= mid + shift * interval) & (ends >= mid + shift * interval)
            if np.any(on):
                rows, cols = np.nonzero(on)
                np.add.at(input_rate, (rows, compartment[cols]), rate[rows, cols])
        state = _integrate(state, current, target, k, saturable, input_rate, rtol, atol)
        current = float(target)
    return state
