"""KDIGO 2012 creatinine criteria for acute kidney injury (section 2.1.1), on examples worked by hand:
a rise of at least 0.3 mg/dL within 48 h, or to at least 1.5 times the lowest value of the last 7 days.
"""

from __future__ import annotations

import pytest

from mipd_engine.renal_stability import creatinine_stability

ABSOLUTE = "a rise of at least 0.3 mg/dL within 48 h"
RELATIVE = "at least 1.5 times the lowest value of the last 7 days"


def test_a_rise_of_0_3_mg_per_dl_within_48_h_is_unstable() -> None:
    result = creatinine_stability([(0.0, 1.0), (47.0, 1.3)], now_h=48.0)  # 1.3 / 1.0 < 1.5

    assert not result.stable
    assert result.criterion == ABSOLUTE
    assert (result.from_h, result.to_h) == (0.0, 47.0)
    assert result.from_mg_per_dl == pytest.approx(1.0, abs=1e-12)
    assert result.to_mg_per_dl == pytest.approx(1.3, abs=1e-12)


def test_a_rise_of_0_29_mg_per_dl_within_48_h_is_stable() -> None:
    result = creatinine_stability([(0.0, 1.0), (47.0, 1.29)], now_h=48.0)

    assert result.stable
    assert result.message == "" and result.criterion == ""


def test_a_rise_of_exactly_0_3_is_caught_despite_binary_rounding() -> None:
    assert 2.4 - 2.1 < 0.3  # 0.2999999999999998 in binary floating point

    result = creatinine_stability([(0.0, 2.1), (24.0, 2.4)], now_h=30.0)

    assert not result.stable and result.criterion == ABSOLUTE


def test_the_48_h_window_is_inclusive_and_a_slower_rise_is_not_absolute() -> None:
    assert not creatinine_stability([(0.0, 1.0), (48.0, 1.3)], now_h=48.0).stable
    slower = creatinine_stability([(0.0, 1.0), (49.0, 1.3)], now_h=49.0)  # and 1.3x < 1.5x
    assert slower.stable


def test_1_5_times_the_lowest_value_within_7_days_is_unstable() -> None:
    # Daily values rising by 0.05 mg/dL: at most 0.10 mg/dL in any 48 h, but 0.90 / 0.60 = 1.5 over 6 days.
    series = [(24.0 * day, 0.60 + 0.05 * day) for day in range(7)]

    result = creatinine_stability(series, now_h=150.0)

    assert not result.stable
    assert result.criterion == RELATIVE
    assert result.from_mg_per_dl == pytest.approx(0.60, abs=1e-12)
    assert result.to_mg_per_dl == pytest.approx(0.90, abs=1e-12)
    assert (result.from_h, result.to_h) == (0.0, 144.0)


def test_just_under_1_5_times_within_7_days_is_stable() -> None:
    series = [(24.0 * day, 0.60 + 0.05 * day) for day in range(6)] + [(144.0, 0.89)]

    assert creatinine_stability(series, now_h=150.0).stable


def test_the_baseline_is_the_lowest_earlier_value_of_the_window() -> None:
    # 1.2 -> 0.7 -> 1.06: 1.06 / 0.7 = 1.51 (the earlier 1.2 is not the baseline); 0.36 mg/dL in 72 h.
    result = creatinine_stability([(0.0, 1.2), (48.0, 0.7), (120.0, 1.06)], now_h=121.0)

    assert not result.stable and result.criterion == RELATIVE
    assert result.from_mg_per_dl == pytest.approx(0.7, abs=1e-12)


def test_a_rise_that_ended_more_than_7_days_ago_is_stable() -> None:
    series = [(0.0, 1.0), (24.0, 2.0)]  # both criteria met at 24 h

    assert not creatinine_stability(series, now_h=24.0 + 7 * 24.0 - 24.0).stable  # whole rise in the window
    assert creatinine_stability(series, now_h=24.0 + 7 * 24.0 + 1.0).stable


def test_a_falling_creatinine_is_stable() -> None:
    assert creatinine_stability([(0.0, 2.4), (24.0, 1.9), (48.0, 1.5), (72.0, 1.2)], now_h=80.0).stable


def test_a_single_or_no_value_is_stable() -> None:
    assert creatinine_stability([], now_h=0.0).stable
    assert creatinine_stability([(0.0, 3.0)], now_h=10.0).stable


def test_values_after_now_are_not_used() -> None:
    series = [(0.0, 1.0), (30.0, 2.0)]

    assert creatinine_stability(series, now_h=29.0).stable
    assert not creatinine_stability(series, now_h=30.0).stable


def test_the_largest_qualifying_rise_is_reported() -> None:
    result = creatinine_stability([(0.0, 1.0), (24.0, 1.35), (48.0, 1.8)], now_h=50.0)

    assert not result.stable
    assert result.from_mg_per_dl == pytest.approx(1.0, abs=1e-12)
    assert result.to_mg_per_dl == pytest.approx(1.8, abs=1e-12)
    assert result.criterion == RELATIVE  # 1.8 = 1.8x; the 0.8 mg/dL in 48 h also qualifies


def test_the_message_names_the_values_the_time_and_the_criterion() -> None:
    absolute = creatinine_stability([(0.0, 1.0), (40.0, 1.4)], now_h=41.0)
    relative = creatinine_stability([(0.0, 0.6), (120.0, 0.95)], now_h=121.0)

    assert absolute.message.startswith(
        "renal function unstable: serum creatinine rose from 1.00 to 1.40 mg/dL in 40 h "
        "(a rise of at least 0.3 mg/dL within 48 h: KDIGO acute kidney injury)"
    )
    assert "from 0.60 to 0.95 mg/dL in 120 h (at least 1.5 times the lowest value" in relative.message
    for result in (absolute, relative):
        assert "Creatinine-based clearance assumes a steady state" in result.message
        assert "recheck creatinine" in result.message
