"""Exact doses, intervals and times against one-compartment closed forms and against simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mipd_engine.dose_solver import (
    dose_for_auc,
    dose_for_concentration,
    interval_for_trough,
    round_dose,
    time_to_concentration,
)
from mipd_engine.errors import InvalidInputError
from mipd_engine.events import Dose, PatientRecord
from mipd_engine.exposure import Window, auc
from mipd_engine.model import parse_model
from mipd_engine.regimens import Regimen
from mipd_engine.simulation import PatientSimulator

from .conftest import make_model, preset_model

CL, V, KA = 4.0, 50.0, 1.3
K = CL / V


@pytest.fixture(scope="module")
def one_cmt():
    return parse_model(preset_model("1cmt", {"CL": CL, "V": V}))


@pytest.fixture(scope="module")
def oral():
    return parse_model(preset_model("1cmt", {"CL": CL, "V": V, "KA": KA}, absorption=True))


@pytest.fixture(scope="module")
def saturable():
    return parse_model(
        make_model(
            structure={
                "compartments": ["central"],
                "flows": [{"from": "central", "to": None, "rate": "CL/V"}],
                "saturable": [{"from": "central", "to": None, "vmax": "VMAX", "km": "KM", "volume": "V"}],
            },
            thetas={"TVCL": 2.0, "TVV": 50.0, "TVVMAX": 60.0, "KM": 8.0},
            covariates=None,
            parameters={"CL": "TVCL", "V": "TVV * exp(ETA_V)", "VMAX": "TVVMAX"},
            omega={"etas": ["ETA_V"], "type": "variance", "matrix": [[0.05]]},
            routes={"iv_infusion": ["central"]},
        )
    )


def _level(model, record, t):
    return PatientSimulator(model, record).predict([t]).outputs["conc"][0, 0]


# -- dose for an AUC -------------------------------------------------------------------------------------


def test_dose_for_auc_of_a_bolus_matches_the_closed_form(one_cmt):
    # AUC(0-24) of a bolus D is D/CL · (1 − e^{−24k}), so D = 400 · CL / (1 − e^{−24k}).
    solution = dose_for_auc(
        one_cmt,
        PatientRecord(),
        target_auc=400.0,
        regimen=Regimen(100.0, 24.0, 0.0, route="iv_bolus"),
        window_h=(0, 24),
    )
    assert solution.success and solution.method == "linear"
    assert solution.dose_mg == pytest.approx(400.0 * CL / (1 - math.exp(-24 * K)), rel=1e-10)
    assert solution.value == pytest.approx(400.0, rel=1e-9)


def test_dose_for_auc_of_an_infusion_matches_the_closed_form(one_cmt):
    d = 2.0  # AUC(0-24) of an infusion over d h: D/CL · [1 − (e^{−k(24−d)} − e^{−24k}) / (k d)]
    solution = dose_for_auc(
        one_cmt,
        PatientRecord(),
        target_auc=400.0,
        regimen=Regimen(500.0, 24.0, 0.0, duration_h=d),
        window_h=(0, 24),
    )
    fraction = 1 - (math.exp(-K * (24 - d)) - math.exp(-K * 24)) / (K * d)
    assert solution.dose_mg == pytest.approx(400.0 * CL / fraction, rel=1e-10)


def test_dose_for_auc_at_steady_state_is_the_target_times_clearance(one_cmt):
    solution = dose_for_auc(
        one_cmt,
        PatientRecord(),
        target_auc=250.0,
        regimen=Regimen(1000.0, 12.0, 0.0, duration_h=1.0),
        steady_state=True,
    )
    assert solution.dose_mg == pytest.approx(250.0 * CL, rel=1e-10)


def test_dose_for_auc_counts_the_doses_already_given(one_cmt):
    past = PatientRecord(doses=(Dose(0.0, 1000.0, route="iv_bolus"),))
    regimen = Regimen(100.0, 24.0, 24.0, route="iv_bolus")
    solution = dose_for_auc(one_cmt, past, target_auc=400.0, regimen=regimen, window_h=(0, 24))
    carried = 1000.0 / CL * (math.exp(-24 * K) - math.exp(-48 * K))
    assert solution.dose_mg == pytest.approx((400.0 - carried) * CL / (1 - math.exp(-24 * K)), rel=1e-10)
    # Verified by simulating the returned dose with the past one.
    record = PatientRecord(doses=(*past.doses, Dose(24.0, solution.dose_mg, route="iv_bolus")))
    assert auc(PatientSimulator(one_cmt, record), Window(24.0, 48.0))[0] == pytest.approx(400.0, rel=1e-9)


def test_dose_for_auc_reports_a_target_already_exceeded(one_cmt):
    past = PatientRecord(doses=(Dose(0.0, 50_000.0, route="iv_bolus"),))
    solution = dose_for_auc(
        one_cmt,
        past,
        target_auc=100.0,
        regimen=Regimen(100.0, 24.0, 24.0, route="iv_bolus"),
        window_h=(0, 24),
    )
    assert not solution.success
    assert "already exceeded" in solution.message


def test_dose_for_auc_on_a_nonlinear_model_is_verified_by_simulation(saturable):
    regimen = Regimen(500.0, 12.0, 0.0, duration_h=1.0)
    solution = dose_for_auc(saturable, PatientRecord(), target_auc=300.0, regimen=regimen, window_h=(0, 24))
    assert solution.success and solution.method == "brentq"
    record = PatientRecord(doses=regimen.with_dose(solution.dose_mg).doses(until_h=24.0))
    assert auc(PatientSimulator(saturable, record), Window(0.0, 24.0))[0] == pytest.approx(300.0, rel=1e-6)


# -- dose for a concentration ----------------------------------------------------------------------------


def test_dose_for_concentration_gives_the_level_when_simulated(one_cmt):
    regimen = Regimen(1000.0, 8.0, 0.0, duration_h=1.0)
    solution = dose_for_concentration(
        one_cmt, PatientRecord(), target_concentration=30.0, time_h=1.5, regimen=regimen, steady_state=True
    )
    # Closed form: steady-state level 0.5 h after the end of a 1 h infusion.
    per_mg = (1 / 1.0) / CL * (1 - math.exp(-K)) / (1 - math.exp(-8 * K)) * math.exp(-0.5 * K)
    assert solution.dose_mg == pytest.approx(30.0 / per_mg, rel=1e-10)
    record = PatientRecord(doses=regimen.with_dose(solution.dose_mg).doses(steady_state=True))
    assert _level(one_cmt, record, 1.5) == pytest.approx(30.0, rel=1e-9)


def test_dose_for_concentration_after_several_doses(oral):
    regimen = Regimen(100.0, 12.0, 0.0, route="oral", n_doses=3)
    solution = dose_for_concentration(
        oral, PatientRecord(), target_concentration=5.0, time_h=30.0, regimen=regimen
    )
    record = PatientRecord(doses=regimen.with_dose(solution.dose_mg).doses())
    assert _level(oral, record, 30.0) == pytest.approx(5.0, rel=1e-9)


def test_dose_for_concentration_on_a_nonlinear_model(saturable):
    regimen = Regimen(500.0, 12.0, 0.0, duration_h=1.0)
    solution = dose_for_concentration(
        saturable, PatientRecord(), target_concentration=15.0, time_h=11.9, regimen=regimen, steady_state=True
    )
    assert solution.method == "brentq"
    record = PatientRecord(doses=regimen.with_dose(solution.dose_mg).doses(steady_state=True))
    assert _level(saturable, record, 11.9) == pytest.approx(15.0, rel=1e-6)


def test_a_level_before_the_first_new_dose_cannot_be_targeted(one_cmt):
    with pytest.raises(InvalidInputError) as error:
        dose_for_concentration(
            one_cmt,
            PatientRecord(),
            target_concentration=5.0,
            time_h=0.0,
            regimen=Regimen(1.0, 12, 0, route="iv_bolus"),
        )
    assert error.value.path == "time_h"


# -- interval for a trough -------------------------------------------------------------------------------


def test_interval_for_a_steady_state_trough_matches_the_closed_form(one_cmt):
    # Bolus at steady state: trough = (D/V) e^{−kτ} / (1 − e^{−kτ}), so τ = ln(1 + D/(V·trough)) / k.
    solution = interval_for_trough(
        one_cmt, PatientRecord(), target_trough=5.0, regimen=Regimen(1000.0, 12.0, 0.0, route="iv_bolus")
    )
    assert solution.success
    assert solution.interval_h == pytest.approx(math.log(1 + 1000.0 / (V * 5.0)) / K, rel=1e-9)
    record = PatientRecord(
        doses=(Dose(0.0, 1000.0, route="iv_bolus", interval_h=solution.interval_h, steady_state=True),)
    )
    assert _level(one_cmt, record, solution.interval_h) == pytest.approx(5.0, rel=1e-6)


def test_interval_for_a_trough_after_several_doses_is_verified_by_simulation(oral):
    regimen = Regimen(500.0, 12.0, 0.0, route="oral")
    solution = interval_for_trough(oral, PatientRecord(), target_trough=3.0, regimen=regimen, n_doses=4)
    assert solution.success
    tau = solution.interval_h
    record = PatientRecord(doses=(Dose(0.0, 500.0, route="oral", interval_h=tau, additional=3),))
    assert _level(oral, record, 4 * tau) == pytest.approx(3.0, rel=1e-6)


def test_an_unreachable_trough_is_reported(one_cmt):
    # Even a continuous infusion of 100 mg per 2 h gives Css = 50/4 = 12.5 mg/L < 20.
    solution = interval_for_trough(
        one_cmt, PatientRecord(), target_trough=20.0, regimen=Regimen(100.0, 12.0, 0.0, duration_h=2.0)
    )
    assert not solution.success
    assert "increase the dose" in solution.message


# -- time to a concentration -----------------------------------------------------------------------------


def test_time_to_concentration_after_a_bolus_matches_the_exponential_decay(one_cmt):
    record = PatientRecord(doses=(Dose(0.0, 1000.0, route="iv_bolus"),))
    solution = time_to_concentration(one_cmt, record, threshold=5.0)
    assert solution.time_after_last_dose_h == pytest.approx(math.log(1000.0 / (V * 5.0)) / K, rel=1e-9)
    assert solution.concentration == pytest.approx(5.0, rel=1e-6)


def test_time_to_concentration_counts_from_the_last_administration(one_cmt):
    record = PatientRecord(
        doses=(Dose(0.0, 1000.0, route="iv_infusion", duration_h=1.0, interval_h=12.0, additional=2),)
    )
    solution = time_to_concentration(one_cmt, record, threshold=4.0)
    assert solution.last_dose_h == 24.0
    # After the last infusion ends (25 h) the level decays as C(25) e^{−k(t − 25)}.
    c_end = sum(1000.0 / CL * (1 - math.exp(-K)) * math.exp(-K * (25.0 - 1.0 - t)) for t in (0.0, 12.0, 24.0))
    expected = 1.0 + math.log(c_end / 4.0) / K
    assert solution.time_after_last_dose_h == pytest.approx(expected, rel=1e-9)
    assert _level(one_cmt, record, solution.time_h) == pytest.approx(4.0, rel=1e-6)


def test_time_to_concentration_after_an_oral_dose_is_after_the_peak(oral):
    record = PatientRecord(doses=(Dose(0.0, 500.0, route="oral"),))
    solution = time_to_concentration(oral, record, threshold=2.0)
    t_max = math.log(KA / K) / (KA - K)
    assert solution.time_after_last_dose_h > t_max
    assert _level(oral, record, solution.time_h) == pytest.approx(2.0, rel=1e-6)


def test_time_to_concentration_is_zero_when_the_level_stays_below(one_cmt):
    record = PatientRecord(doses=(Dose(0.0, 10.0, route="iv_bolus"),))
    solution = time_to_concentration(one_cmt, record, threshold=5.0)
    assert solution.success and solution.time_after_last_dose_h == 0.0
    assert "below" in solution.message


# -- rounding --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dose", "step", "mode", "expected"),
    [
        (1234.0, 250.0, "nearest", 1250.0),
        (1124.99, 250.0, "nearest", 1000.0),
        (1125.0, 250.0, "nearest", 1250.0),  # halves round up
        (1249.0, 250.0, "down", 1000.0),
        (1001.0, 250.0, "up", 1250.0),
        (0.1 + 0.2, 0.1, "up", 0.3),  # floating-point noise does not add a step
        (2.675, 0.025, "nearest", 2.675),
        (0.3, 0.25, "nearest", 0.25),
    ],
)
def test_round_dose(dose, step, mode, expected):
    assert round_dose(dose, step, mode=mode) == pytest.approx(expected, abs=1e-12)


def test_round_dose_refuses_a_dose_that_would_round_to_zero():
    with pytest.raises(InvalidInputError) as error:
        round_dose(100.0, 250.0)
    assert error.value.path == "dose_mg"
    with pytest.raises(InvalidInputError) as error:
        round_dose(100.0, 25.0, mode="sideways")
    assert error.value.path == "mode"


@pytest.mark.parametrize(
    ("call", "path"),
    [
        (
            lambda m: dose_for_auc(
                m,
                PatientRecord(),
                target_auc=-1,
                regimen=Regimen(1, 12, 0, route="iv_bolus"),
                window_h=(0, 24),
            ),
            "target_auc",
        ),
        (
            lambda m: dose_for_auc(
                m, PatientRecord(), target_auc=100, regimen=Regimen(1, 12, 0, route="iv_bolus")
            ),
            "window_h",
        ),
        (
            lambda m: dose_for_auc(
                m,
                PatientRecord(),
                target_auc=100,
                regimen=Regimen(1, 12, 0, route="iv_bolus"),
                window_h=(5, 1),
            ),
            "window_h",
        ),
        (
            lambda m: dose_for_auc(
                m,
                PatientRecord(),
                target_auc=100,
                regimen=Regimen(1, 12, 0, route="iv_bolus"),
                window_h=(0, 24),
                eta=np.zeros(5),
            ),
            "eta",
        ),
        (
            lambda m: interval_for_trough(
                m, PatientRecord(), target_trough=0, regimen=Regimen(1, 12, 0, route="iv_bolus")
            ),
            "target_trough",
        ),
        (lambda m: time_to_concentration(m, PatientRecord(), threshold=1.0), "doses"),
    ],
)
def test_invalid_requests_name_the_field(one_cmt, call, path):
    with pytest.raises(InvalidInputError) as error:
        call(one_cmt)
    assert error.value.path == path


def test_eta_changes_the_exact_dose(one_cmt):
    model = parse_model(preset_model("1cmt", {"CL": CL, "V": V}, eta_on=("CL",)))
    regimen = Regimen(1000.0, 12.0, 0.0, duration_h=1.0)
    typical = dose_for_auc(model, PatientRecord(), target_auc=250.0, regimen=regimen, steady_state=True)
    faster = dose_for_auc(
        model, PatientRecord(), target_auc=250.0, regimen=regimen, steady_state=True, eta=np.array([0.3])
    )
    assert faster.dose_mg / typical.dose_mg == pytest.approx(np.exp(0.3), rel=1e-10)
    assert one_cmt.n_eta == 1
