"""Exposure metrics against closed forms computed by hand in each test."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mipd_engine.errors import InvalidInputError
from mipd_engine.events import Dose, PatientRecord
from mipd_engine.exposure import Window, auc, cmax, time_above, trough_before
from mipd_engine.model import parse_model
from mipd_engine.simulation import PatientSimulator

CL, V, KA, LAG = 4.0, 50.0, 1.3, 0.5
K = CL / V


def _model(oral: bool = False):
    structure = {"preset": "1cmt", "absorption": "first-order"} if oral else {"preset": "1cmt"}
    parameters = {"CL": f"{CL} * exp(ETA_CL)", "V": f"{V}"}
    document = {
        "format": "mipd-model/1",
        "id": "exposure-test",
        "structure": structure,
        "parameters": parameters,
        "omega": {"etas": ["ETA_CL"], "type": "variance", "matrix": [[0.1]]},
        "outputs": {
            "conc": {
                "compartment": "central",
                "volume": "V",
                "unit": "mg/L",
                "error": {"model": "proportional", "proportional": 0.1},
            }
        },
    }
    if oral:
        parameters["KA"] = f"{KA}"
        parameters["ALAG"] = f"{LAG}"
        document["inputs"] = {"depot": {"lag_h": "ALAG"}}
    return parse_model(document)


def test_auc_of_a_bolus_matches_the_closed_form():
    simulator = PatientSimulator(_model(), PatientRecord(doses=(Dose(0.0, 1000.0, route="iv_bolus"),)))
    eta = np.array([[0.0], [0.3], [-0.4]])
    result = auc(simulator, Window(0.0, 24.0), eta=eta)
    cl = CL * np.exp(eta[:, 0])
    expected = 1000.0 / cl * (1 - np.exp(-cl / V * 24.0))
    np.testing.assert_allclose(result, expected, rtol=1e-10)


def test_steady_state_auc_over_an_interval_is_dose_over_clearance():
    record = PatientRecord(
        doses=(Dose(0.0, 1000.0, route="iv_infusion", duration_h=1.0, interval_h=12.0, steady_state=True),)
    )
    simulator = PatientSimulator(_model(), record)
    np.testing.assert_allclose(auc(simulator, Window(0.0, 12.0)), [1000.0 / CL], rtol=1e-9)


def test_auc_of_an_oral_dose_with_lag_matches_the_bateman_integral():
    simulator = PatientSimulator(_model(oral=True), PatientRecord(doses=(Dose(0.0, 500.0, route="oral"),)))
    t_end = 10.0
    u = t_end - LAG
    # Integral of D*KA/(V*(KA-K)) * (exp(-K s) - exp(-KA s)) over s in [0, u].
    expected = 500.0 * KA / (V * (KA - K)) * ((1 - math.exp(-K * u)) / K - (1 - math.exp(-KA * u)) / KA)
    assert auc(simulator, Window(0.0, t_end))[0] == pytest.approx(expected, rel=1e-9)


def test_cmax_of_an_infusion_is_reached_at_its_end():
    record = PatientRecord(doses=(Dose(0.0, 1000.0, route="iv_infusion", duration_h=2.0),))
    peak, time = cmax(PatientSimulator(_model(), record), Window(0.0, 24.0))
    expected = 500.0 / CL * (1 - math.exp(-K * 2.0))
    assert peak[0] == pytest.approx(expected, rel=1e-10)
    assert time[0] == pytest.approx(2.0, abs=1e-9)


def test_cmax_of_an_oral_dose_matches_the_analytic_peak():
    simulator = PatientSimulator(_model(oral=True), PatientRecord(doses=(Dose(0.0, 500.0, route="oral"),)))
    peak, time = cmax(simulator, Window(0.0, 24.0))
    t_peak = math.log(KA / K) / (KA - K)
    expected = 500.0 * KA / (V * (KA - K)) * (math.exp(-K * t_peak) - math.exp(-KA * t_peak))
    # Parabolic refinement on a 0.05-h grid: the peak value to 1e-7 relative, its time to 1e-3 h.
    assert peak[0] == pytest.approx(expected, rel=1e-7)
    assert time[0] == pytest.approx(t_peak + LAG, abs=1e-3)


def test_time_above_a_threshold_after_a_bolus():
    simulator = PatientSimulator(_model(), PatientRecord(doses=(Dose(0.0, 1000.0, route="iv_bolus"),)))
    threshold = 5.0
    expected = math.log(1000.0 / V / threshold) / K  # C0 e^{-k t} = threshold
    # Linear interpolation between 0.02-h grid points: error well below 1e-3 h.
    assert time_above(simulator, Window(0.0, 48.0), threshold)[0] == pytest.approx(expected, abs=1e-3)
    with pytest.raises(InvalidInputError, match="threshold"):
        time_above(simulator, Window(0.0, 48.0), -1.0)


def test_trough_before_a_steady_state_dose_matches_the_closed_form():
    tau, dose = 12.0, 1000.0
    record = PatientRecord(
        doses=(Dose(0.0, dose, route="iv_bolus", interval_h=tau, additional=3, steady_state=True),)
    )
    simulator = PatientSimulator(_model(), record)
    expected = dose / V * math.exp(-K * tau) / (1 - math.exp(-K * tau))
    assert trough_before(simulator, 12.0)[0] == pytest.approx(expected, rel=1e-10)
    assert trough_before(simulator, 0.0)[0] == pytest.approx(expected, rel=1e-10)


def test_a_window_must_have_positive_length():
    with pytest.raises(InvalidInputError, match="window_h"):
        Window(24.0, 24.0)
