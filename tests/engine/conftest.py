"""Shared helpers for the engine tests: model documents and an independent reference ODE integrator.

Nothing here imports Django. The reference integrator deliberately shares no code with ``mipd_engine``: the
right-hand side is written from rate constants the test chooses (``k10 = CL/V1``...), integrated with scipy's
LSODA at rtol 1e-10, restarting at every dose, infusion start/end, parameter change and reset.
"""

from __future__ import annotations

import copy
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir
from scipy.integrate import solve_ivp

# -- hypothesis --------------------------------------------------------------------------------------------

# Deterministic by default (same examples on every run, no example database written to disk). For a deeper
# search locally: MIPD_HYPOTHESIS_EXAMPLES=500 MIPD_HYPOTHESIS_RANDOM=1 (new examples on every run).
PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("MIPD_HYPOTHESIS_EXAMPLES", "30")),
    deadline=None,
    database=None,
    derandomize=os.environ.get("MIPD_HYPOTHESIS_RANDOM", "") not in {"1", "true", "yes"},
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


# Hypothesis caches constants under ./.hypothesis even without an example database (from collection time
# on): keep that in a temporary directory, removed at exit, rather than in the working tree.
_HYPOTHESIS_HOME = tempfile.TemporaryDirectory(prefix="mipd-engine-hypothesis-")
set_hypothesis_home_dir(_HYPOTHESIS_HOME.name)

# -- model documents ---------------------------------------------------------------------------------------

PROPORTIONAL_ERROR = {"model": "proportional", "proportional": 0.2}


def make_model(**overrides: Any) -> dict[str, Any]:
    """A valid one-compartment IV ``mipd-model/1`` document; keyword arguments replace top-level keys.

    An override of ``None`` removes the key. The result is a fresh deep copy, safe to mutate.
    """
    document: dict[str, Any] = {
        "format": "mipd-model/1",
        "id": "test-1cmt-iv",
        "drug": "testdrug",
        "title": "One compartment, IV (test model)",
        "citation": {"text": "test fixture"},
        "structure": {"preset": "1cmt"},
        "thetas": {"TVCL": 4.0, "TVV": 50.0},
        "covariates": {"WT": {"unit": "kg", "min": 30, "max": 180, "reference": 70}},
        "parameters": {"CL": "TVCL * (WT/70)**0.75 * exp(ETA_CL)", "V": "TVV * WT/70 * exp(ETA_V)"},
        "omega": {"etas": ["ETA_CL", "ETA_V"], "type": "variance", "matrix": [[0.1, 0.0], [0.0, 0.05]]},
        "outputs": {
            "conc": {
                "compartment": "central",
                "volume": "V",
                "scale": 1,
                "unit": "mg/L",
                "error": PROPORTIONAL_ERROR,
            }
        },
    }
    for key, value in overrides.items():
        if value is None:
            document.pop(key, None)
        else:
            document[key] = copy.deepcopy(value)
    return copy.deepcopy(document)


PRESET_PARAMETERS = {
    "1cmt": ("CL", "V"),
    "2cmt": ("CL", "V1", "Q", "V2"),
    "3cmt": ("CL", "V1", "Q2", "V2", "Q3", "V3"),
}


def preset_model(
    preset: str,
    values: dict[str, float],
    *,
    absorption: bool = False,
    eta_on: Sequence[str] = (),
    inputs: dict[str, Any] | None = None,
    routes: dict[str, list[str]] | None = None,
    extra_parameters: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A preset model whose parameter ``P`` is ``TVP`` (times ``exp(ETA_P)`` for ``P`` in ``eta_on``).

    ``values`` holds the typical value of each parameter (and of any extra ones, e.g. ``F`` or ``TLAG``).
    """
    parameters = {}
    for name in values:
        parameters[name] = f"TV{name} * exp(ETA_{name})" if name in eta_on else f"TV{name}"
    parameters.update(extra_parameters or {})
    etas = [f"ETA_{name}" for name in eta_on] or ["ETA_DUMMY"]
    volume = "V" if preset == "1cmt" else "V1"
    document = make_model(
        id=f"test-{preset}",
        structure={"preset": preset, **({"absorption": "first-order"} if absorption else {})},
        thetas={f"TV{name}": float(value) for name, value in values.items()},
        covariates=None,
        parameters=parameters,
        omega={"etas": etas, "type": "variance", "matrix": np.diag(np.full(len(etas), 0.1)).tolist()},
        outputs={
            "conc": {"compartment": "central", "volume": volume, "unit": "mg/L", "error": PROPORTIONAL_ERROR}
        },
    )
    if inputs:
        document["inputs"] = inputs
    if routes:
        document["routes"] = routes
    return document


def mammillary_flows(preset: str, p: dict[str, float], *, absorption: bool = False) -> list[Flow]:
    """First-order flows of the textbook mammillary models, written out by hand from micro constants.

    Compartment order: [depot], central, peripheral, peripheral2.
    """
    c = 1 if absorption else 0
    flows: list[Flow] = []
    if absorption:
        flows.append((0, c, p["KA"]))
    if preset == "1cmt":
        flows.append((c, None, p["CL"] / p["V"]))
    elif preset == "2cmt":
        v1 = p["V1"]
        flows += [(c, None, p["CL"] / v1), (c, c + 1, p["Q"] / v1), (c + 1, c, p["Q"] / p["V2"])]
    elif preset == "3cmt":
        v1 = p["V1"]
        flows += [
            (c, None, p["CL"] / v1),
            (c, c + 1, p["Q2"] / v1),
            (c + 1, c, p["Q2"] / p["V2"]),
            (c, c + 2, p["Q3"] / v1),
            (c + 2, c, p["Q3"] / p["V3"]),
        ]
    else:  # pragma: no cover - test misuse
        raise ValueError(preset)
    return flows


# -- the reference integrator ------------------------------------------------------------------------------

Flow = tuple[int, int | None, float]  # (source, target or None for elimination, rate constant 1/h)
MichaelisMenten = tuple[
    int, int | None, float, float, float
]  # (source, target, vmax mg/h, km mg/L, volume L)


@dataclass(frozen=True)
class Kinetics:
    """The right-hand side in force over one period: dA/dt = flows + Michaelis-Menten flows + inputs."""

    n_compartments: int
    flows: tuple[Flow, ...]
    saturable: tuple[MichaelisMenten, ...] = ()

    def matrix(self) -> np.ndarray:
        k = np.zeros((self.n_compartments, self.n_compartments))
        for source, target, rate in self.flows:
            k[source, source] -= rate
            if target is not None:
                k[target, source] += rate
        return k

    def functions(self, input_rate: np.ndarray) -> tuple[Callable, Callable]:
        k = self.matrix()
        saturable = self.saturable

        def rhs(_t: float, a: np.ndarray) -> np.ndarray:
            d = k @ a + input_rate
            for source, target, vmax, km, volume in saturable:
                c = a[source] / volume
                flux = vmax * c / (km + c)
                d[source] -= flux
                if target is not None:
                    d[target] += flux
            return d

        def jac(_t: float, a: np.ndarray) -> np.ndarray:
            j = k.copy()
            for source, target, vmax, km, volume in saturable:
                c = a[source] / volume
                dflux = vmax * km / (km + c) ** 2 / volume
                j[source, source] -= dflux
                if target is not None:
                    j[target, source] += dflux
            return j

        return rhs, jac


@dataclass(frozen=True)
class Input:
    """One administration into one compartment: a bolus (duration 0) or a zero-order input."""

    start_h: float
    amount_mg: float
    compartment: int
    duration_h: float = 0.0
    administered_h: float | None = None  # before any lag; inputs administered before a reset are dropped

    @property
    def end_h(self) -> float:
        return self.start_h + self.duration_h

    @property
    def given_h(self) -> float:
        return self.start_h if self.administered_h is None else self.administered_h


REFERENCE_RTOL = 1e-10


def reference_amounts(
    phases: Sequence[tuple[float, Kinetics]] | Kinetics,
    inputs: Iterable[Input],
    times_h: Sequence[float] | np.ndarray,
    *,
    resets_h: Iterable[float] = (),
    initial: tuple[float, np.ndarray] | None = None,
) -> np.ndarray:
    """Amounts (T, n) at ``times_h`` by direct numerical integration (LSODA, rtol 1e-10).

    ``phases`` is ``[(start_h, kinetics), ...]`` (the first start is ignored): kinetics ``i`` apply over
    ``(start_i, start_{i+1}]``. A level at the time of a bolus or reset is taken before it. ``initial`` is
    ``(t0, amounts)``: start from those amounts at t0 instead of from zero before the first event.
    """
    if isinstance(phases, Kinetics):
        phases = [(-math.inf, phases)]
    phase_starts = np.array([-math.inf] + [start for start, _ in phases[1:]])
    n = phases[0][1].n_compartments
    inputs = list(inputs)
    resets = sorted(set(resets_h))
    times = np.asarray(times_h, dtype=float)
    total = sum(i.amount_mg for i in inputs) + (float(np.sum(initial[1])) if initial else 0.0)
    atol = 1e-14 * max(total, 1.0)
    points = {*times.tolist(), *resets, *phase_starts[1:].tolist()}
    for i in inputs:
        points.add(i.start_h)
        if i.duration_h > 0:
            points.add(i.end_h)
    if initial is not None:
        points = {t for t in points if t >= initial[0]} | {initial[0]}
    ordered = sorted(points)
    state = np.zeros(n) if initial is None else np.array(initial[1], dtype=float)
    out = np.full((times.size, n), np.nan)
    last_reset = -math.inf
    current = ordered[0]
    for t in ordered:
        if t > current:
            # Kinetics in force over (current, t]: the phase holding t.
            kinetics = phases[int(np.searchsorted(phase_starts, t, side="left")) - 1][1]
            rate = np.zeros(n)
            for i in inputs:
                if i.duration_h > 0 and i.start_h <= current and i.end_h >= t and i.given_h >= last_reset:
                    rate[i.compartment] += i.amount_mg / i.duration_h
            rhs, jac = kinetics.functions(rate)
            if t - current < 1e-9 * max(1.0, abs(t)):
                # LSODA stalls on spans of a few ulps; one explicit step is exact to O(span²) there.
                state = state + (t - current) * rhs(current, state)
            else:
                result = solve_ivp(
                    rhs, (current, t), state, method="LSODA", rtol=REFERENCE_RTOL, atol=atol, jac=jac
                )
                assert result.success, result.message
                state = result.y[:, -1]
            current = t
        out[times == t] = state  # before the events at t: pre-dose, pre-reset
        if t in resets:
            state = np.zeros(n)
            last_reset = t
        for i in inputs:
            if i.duration_h <= 0 and i.start_h == t and i.given_h >= last_reset:
                state[i.compartment] += i.amount_mg
    assert not np.isnan(out).any(), "a requested time was not reached"
    return out


def reference_steady_state(
    kinetics: Kinetics, inputs: Sequence[Input], interval_h: float, *, t0: float = 0.0
) -> np.ndarray:
    """Pre-dose amounts at steady state of a linear system given ``inputs`` (relative to t0) every interval.

    The one-interval map of a linear system is affine, A ↦ M A + b; its fixed point A* = (I − M)⁻¹ b is the
    limit of infinitely many doses. M and b are integrated numerically. Inputs must end within the interval.
    """
    assert not kinetics.saturable
    assert all(i.end_h - t0 <= interval_h for i in inputs), "inputs must end within one interval"
    n = kinetics.n_compartments
    end = t0 + interval_h
    b = reference_amounts(kinetics, inputs, [end])[0]
    m = np.empty((n, n))
    for j in range(n):
        m[:, j] = reference_amounts(kinetics, [], [end], initial=(t0, np.eye(n)[j]))[0]
    return np.linalg.solve(np.eye(n) - m, b)


def assert_matches_reference(
    actual: np.ndarray,
    expected: np.ndarray,
    *,
    peak: float = 0.0,
    rtol: float = 1e-6,
    floor: float = 1e-9,
    err_msg: str = "",
) -> None:
    """|actual − expected| <= rtol·|expected| + floor·peak, with peak at least max|expected|.

    The absolute floor (a billionth of the peak concentration; pass ``peak`` = largest dose / central
    volume when the sampled times may all miss the peak) only matters where the expected value is itself
    ~0: before the first dose or an absorption lag, or after many half-lives, where a relative error is
    meaningless.
    """
    expected = np.asarray(expected, dtype=float)
    atol = floor * max(peak, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=err_msg)
