"""The sequential test that raises a model-performance alert: CUSUMs on the standardized PIT.

Under a correct model each prospectively scored level's PIT (its quantile in the predictive distribution made
from the data before it) is uniform, and successive PITs are independent (Dawid's prequential principle), so
``z = Φ⁻¹(PIT)`` is a sequence of independent standard normal values. Three one-sided CUSUMs of the
log-likelihood ratio (Page 1954) watch each subgroup of each model version, level by level in the order the
levels were scored:

* ``bias_high``: the levels run higher than predicted, z ~ N(+δ, 1) against N(0, 1);
* ``bias_low``: lower than predicted, z ~ N(-δ, 1);
* ``dispersion``: the prediction intervals are too narrow (coverage below what they promise),
  z ~ N(0, λ²) against N(0, 1).

δ = 0.5 is half a predictive standard deviation: about what a 20 % clearance error gives a typical
aminoglycoside or vancomycin level (log(1.25) = 0.22 against a predictive SD of log concentration of
0.35-0.45);
λ = 1.5 means intervals about two thirds as wide as they should be (a 90 % interval covering about 73 %).

S_n = max(0, S_(n-1) + log LR(z_n)); an alert is raised when S_n > :data:`THRESHOLD`. The threshold was set by
simulation for the **stated false-alarm rate**: under a correct model, the probability that any of a
subgroup's three CUSUMs raises an alert within its first :data:`FALSE_ALARM_HORIZON` levels is at most
:data:`FALSE_ALARM_RATE` (1 %; 0.8 % in 10,000 simulated runs). tests/performance/test_sequential.py checks
it in simulation, and that a 20 %
clearance bias in one subgroup is detected (median after about 60-70 levels of that subgroup) while the others
stay quiet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

SHIFT_SD = 0.5  # δ: the bias in predictive SDs the bias CUSUMs are tuned to detect
DISPERSION_RATIO = 1.5  # λ: the predictive SD ratio the dispersion CUSUM is tuned to detect
THRESHOLD = 10.0  # in log-likelihood-ratio units (nats); see the module docstring
FALSE_ALARM_HORIZON = 1000  # levels of one subgroup
FALSE_ALARM_RATE = 0.01  # P(any false alarm within the horizon) is below this (0.8 % in 10,000 runs)
PIT_CLIP = 1e-6  # a PIT of exactly 0 or 1 (a level beyond every draw) counts as 4.75 SD

TESTS = ("bias_high", "bias_low", "dispersion")
TEST_LABELS = {
    "bias_high": "levels higher than predicted (bias)",
    "bias_low": "levels lower than predicted (bias)",
    "dispersion": "prediction intervals too narrow (coverage below nominal)",
}


def standardized(pit: np.ndarray | float) -> np.ndarray:
    """z = Φ⁻¹(PIT), with PITs of 0 or 1 clipped."""
    return ndtri(np.clip(np.asarray(pit, dtype=float), PIT_CLIP, 1.0 - PIT_CLIP))


def increments(z: np.ndarray) -> dict[str, np.ndarray]:
    """log LR of each alternative against the correct model, per level."""
    z = np.asarray(z, dtype=float)
    d = SHIFT_SD
    lam2 = DISPERSION_RATIO**2
    return {
        "bias_high": d * z - d * d / 2.0,
        "bias_low": -d * z - d * d / 2.0,
        "dispersion": 0.5 * z * z * (1.0 - 1.0 / lam2) - math.log(DISPERSION_RATIO),
    }


@dataclass(frozen=True)
class CusumState:
    """The three statistics of one subgroup after n levels."""

    n: int = 0
    bias_high: float = 0.0
    bias_low: float = 0.0
    dispersion: float = 0.0

    def statistic(self, test: str) -> float:
        return float(getattr(self, test))

    def alarms(self) -> tuple[str, ...]:
        return tuple(t for t in TESTS if self.statistic(t) > THRESHOLD)


def step(state: CusumState, pit: float) -> CusumState:
    """The state after one more level with this PIT."""
    inc = increments(standardized(np.array([pit])))
    return CusumState(
        state.n + 1,
        **{t: max(0.0, state.statistic(t) + float(inc[t][0])) for t in TESTS},
    )


def run(pits: np.ndarray) -> tuple[CusumState, np.ndarray]:
    """Every statistic along a sequence of PITs: the final state and an (n, 3) array of the path."""
    z = standardized(pits)
    inc = increments(z)
    path = np.zeros((z.size, len(TESTS)))
    s = np.zeros(len(TESTS))
    for i in range(z.size):
        s = np.maximum(0.0, s + np.array([inc[t][i] for t in TESTS]))
        path[i] = s
    final = CusumState(int(z.size), *(float(v) for v in s)) if z.size else CusumState()
    return final, path


def first_alarm(pits: np.ndarray) -> np.ndarray:
    """Vectorized over runs: for an (runs, n) array of PITs, the 1-based index of each run's first alarm
    (any of the three tests), or 0 when none."""
    pits = np.atleast_2d(pits)
    z = standardized(pits)
    inc = increments(z)
    runs, n = z.shape
    s = np.zeros((len(TESTS), runs))
    alarm = np.zeros(runs, dtype=int)
    for i in range(n):
        s = np.maximum(0.0, s + np.stack([inc[t][:, i] for t in TESTS]))
        fresh = (alarm == 0) & (s > THRESHOLD).any(axis=0)
        alarm[fresh] = i + 1
    return alarm
