"""Performance statistics against values computed by hand on a small fixed set."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq

from performance import statistics

# Four levels, predicted median 10 mg/L each: errors 2, -2, 0, 5 mg/L.
OBSERVED = np.array([12.0, 8.0, 10.0, 15.0])
MEDIAN = np.full(4, 10.0)
PI50 = np.tile([9.5, 10.5], (4, 1))  # only the 10 mg/L level inside: 1 of 4
PI90 = np.tile([7.0, 16.0], (4, 1))  # every level inside: 4 of 4
PIT = np.array([0.95, 0.05, 0.5, 0.99])


@pytest.fixture(scope="module")
def result() -> statistics.Performance:
    return statistics.performance(observed=OBSERVED, median=MEDIAN, pi50=PI50, pi90=PI90, pit=PIT)


def test_it_gives_the_bias_computed_by_hand(result) -> None:
    assert result.n_levels == 4
    assert result.mean_error.value == pytest.approx(1.25, abs=1e-12)  # (2 - 2 + 0 + 5) / 4
    assert result.median_error.value == pytest.approx(1.0, abs=1e-12)  # mean of 0 and 2
    assert result.mean_relative_error_pct.value == pytest.approx(12.5, abs=1e-10)  # (20 - 20 + 0 + 50) / 4
    assert result.median_relative_error_pct.value == pytest.approx(10.0, abs=1e-10)


def test_it_gives_the_imprecision_computed_by_hand(result) -> None:
    assert result.rmse.value == pytest.approx(math.sqrt((4 + 4 + 0 + 25) / 4), abs=1e-12)  # 2.8723
    assert result.mape_pct.value == pytest.approx(22.5, abs=1e-10)  # (20 + 20 + 0 + 50) / 4


def test_coverage_has_exact_binomial_intervals(result) -> None:
    assert result.coverage_90.value == 1.0
    # all n inside: the lower Clopper-Pearson limit is (alpha/2)^(1/n)
    assert result.coverage_90.low == pytest.approx(0.025**0.25, abs=1e-10)  # 0.3976
    assert result.coverage_90.high == 1.0
    assert result.coverage_50.value == 0.25
    # one of four: lower limit 1 - (1 - alpha/2)^(1/n); upper limit p with P(X <= 1 | p) = alpha/2
    assert result.coverage_50.low == pytest.approx(1 - 0.975**0.25, abs=1e-10)  # 0.00631
    upper = brentq(lambda p: (1 - p) ** 4 + 4 * p * (1 - p) ** 3 - 0.025, 0.01, 0.99, xtol=1e-14)
    assert result.coverage_50.high == pytest.approx(upper, abs=1e-9)  # 0.8059
    assert result.coverage_50.method == "exact binomial (Clopper-Pearson)"


def test_the_pit_histogram_counts_each_tenth(result) -> None:
    assert result.pit_counts == (1, 0, 0, 0, 0, 1, 0, 0, 0, 2)
    assert result.pit_fractions[9].value == 0.5


def test_the_median_interval_is_the_exact_order_statistic_interval() -> None:
    values = np.arange(1.0, 11.0)  # n = 10: P(B <= 1) = 11/1024 <= 0.025 < P(B <= 2) = 56/1024
    estimate = statistics.median_interval(values)
    assert (estimate.value, estimate.low, estimate.high) == (5.5, 2.0, 9.0)  # x_(2), x_(9): 97.9 %
    assert statistics.median_interval(np.arange(1.0, 5.0)).low is None  # n = 4 cannot reach 95 %
    six = statistics.median_interval(np.arange(1.0, 7.0))  # 1 - 2/64 = 96.9 %: x_(1), x_(6)
    assert (six.low, six.high) == (1.0, 6.0)


def test_the_bootstrap_is_reproducible_and_matches_the_normal_interval_on_a_large_sample() -> None:
    rng = np.random.default_rng(7)
    n = 400
    median = np.full(n, 10.0)
    observed = median + rng.normal(1.0, 2.0, n)
    pis = np.tile([0.0, 100.0], (n, 1))
    first = statistics.performance(observed=observed, median=median, pi50=pis, pi90=pis, pit=np.full(n, 0.5))
    again = statistics.performance(observed=observed, median=median, pi50=pis, pi90=pis, pit=np.full(n, 0.5))
    assert first.mean_error == again.mean_error  # same scores, same interval: fixed seed
    error = observed - median
    half = 1.959964 * error.std(ddof=1) / math.sqrt(n)
    # the percentile bootstrap of a mean approaches the t interval; 1000 resamples: within 10 % of its width
    assert first.mean_error.low == pytest.approx(error.mean() - half, abs=0.1 * half)
    assert first.mean_error.high == pytest.approx(error.mean() + half, abs=0.1 * half)
    assert first.mean_error.method == "percentile bootstrap"


def test_no_levels_gives_no_figure() -> None:
    empty = statistics.performance(
        observed=np.array([]),
        median=np.array([]),
        pi50=np.zeros((0, 2)),
        pi90=np.zeros((0, 2)),
        pit=np.array([]),
    )
    assert empty.n_levels == 0
    assert empty.mean_error.value is None and empty.coverage_90.value is None


def test_above_the_bootstrap_limit_the_normal_interval_agrees_with_the_bootstrap(monkeypatch) -> None:
    rng = np.random.default_rng(11)
    n = 3000
    median = np.full(n, 10.0)
    observed = median * np.exp(rng.normal(0.05, 0.3, n))
    pis = np.tile([0.0, 100.0], (n, 1))
    kwargs = {"observed": observed, "median": median, "pi50": pis, "pi90": pis, "pit": np.full(n, 0.5)}
    boot = statistics.performance(**kwargs)
    monkeypatch.setattr(statistics, "BOOTSTRAP_MAX_N", 1000)
    normal = statistics.performance(**kwargs)
    assert normal.mean_error.method.startswith("normal approximation")
    for name in ("mean_error", "mean_relative_error_pct", "rmse", "mape_pct"):
        b, a = getattr(boot, name), getattr(normal, name)
        width = b.high - b.low
        assert a.value == pytest.approx(b.value, rel=1e-12)
        # 1000 resamples: the bootstrap's limits carry about 5 % of the width in Monte Carlo error
        assert a.low == pytest.approx(b.low, abs=0.1 * width)
        assert a.high == pytest.approx(b.high, abs=0.1 * width)
