"""The sequential test in simulation: its false-alarm rate under a correct model, and its detection of a
20 % clearance bias in one subgroup.

The simulated hospital doses to steady state; the average steady-state concentration is dose / (CL · tau),
so with log-normal clearance (omega_CL 0.3) and exponential residual error (sigma 0.15) the model's
predictive distribution of log concentration is exactly normal with SD sqrt(0.3² + 0.15²): the PIT of each
level is computed in closed form, with no engine approximation in the way.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr

from performance import sequential

OMEGA_CL = 0.3
SIGMA = 0.15
CL_L_PER_H = 5.0
DOSE_PER_TAU_MG_PER_H = 1000.0 / 12.0


def hospital_pits(rng: np.random.Generator, runs: int, levels: int, true_cl_ratio: float) -> np.ndarray:
    """PITs of ``levels`` patients' levels in each of ``runs`` simulated subgroups whose true clearance is
    ``true_cl_ratio`` times what the model says."""
    eta = rng.normal(0.0, OMEGA_CL, size=(runs, levels))
    eps = rng.normal(0.0, SIGMA, size=(runs, levels))
    log_c = np.log(DOSE_PER_TAU_MG_PER_H / (CL_L_PER_H * true_cl_ratio)) - eta + eps
    predicted = math.log(DOSE_PER_TAU_MG_PER_H / CL_L_PER_H)
    return ndtr((log_c - predicted) / math.hypot(OMEGA_CL, SIGMA))


def test_the_false_alarm_rate_under_a_correct_model_is_as_stated() -> None:
    rng = np.random.default_rng(2017)
    runs = 4000
    pits = hospital_pits(rng, runs, sequential.FALSE_ALARM_HORIZON, 1.0)
    rate = float((sequential.first_alarm(pits) > 0).mean())
    # stated: at most 1 % (0.8 % in calibration); 4000 runs give a binomial SD of 0.14 %
    assert rate <= sequential.FALSE_ALARM_RATE + 0.003
    assert rate >= 0.002  # a threshold so high that it never fires would not detect anything either


def test_a_20_percent_clearance_bias_in_one_subgroup_is_detected_and_the_others_stay_quiet() -> None:
    rng = np.random.default_rng(117)
    runs, levels = 500, 300
    biased = hospital_pits(rng, runs, levels, 0.8)  # true CL 20 % lower: levels about 25 % higher
    correct = hospital_pits(rng, runs, levels, 1.0)
    alarm_biased = sequential.first_alarm(biased)
    alarm_correct = sequential.first_alarm(correct)
    assert (alarm_biased > 0).mean() >= 0.99  # detected within 300 levels of the subgroup
    assert 30 <= np.median(alarm_biased[alarm_biased > 0]) <= 90  # median 60-70 levels (stated)
    assert (alarm_correct > 0).mean() <= 0.01  # the correct subgroup: false alarms within 300 levels
    state, _ = sequential.run(biased[0])
    assert state.bias_high > state.bias_low  # the test that fires says which way: levels higher


def test_a_20_percent_higher_clearance_is_flagged_as_levels_lower_than_predicted() -> None:
    rng = np.random.default_rng(3)
    pits = hospital_pits(rng, 1, 400, 1.2)[0]
    _, path = sequential.run(pits)
    low = sequential.TESTS.index("bias_low")
    assert (path[:, low] > sequential.THRESHOLD).any()
    assert not (path[:, sequential.TESTS.index("bias_high")] > sequential.THRESHOLD).any()


def test_step_by_step_equals_the_whole_run() -> None:
    pits = np.random.default_rng(5).uniform(size=50)
    state = sequential.CusumState()
    for pit in pits:
        state = sequential.step(state, float(pit))
    whole, _ = sequential.run(pits)
    assert state.n == whole.n == 50
    for test in sequential.TESTS:
        assert abs(state.statistic(test) - whole.statistic(test)) < 1e-9
