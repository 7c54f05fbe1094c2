"""Bounded work for a long dosing interval (issue 14): an 8-weekly infliximab regimen.

The exposure grids and the sampling advice's candidate times used to grow with the interval (a what-if every
8 weeks took ~96 s). These tests count the simulated times, not the seconds, and check that the coarser
grids of a long window keep the metrics exact enough: the AUC against the closed form Dose/CL of a steady
state, Cmax and the time above a threshold against a fine 0.02-0.05 h grid.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mipd_engine import exposure
from mipd_engine.case import parse_case
from mipd_engine.events import Dose, PatientRecord
from mipd_engine.exposure import Window, auc, cmax, time_above
from mipd_engine.model import parse_model
from mipd_engine.regimens import Regimen
from mipd_engine.reports import evaluate_case
from mipd_engine.sampling_advice import MAX_RANDOM_TIMES, candidate_sampling_times
from mipd_engine.simulation import PatientSimulator

LIBRARY = Path(__file__).resolve().parents[2] / "models_catalog" / "library"
MODEL_FILE = LIBRARY / "models" / "infliximab-fasanmade-2009.json"
EIGHT_WEEKS_H = 1344.0
COVARIATES = {"WT": 77.0, "ALB": 41.0, "ATI": 0.0, "SEXF": 0.0}  # every covariate at its reference
INDUCTION_DOSE = {"amount_mg": 400.0, "route": "iv_infusion", "duration_h": 2.0}
TYPICAL_CL_L_PER_H = 0.407 / 24  # Fasanmade 2009: 0.407 L/day at the reference covariates


def _model_document():
    return json.loads(MODEL_FILE.read_text(encoding="utf-8"))["model"]


def _steady_state_simulator() -> PatientSimulator:
    dose = Dose(0.0, 400.0, route="iv_infusion", duration_h=2.0, interval_h=EIGHT_WEEKS_H, steady_state=True)
    record = PatientRecord(covariates=COVARIATES, doses=(dose,))
    return PatientSimulator(parse_model(_model_document()), record)


class _CountingPredict:
    """Wraps ``PatientSimulator.predict``: the largest number of times asked in one call."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.largest = 0
        original = PatientSimulator.predict

        def counting(simulator, times_h, *args, **kwargs):
            self.largest = max(self.largest, int(np.size(times_h)))
            return original(simulator, times_h, *args, **kwargs)

        monkeypatch.setattr(PatientSimulator, "predict", counting)


def test_steady_state_auc_of_an_eight_week_interval_is_dose_over_clearance_on_a_bounded_grid(monkeypatch):
    simulator = _steady_state_simulator()
    counter = _CountingPredict(monkeypatch)
    value = auc(simulator, Window(0.0, EIGHT_WEEKS_H))
    # 256 pieces of 12 Gauss nodes (plus the infusion's breakpoints), not 672 pieces of 2 h.
    assert counter.largest <= 12 * (exposure.MAX_AUC_PIECES + 4)
    np.testing.assert_allclose(value, [400.0 / TYPICAL_CL_L_PER_H], rtol=1e-9)


def test_cmax_and_time_above_of_an_eight_week_window_match_a_fine_grid(monkeypatch):
    simulator = _steady_state_simulator()
    window = Window(0.0, EIGHT_WEEKS_H)
    counter = _CountingPredict(monkeypatch)
    peak, peak_time = cmax(simulator, window)
    hours = time_above(simulator, window, 5.0)
    assert counter.largest <= exposure.MAX_DENSE_STEPS + 10  # not 67,200 steps of 0.02 h
    monkeypatch.setattr(exposure, "MAX_DENSE_STEPS", 10**9)  # the reference: the fixed fine steps
    fine_peak, fine_time = cmax(simulator, window)
    fine_hours = time_above(simulator, window, 5.0)
    assert counter.largest > 60_000
    np.testing.assert_allclose(peak, fine_peak, rtol=1e-9)  # the peak is the infusion end, a breakpoint
    np.testing.assert_allclose(peak_time, fine_time, atol=1e-9)
    np.testing.assert_allclose(hours, fine_hours, atol=0.05)  # 0.05 h in 1344 h: crossings interpolated
    assert 100.0 < hours[0] < EIGHT_WEEKS_H  # the threshold is crossed inside the window


def test_sampling_candidates_of_three_eight_week_intervals_are_bounded_and_spread():
    regimen = Regimen(dose_mg=400.0, interval_h=EIGHT_WEEKS_H, start_h=0.0, duration_h=2.0)
    options = candidate_sampling_times(regimen, working_hours=(8.0, 18.0), clock_offset_h=9.0)
    randoms = [o.time_h for o in options if o.kind == "random"]
    assert len(randoms) == MAX_RANDOM_TIMES  # of ~1,700 working hours in 12 weeks
    gaps = np.diff(randoms)
    assert gaps.max() < 3 * 3 * EIGHT_WEEKS_H / MAX_RANDOM_TIMES  # spread over the three intervals
    assert randoms[-1] > 2.5 * EIGHT_WEEKS_H
    assert {o.kind for o in options} == {"trough", "peak", "random"}
    assert all((9.0 + t) % 24 >= 8.0 - 1e-9 and (9.0 + t) % 24 <= 18.0 + 1e-9 for t in randoms)


def test_an_eight_weekly_what_if_simulates_a_bounded_number_of_times(monkeypatch):
    start_h = 1008.0 + EIGHT_WEEKS_H
    document = {
        "model": _model_document(),
        "covariates": {"WT": 80.0, "ALB": 38.0, "ATI": 0.0, "SEXF": 1.0},
        "doses": [INDUCTION_DOSE | {"time_h": t} for t in (0.0, 336.0, 1008.0)],
        "observations": [{"time_h": 1007.0, "value": 4.1}],
        "predict": {"from_h": 0.0, "to_h": start_h + 3 * EIGHT_WEEKS_H, "step_h": 16.0},
        "posterior": {"samples": 500, "seed": 20261203, "quantiles": [0.05, 0.5, 0.95]},
        "target": {"route": "iv_infusion", "metric": "trough", "low": 3, "high": 7, "unit": "ug/mL"},
        "sampling": {"working_hours": [8.0, 18.0], "clock_offset_h": 9.0},
    }
    regimen = Regimen(dose_mg=400.0, interval_h=EIGHT_WEEKS_H, start_h=start_h, duration_h=2.0)
    counter = _CountingPredict(monkeypatch)
    result = evaluate_case(parse_case(document), [regimen])
    assert result["success"]
    assert result["sampling_advice"]["success"], result["sampling_advice"]
    assert len(result["sampling_advice"]["options"]) <= MAX_RANDOM_TIMES + 6  # 3 troughs, 3 peaks
    # The largest call: the AUC quadrature's 12 nodes per piece, or the dense grid (was 67,200 times).
    assert counter.largest <= max(12 * (exposure.MAX_AUC_PIECES + 8), exposure.MAX_DENSE_STEPS + 100)
    row = result["regimens"][0]
    assert 0.0 < row["metric_ci90"][0] <= row["metric_median"] <= row["metric_ci90"][1]
