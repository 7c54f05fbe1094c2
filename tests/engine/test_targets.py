"""Targets and their metrics against closed forms of a one-compartment model, computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mipd_engine.errors import InvalidInputError
from mipd_engine.events import Dose, PatientRecord
from mipd_engine.exposure import Window, cmax, time_above
from mipd_engine.model import parse_model
from mipd_engine.simulation import PatientSimulator
from mipd_engine.targets import Target, metric_values, time_above_thresholds

CL, V, KA = 4.0, 50.0, 1.3
ETA = np.array([[0.0], [0.3], [-0.4]])  # ETA_CL
CLS = CL * np.exp(ETA[:, 0])
KS = CLS / V


def _model(*, oral: bool = False, unit: str = "mg/L", scale: float = 1.0):
    structure = {"preset": "1cmt", "absorption": "first-order"} if oral else {"preset": "1cmt"}
    parameters = {"CL": f"{CL} * exp(ETA_CL)", "V": f"{V}"}
    if oral:
        parameters["KA"] = f"{KA}"
    return parse_model(
        {
            "format": "mipd-model/1",
            "id": "targets-test",
            "structure": structure,
            "parameters": parameters,
            "omega": {"etas": ["ETA_CL"], "type": "variance", "matrix": [[0.1]]},
            "outputs": {
                "conc": {
                    "compartment": "central",
                    "volume": "V",
                    "scale": scale,
                    "unit": unit,
                    "error": {"model": "proportional", "proportional": 0.1},
                }
            },
        }
    )


def _steady_state_infusion(dose: float, tau: float, duration: float, start: float = 0.0):
    record = PatientRecord(
        doses=(
            Dose(start, dose, route="iv_infusion", duration_h=duration, interval_h=tau, steady_state=True),
        )
    )
    return PatientSimulator(_model(), record)


def _ss_infusion_level(dose, tau, duration, t):
    """Steady-state concentration t h after the start of an infusion (1-cmt), per eta row."""
    rate = dose / duration
    k = KS
    peak = rate / CLS * (1 - np.exp(-k * duration)) / (1 - np.exp(-k * tau))
    trough = peak * np.exp(-k * (tau - duration))
    if t <= duration:
        return trough * np.exp(-k * t) + rate / CLS * (1 - np.exp(-k * t))
    return peak * np.exp(-k * (t - duration))


# -- metrics ---------------------------------------------------------------------------------------------


def test_auc24_at_steady_state_is_the_daily_dose_over_clearance():
    simulator = _steady_state_infusion(1000.0, 12.0, 1.0, start=72.0)
    values = metric_values(Target("auc24", 400, 600), simulator, ETA, regimen_start_h=72.0, interval_h=12.0)
    np.testing.assert_allclose(values, 2000.0 / CLS, rtol=1e-9)


def test_auc24_for_an_interval_longer_than_a_day_is_the_daily_average():
    simulator = _steady_state_infusion(1500.0, 36.0, 2.0)
    values = metric_values(Target("auc24", 400, 600), simulator, ETA, regimen_start_h=0.0, interval_h=36.0)
    np.testing.assert_allclose(values, 1500.0 * 24.0 / 36.0 / CLS, rtol=1e-9)


def test_auc_tau_and_css_are_the_interval_auc_and_its_average():
    simulator = _steady_state_infusion(1000.0, 8.0, 0.5)
    auc_tau = metric_values(Target("auc_tau", 100, 300), simulator, ETA, regimen_start_h=0.0, interval_h=8.0)
    css = metric_values(Target("css", 10, 30), simulator, ETA, regimen_start_h=0.0, interval_h=8.0)
    np.testing.assert_allclose(auc_tau, 1000.0 / CLS, rtol=1e-9)
    np.testing.assert_allclose(css, 1000.0 / CLS / 8.0, rtol=1e-9)


def test_css_of_a_continuous_infusion_is_the_rate_over_clearance():
    simulator = _steady_state_infusion(2400.0, 24.0, 24.0)
    values = metric_values(Target("css", 20, 25), simulator, ETA, regimen_start_h=0.0, interval_h=24.0)
    np.testing.assert_allclose(values, 100.0 / CLS, rtol=1e-9)


def test_trough_and_peak_at_steady_state_match_the_closed_form():
    simulator = _steady_state_infusion(1000.0, 12.0, 1.0, start=24.0)
    trough = metric_values(Target("trough", 10, 20), simulator, ETA, regimen_start_h=24.0, interval_h=12.0)
    peak = metric_values(
        Target("peak", 20, 40, peak_after_end_h=0.5),
        simulator,
        ETA,
        regimen_start_h=24.0,
        interval_h=12.0,
        infusion_duration_h=1.0,
    )
    np.testing.assert_allclose(trough, _ss_infusion_level(1000.0, 12.0, 1.0, 12.0), rtol=1e-10)
    np.testing.assert_allclose(peak, _ss_infusion_level(1000.0, 12.0, 1.0, 1.5), rtol=1e-10)


def test_auc_window_counts_the_doses_given_before_the_regimen():
    # A 500 mg bolus at 0 h, then the regimen: a 1000 mg bolus at 24 h; AUC over [24, 36] h.
    record = PatientRecord(doses=(Dose(0.0, 500.0, route="iv_bolus"), Dose(24.0, 1000.0, route="iv_bolus")))
    values = metric_values(
        Target("auc_window", 100, 300, window_h=(0.0, 12.0)),
        PatientSimulator(_model(), record),
        ETA,
        regimen_start_h=24.0,
    )
    k = KS
    past = 500.0 / CLS * (np.exp(-k * 24.0) - np.exp(-k * 36.0))
    new = 1000.0 / CLS * (1 - np.exp(-k * 12.0))
    np.testing.assert_allclose(values, past + new, rtol=1e-10)


def test_auc24_over_a_window_is_not_at_steady_state():
    record = PatientRecord(doses=(Dose(0.0, 1000.0, route="iv_bolus", interval_h=12.0, additional=3),))
    values = metric_values(
        Target("auc24", 300, 500, window_h=(24.0, 48.0)),
        PatientSimulator(_model(), record),
        ETA,
        regimen_start_h=0.0,
    )
    k = KS
    expected = sum(
        1000.0 / CLS * (np.exp(-k * max(0.0, 24.0 - t)) - np.exp(-k * (48.0 - t))) for t in (0, 12, 24, 36)
    )
    np.testing.assert_allclose(values, expected, rtol=1e-10)


def test_cumulative_auc_runs_from_the_first_dose_of_the_record():
    # Busulfan-like: doses at 0 h (past) and 24 h (regimen start); cumulative AUC to 24 h after the start.
    record = PatientRecord(doses=(Dose(0.0, 200.0, route="iv_bolus"), Dose(24.0, 300.0, route="iv_bolus")))
    values = metric_values(
        Target("auc_cumulative", 50, 100, until_h=24.0),
        PatientSimulator(_model(), record),
        ETA,
        regimen_start_h=24.0,
    )
    k = KS
    expected = 200.0 / CLS * (1 - np.exp(-k * 48.0)) + 300.0 / CLS * (1 - np.exp(-k * 24.0))
    np.testing.assert_allclose(values, expected, rtol=1e-10)


def test_mic_ratios_apply_the_unbound_fraction_and_the_mic():
    simulator = _steady_state_infusion(1000.0, 12.0, 1.0)
    kwargs = {"regimen_start_h": 0.0, "interval_h": 12.0}
    cmax_mic = metric_values(
        Target("cmax_mic", 8, 10, mic_mg_per_l=2.0, unbound_fraction=0.5), simulator, ETA, **kwargs
    )
    auc_mic = metric_values(
        Target("auc_mic", 400, 600, mic_mg_per_l=1.0, unbound_fraction=0.9), simulator, ETA, **kwargs
    )
    # The peak of an infusion is at its end: a breakpoint of the grid, exact.
    np.testing.assert_allclose(cmax_mic, 0.5 * _ss_infusion_level(1000.0, 12.0, 1.0, 1.0) / 2.0, rtol=1e-10)
    np.testing.assert_allclose(auc_mic, 0.9 * 2000.0 / CLS / 1.0, rtol=1e-9)


def test_ft_above_mic_matches_the_analytic_crossings():
    dose, tau, duration, mic, fu = 1000.0, 12.0, 1.0, 4.0, 0.8
    simulator = _steady_state_infusion(dose, tau, duration)
    values = metric_values(
        Target("ft_above_mic", 0.4, 1.0, mic_mg_per_l=mic, unbound_fraction=fu),
        simulator,
        ETA,
        regimen_start_h=0.0,
        interval_h=tau,
    )
    threshold = mic / fu  # total concentration at which the free concentration equals the MIC
    k = KS
    rate = dose / duration
    peak = _ss_infusion_level(dose, tau, duration, duration)
    trough = _ss_infusion_level(dose, tau, duration, tau)
    # Rising crossing during the infusion: trough e^{-kt} + R/CL (1 - e^{-kt}) = T.
    css = rate / CLS
    rise = np.where(trough >= threshold, 0.0, np.log((css - trough) / (css - threshold)) / k)
    fall = np.minimum(duration + np.log(peak / threshold) / k, tau)
    expected = (fall - rise) / tau
    # Crossings are interpolated linearly on a 0.05 h grid: error O(step²·C''/C') ~ 1e-6 of the interval.
    np.testing.assert_allclose(values, expected, atol=1e-5)
    percent = metric_values(
        Target("ft_above_mic", 40, 100, unit="%", mic_mg_per_l=mic, unbound_fraction=fu),
        simulator,
        ETA,
        regimen_start_h=0.0,
        interval_h=tau,
    )
    np.testing.assert_allclose(percent, 100 * values, rtol=1e-12)
    reference = time_above(simulator, Window(0.0, tau), threshold, eta=ETA) / tau
    np.testing.assert_allclose(values, reference, atol=1e-5)


def test_cmax_of_an_oral_steady_state_matches_the_analytic_peak():
    dose, tau = 500.0, 12.0
    record = PatientRecord(doses=(Dose(0.0, dose, route="oral", interval_h=tau, steady_state=True),))
    simulator = PatientSimulator(_model(oral=True), record)
    values = metric_values(
        Target("cmax_mic", 1, 100, mic_mg_per_l=1.0), simulator, ETA, regimen_start_h=0.0, interval_h=tau
    )
    k = KS
    t_max = np.log(KA * (1 - np.exp(-k * tau)) / (k * (1 - np.exp(-KA * tau)))) / (KA - k)
    expected = (
        dose
        * KA
        / (V * (KA - k))
        * (np.exp(-k * t_max) / (1 - np.exp(-k * tau)) - np.exp(-KA * t_max) / (1 - np.exp(-KA * tau)))
    )
    # The quartic through five grid points around the maximum: 1e-7 relative is far below assay precision.
    np.testing.assert_allclose(values, expected, rtol=1e-7)
    peak, _ = cmax(simulator, Window(0.0, tau), eta=ETA)
    np.testing.assert_allclose(values, peak, rtol=1e-7)


def test_mic_is_converted_to_the_output_unit():
    record = PatientRecord(
        doses=(Dose(0.0, 1000.0, route="iv_infusion", duration_h=1.0, interval_h=12.0, steady_state=True),)
    )
    in_mg = PatientSimulator(_model(), record)
    in_ug = PatientSimulator(_model(unit="ug/L", scale=1000.0), record)
    target = Target("auc_mic", 400, 600, mic_mg_per_l=1.0)
    kwargs = {"regimen_start_h": 0.0, "interval_h": 12.0}
    np.testing.assert_allclose(
        metric_values(target, in_ug, ETA, **kwargs), metric_values(target, in_mg, ETA, **kwargs), rtol=1e-12
    )


def test_units_follow_the_model_output_and_a_contradicting_unit_is_refused():
    model = _model()
    assert Target("auc24", 400, 600).unit_for(model) == "mg·h/L"
    assert Target("auc24", 400, 600, unit="mg*h/L").unit_for(model) == "mg·h/L"
    assert Target("trough", 10, 20).unit_for(model) == "mg/L"
    assert Target("auc_mic", 400, 600, mic_mg_per_l=1).unit_for(model) == "ratio"
    assert Target("ft_above_mic", 0.5, 1, mic_mg_per_l=1).unit_for(model) == "fraction"
    with pytest.raises(InvalidInputError) as error:
        Target("auc24", 400, 600, unit="ug·h/L").unit_for(model)
    assert error.value.path == "target.unit"
    with pytest.raises(InvalidInputError) as error:
        Target("trough", 10, 20, unit="mg·h/L").unit_for(model)
    assert error.value.path == "target.unit"


def test_a_steady_state_metric_needs_a_steady_state_dose_at_the_start():
    record = PatientRecord(doses=(Dose(0.0, 1000.0, route="iv_bolus", interval_h=12.0, additional=10),))
    with pytest.raises(InvalidInputError) as error:
        metric_values(
            Target("trough", 10, 20),
            PatientSimulator(_model(), record),
            ETA,
            regimen_start_h=0.0,
            interval_h=12,
        )
    assert error.value.path == "target.metric"


def test_a_peak_beyond_the_interval_is_refused():
    simulator = _steady_state_infusion(1000.0, 6.0, 2.0)
    with pytest.raises(InvalidInputError) as error:
        metric_values(
            Target("peak", 20, 40, peak_after_end_h=5.0),
            simulator,
            ETA,
            regimen_start_h=0.0,
            interval_h=6.0,
            infusion_duration_h=2.0,
        )
    assert error.value.path == "target.peak_after_end_h"


def test_attainment_includes_both_bounds_and_one_sided_targets_have_no_upper_bound():
    target = Target("auc24", 400, 600)
    assert target.attained(np.array([399.9, 400.0, 600.0, 600.1])).tolist() == [False, True, True, False]
    one_sided = Target("auc_mic", 400, mic_mg_per_l=1.0)
    assert one_sided.attained(np.array([1e6]))[0]
    assert one_sided.middle == 400


def test_a_fraction_target_may_be_one_sided():
    # high null = "at least low", as for every metric; the toxicity evaluation opens the range the same way
    target = Target.from_mapping({"metric": "ft_above_mic", "low": 0.5, "high": None, "mic_mg_per_l": 1})
    assert target.high == math.inf
    assert target.attained(np.array([0.49, 0.5, 1.0])).tolist() == [False, True, True]
    assert Target("ft_above_mic", 1.0, 1.0, mic_mg_per_l=1).metric_only().high == math.inf


def test_time_above_a_flat_curve_is_exact_and_raises_no_overflow():
    """Regression: a steady continuous infusion gives flat segments; the share of a flat segment above the MIC
    used 1/tiny as its slope and overflowed (RuntimeWarning) on the way to 0 or 1."""
    grid = np.array([0.0, 1.0, 2.0, 3.0])
    values = np.array(
        [
            [40.0, 40.0, 40.0, 40.0],  # flat above the threshold: 3 h
            [10.0, 10.0, 10.0, 10.0],  # flat below: 0 h
            [16.0, 16.0, 16.0, 16.0],  # flat at the threshold: not above, 0 h
            [10.0, 20.0, 20.0, 0.0],  # a ramp up, flat above, a ramp down
        ]
    )
    with np.errstate(all="raise"):
        hours = time_above_thresholds(grid, values, np.array([16.0, 5.0]))
    np.testing.assert_allclose(hours[:, 0], [3.0, 0.0, 0.0, 0.4 + 1.0 + 0.2], rtol=1e-12)
    np.testing.assert_allclose(hours[:, 1], [3.0, 3.0, 3.0, 1.0 + 1.0 + 0.75], rtol=1e-12)
    # Ramps only a few subnormals wide (1/width itself would overflow): half of each ramp is above.
    tiny = np.array([[0.0, 4e-323, 4e-323, 0.0]])
    with np.errstate(all="raise"):
        assert time_above_thresholds(grid, tiny, np.array([2e-323]))[0, 0] == pytest.approx(2.0)


# -- bad input -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "path"),
    [
        ({"metric": "auc48", "low": 1, "high": 2}, "target.metric"),
        ({"metric": "auc24", "low": 600, "high": 400}, "target.low"),
        ({"metric": "auc24", "low": -1, "high": 400}, "target.low"),
        ({"metric": "auc24", "low": 1, "high": -4}, "target.high"),
        ({"metric": "auc24", "low": math.nan, "high": 400}, "target.low"),
        ({"metric": "auc_mic", "low": 400, "high": 600}, "target.mic_mg_per_l"),
        ({"metric": "ft_above_mic", "low": 0.4, "high": 1}, "target.mic_mg_per_l"),
        ({"metric": "cmax_mic", "low": 8, "high": 10, "mic_mg_per_l": -1}, "target.mic_mg_per_l"),
        (
            {"metric": "auc_mic", "low": 4, "high": 6, "mic_mg_per_l": 1, "unbound_fraction": 0},
            "target.unbound_fraction",
        ),
        ({"metric": "auc24", "low": 400, "high": 600, "mic_mg_per_l": 1}, "target.mic_mg_per_l"),
        ({"metric": "auc24", "low": 400, "high": 600, "toxicity_limit": 500}, "target.toxicity_limit"),
        ({"metric": "auc24", "low": 400, "high": 600, "toxicity_limit": -700}, "target.toxicity_limit"),
        ({"metric": "peak", "low": 20, "high": 40, "peak_after_end_h": -0.5}, "target.peak_after_end_h"),
        ({"metric": "trough", "low": 10, "high": 20, "window_h": (0, 24)}, "target.window_h"),
        ({"metric": "auc_window", "low": 10, "high": 20}, "target.window_h"),
        ({"metric": "auc_window", "low": 10, "high": 20, "window_h": (24, 12)}, "target.window_h"),
        ({"metric": "auc24", "low": 400, "high": 600, "window_h": (0, 12)}, "target.window_h"),
        ({"metric": "auc_cumulative", "low": 50, "high": 100}, "target.until_h"),
        ({"metric": "ft_above_mic", "low": 0.4, "high": 1.5, "mic_mg_per_l": 1}, "target.high"),
        ({"metric": "ft_above_mic", "low": 40, "high": 150, "mic_mg_per_l": 1, "unit": "%"}, "target.high"),
        ({"metric": "auc_mic", "low": 400, "high": 600, "mic_mg_per_l": 1, "unit": "h"}, "target.unit"),
    ],
)
def test_invalid_targets_are_refused_naming_the_field(kwargs, path):
    with pytest.raises(InvalidInputError) as error:
        Target(**kwargs)
    assert error.value.path == path


def test_case_file_targets_name_their_path():
    target = Target.from_mapping({"metric": "auc24", "low": 400, "high": 600, "dose_step_mg": 250})
    assert (target.metric, target.low, target.high) == ("auc24", 400.0, 600.0)
    assert Target.from_mapping({"metric": "auc_mic", "low": 400, "mic_mg_per_l": 1}).high == math.inf
    with pytest.raises(InvalidInputError) as error:
        Target.from_mapping({"metric": "auc24", "low": 700, "high": 600}, path="courses[0].target")
    assert error.value.path == "courses[0].target.low"
    with pytest.raises(InvalidInputError) as error:
        Target.from_mapping({"low": 1, "high": 2})
    assert error.value.path == "target.metric"
