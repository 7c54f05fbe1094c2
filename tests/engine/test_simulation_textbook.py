"""Closed-form pharmacokinetics computed by hand in each test, against ``simulate``.

Formulas: Gibaldi & Perrier, Pharmacokinetics (2nd ed.), chapters 1-2 and 3 (one compartment; bolus,
zero-order input, first-order absorption (Bateman), repeated doses) and chapter 2 (two compartments,
macro constants alpha and beta).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.integrate import simpson

from mipd_engine.events import CovariateChange, Dose, PatientRecord
from mipd_engine.model import parse_model
from mipd_engine.simulation import simulate

from .conftest import make_model, preset_model


def conc(document, record, times, eta=None) -> np.ndarray:
    return simulate(parse_model(document), record, np.asarray(times, dtype=float), eta=eta).outputs["conc"][0]


# -- single doses, one compartment ---------------------------------------------------------------------------


def test_it_gives_the_one_compartment_bolus_curve() -> None:
    """C(t) = D/V · exp(−CL/V · t) for an individual (etas on CL and V), 0 at the dose time (pre-dose)."""
    eta = np.array([0.3, -0.2])
    cl, v = 4.0 * math.exp(0.3), 50.0 * math.exp(-0.2)  # make_model: TVCL 4, TVV 50 at WT 70
    times = np.array([0.0, 0.25, 1.0, 6.0, 24.0, 72.0])
    record = PatientRecord(covariates={"WT": 70}, doses=(Dose(0.0, 500.0, route="iv_bolus"),))

    actual = conc(make_model(), record, times, eta=eta)

    expected = np.where(times > 0, 500.0 / v * np.exp(-cl / v * times), 0.0)
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=0)


def test_it_gives_the_one_compartment_infusion_curve_during_and_after_the_infusion() -> None:
    """R = D/T; C = R/CL·(1 − e^{−kt}) while infusing; C(T)·e^{−k(t−T)} afterwards."""
    cl, v, dose, duration = 3.0, 40.0, 900.0, 1.5
    k, rate = cl / v, dose / duration
    times = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 8.0, 30.0])
    record = PatientRecord(doses=(Dose(0.0, dose, route="iv_infusion", duration_h=duration),))

    actual = conc(preset_model("1cmt", {"CL": cl, "V": v}), record, times)

    during = rate / cl * (1 - np.exp(-k * times))
    after = rate / cl * (1 - math.exp(-k * duration)) * np.exp(-k * (times - duration))
    expected = np.where(times <= duration, during, after)
    np.testing.assert_allclose(actual, expected, rtol=1e-11, atol=0)


@pytest.mark.parametrize(
    "route_kwargs", [{"duration_h": 2.0}, {"rate_mg_per_h": 300.0}], ids=["duration", "rate"]
)
def test_it_gives_the_same_infusion_from_a_duration_or_a_rate(route_kwargs) -> None:
    times = np.linspace(0.0, 12.0, 25)
    record = PatientRecord(doses=(Dose(0.0, 600.0, route="iv_infusion", **route_kwargs),))
    cl, v = 3.0, 40.0
    k, rate = cl / v, 300.0

    actual = conc(preset_model("1cmt", {"CL": cl, "V": v}), record, times)

    end = 2.0
    expected = np.where(
        times <= end,
        rate / cl * (1 - np.exp(-k * times)),
        rate / cl * (1 - math.exp(-k * end)) * np.exp(-k * (times - end)),
    )
    np.testing.assert_allclose(actual, expected, rtol=1e-11, atol=0)


def test_it_gives_the_bateman_curve_for_an_oral_dose_with_lag_and_bioavailability() -> None:
    """C = F·D·ka / (V·(ka − k)) · (e^{−k(t−tlag)} − e^{−ka(t−tlag)}) for t > tlag, 0 before."""
    cl, v, ka, f, lag, dose = 5.0, 80.0, 1.3, 0.6, 0.75, 400.0
    k = cl / v
    document = preset_model(
        "1cmt",
        {"CL": cl, "V": v, "KA": ka, "F": f, "TLAG": lag},
        absorption=True,
        inputs={"depot": {"bioavailability": "F", "lag_h": "TLAG"}},
    )
    times = np.array([0.0, 0.5, 0.75, 1.0, 2.0, 4.0, 12.0, 48.0])
    record = PatientRecord(doses=(Dose(0.0, dose, route="oral"),))

    actual = conc(document, record, times)

    u = np.maximum(times - lag, 0.0)
    expected = f * dose * ka / (v * (ka - k)) * (np.exp(-k * u) - np.exp(-ka * u))
    # rtol 1e-10: the solution goes through the eigenvectors of the rate matrix (cond ~ ka/(ka − k)).
    np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-15)


def test_it_handles_absorption_as_fast_as_elimination() -> None:
    """ka = k exactly (a defective rate matrix): the Bateman limit C = F·D·k·t·e^{−kt} / V.

    The engine separates the equal eigenvalues by a relative 1e-7 nudge (documented in linear_solver);
    the resulting error is of order 1e-7 · k·t, hence the tolerance of 1e-6.
    """
    cl, v, dose = 5.0, 50.0, 300.0
    k = cl / v
    document = preset_model("1cmt", {"CL": cl, "V": v, "KA": k}, absorption=True)
    times = np.array([0.5, 1.0, 5.0, 10.0, 20.0, 40.0])
    record = PatientRecord(doses=(Dose(0.0, dose, route="oral"),))

    actual = conc(document, record, times)

    expected = dose * k * times * np.exp(-k * times) / v
    np.testing.assert_allclose(actual, expected, rtol=1e-6)


def test_it_gives_the_biexponential_curve_of_a_two_compartment_bolus() -> None:
    """Macro constants from micro constants, by hand.

    α, β = ½[(k10 + k12 + k21) ± √((k10 + k12 + k21)² − 4·k10·k21)];
    C(t) = D/V1 · [(α − k21)/(α − β) · e^{−αt} + (k21 − β)/(α − β) · e^{−βt}].
    """
    cl, v1, q, v2, dose = 4.0, 20.0, 6.0, 60.0, 1000.0
    k10, k12, k21 = cl / v1, q / v1, q / v2
    total = k10 + k12 + k21
    root = math.sqrt(total**2 - 4 * k10 * k21)
    alpha, beta = (total + root) / 2, (total - root) / 2
    a = dose / v1 * (alpha - k21) / (alpha - beta)
    b = dose / v1 * (k21 - beta) / (alpha - beta)
    times = np.array([0.1, 0.5, 1.0, 3.0, 12.0, 48.0, 120.0])
    record = PatientRecord(doses=(Dose(0.0, dose, route="iv_bolus"),))

    actual = conc(preset_model("2cmt", {"CL": cl, "V1": v1, "Q": q, "V2": v2}), record, times)

    expected = a * np.exp(-alpha * times) + b * np.exp(-beta * times)
    np.testing.assert_allclose(actual, expected, rtol=1e-10)
    np.testing.assert_allclose(a + b, dose / v1, rtol=1e-14)  # the hand computation itself: C(0+) = D/V1


def test_it_applies_a_clearance_change_from_the_change_time_on() -> None:
    """One bolus; CL doubles at T: C(t) = D/V·e^{−k1·T}·e^{−k2·(t−T)} for t > T (and a level at T is old)."""
    dose, v, change_h = 100.0, 50.0, 6.0
    document = make_model(parameters={"CL": "TVCL * (WT/70)", "V": "TVV"})
    k1, k2 = 4.0 / v, 8.0 / v
    record = PatientRecord(
        covariates={"WT": 70},
        doses=(Dose(0.0, dose, route="iv_bolus"),),
        covariate_changes=(CovariateChange(change_h, {"WT": 140}),),
    )
    times = np.array([1.0, 6.0, 7.0, 24.0])

    actual = conc(document, record, times)

    expected = np.where(
        times <= change_h,
        dose / v * np.exp(-k1 * times),
        dose / v * math.exp(-k1 * change_h) * np.exp(-k2 * (times - change_h)),
    )
    np.testing.assert_allclose(actual, expected, rtol=1e-12)


# -- steady state ------------------------------------------------------------------------------------------


def test_it_gives_the_textbook_steady_state_trough_and_peak_of_one_compartment_boluses() -> None:
    """C_trough,ss = D/V · e^{−kτ} / (1 − e^{−kτ}); C_peak,ss = D/V / (1 − e^{−kτ})."""
    cl, v, dose, tau = 4.0, 50.0, 250.0, 8.0
    k = cl / v
    record = PatientRecord(doses=(Dose(0.0, dose, route="iv_bolus", interval_h=tau, steady_state=True),))
    r = math.exp(-k * tau)

    actual = conc(preset_model("1cmt", {"CL": cl, "V": v}), record, [0.0, 1e-9, tau])

    expected = [dose / v * r / (1 - r), dose / v / (1 - r) * math.exp(-k * 1e-9), dose / v * r / (1 - r)]
    np.testing.assert_allclose(actual, expected, rtol=1e-12)


def _auc_over_interval(document, record, start_h, interval_h, kinks_h=()) -> float:
    """AUC of the prediction over (start, start + τ] by Simpson's rule on a fine grid.

    The grid is split at the kinks of the curve (end of an infusion, end of a lag) and starts just after
    ``start`` (the level at the dose time itself is the pre-dose trough).
    """
    edges = [start_h + 1e-12, *sorted(kinks_h), start_h + interval_h]
    total = 0.0
    for lo, hi in itertools.pairwise(edges):
        grid = np.linspace(lo, hi, 4001)
        total += float(simpson(conc(document, record, grid), x=grid))
    return total


@pytest.mark.parametrize(
    ("case", "preset", "values", "dose_kwargs"),
    [
        ("1cmt bolus", "1cmt", {"CL": 4.0, "V": 50.0}, {"route": "iv_bolus"}),
        ("1cmt oral, F and lag", "1cmt", {"CL": 4.0, "V": 50.0, "KA": 0.9}, {"route": "oral"}),
        ("2cmt infusion", "2cmt", {"CL": 3.0, "V1": 20.0, "Q": 5.0, "V2": 80.0}, {"route": "iv_infusion"}),
        (
            "3cmt bolus",
            "3cmt",
            {"CL": 2.0, "V1": 10.0, "Q2": 4.0, "V2": 30.0, "Q3": 1.0, "V3": 90.0},
            {"route": "iv_bolus"},
        ),
    ],
)
def test_it_gives_a_steady_state_auc_over_one_interval_of_f_dose_over_cl(case, preset, values, dose_kwargs):
    """AUC_τ,ss = F·D/CL whatever the distribution (mass balance over one interval at steady state)."""
    dose, tau, t0 = 500.0, 12.0, 24.0
    f = 1.0
    kinks: list[float] = []
    inputs = None
    if dose_kwargs["route"] == "oral":
        f, lag = 0.8, 0.5
        values = {**values, "F": f, "TLAG": lag}
        inputs = {"depot": {"bioavailability": "F", "lag_h": "TLAG"}}
        kinks = [t0 + lag]
    if dose_kwargs["route"] == "iv_infusion":
        dose_kwargs = {**dose_kwargs, "duration_h": 2.0}
        kinks = [t0 + 2.0]
    document = preset_model(preset, values, absorption=dose_kwargs["route"] == "oral", inputs=inputs)
    record = PatientRecord(doses=(Dose(t0, dose, interval_h=tau, steady_state=True, **dose_kwargs),))

    auc = _auc_over_interval(document, record, t0, tau, kinks)

    # Simpson's error with 4000 steps per piece is < 1e-10 relative here; 1e-8 leaves room for the 1e-12
    # sliver skipped at the start of a bolus interval.
    np.testing.assert_allclose(auc, f * dose / values["CL"], rtol=1e-8)


@pytest.mark.parametrize(
    ("case", "preset", "values", "dose_kwargs", "inputs"),
    [
        ("1cmt bolus", "1cmt", {"CL": 4.0, "V": 50.0}, {"route": "iv_bolus"}, None),
        (
            "2cmt oral with lag",
            "2cmt",
            {"CL": 6.0, "V1": 30.0, "Q": 4.0, "V2": 60.0, "KA": 0.8, "TLAG": 1.0, "F": 0.7},
            {"route": "oral"},
            {"depot": {"bioavailability": "F", "lag_h": "TLAG"}},
        ),
        (
            "2cmt infusion",
            "2cmt",
            {"CL": 6.0, "V1": 30.0, "Q": 4.0, "V2": 60.0},
            {"route": "iv_infusion", "duration_h": 1.0},
            None,
        ),
        (
            "2cmt infusion longer than the interval",
            "2cmt",
            {"CL": 6.0, "V1": 30.0, "Q": 4.0, "V2": 60.0},
            {"route": "iv_infusion", "duration_h": 20.0},
            None,
        ),
        (
            "2cmt oral with a lag longer than the interval",
            "2cmt",
            {"CL": 6.0, "V1": 30.0, "Q": 4.0, "V2": 60.0, "KA": 0.8, "TLAG": 10.0},
            {"route": "oral"},
            {"depot": {"lag_h": "TLAG"}},
        ),
        (
            "3cmt infusion",
            "3cmt",
            {"CL": 6.0, "V1": 10.0, "Q2": 4.0, "V2": 30.0, "Q3": 2.0, "V3": 60.0},
            {"route": "iv_infusion", "duration_h": 0.5},
            None,
        ),
    ],
)
def test_it_gives_the_steady_state_that_many_repeated_doses_converge_to(
    case, preset, values, dose_kwargs, inputs
):
    """201 doses every τ (NONMEM ADDL) against SS=1: the profile over the last interval agrees to 1e-9.

    The terminal rate constants of these models make the residual of the first dose after 200 intervals
    smaller than 1e-12 of the steady-state level.
    """
    tau, dose, n = 8.0, 300.0, 200
    document = preset_model(preset, values, absorption=dose_kwargs["route"] == "oral", inputs=inputs)
    t_last = n * tau
    offsets = np.array([0.0, 0.5, 1.0, 2.5, 4.0, 7.99])
    many = PatientRecord(doses=(Dose(0.0, dose, interval_h=tau, additional=n, **dose_kwargs),))
    steady = PatientRecord(doses=(Dose(t_last, dose, interval_h=tau, steady_state=True, **dose_kwargs),))

    limit = conc(document, many, t_last + offsets)
    actual = conc(document, steady, t_last + offsets)

    np.testing.assert_allclose(actual, limit, rtol=1e-9)
    assert actual[0] > 0.05 * actual.max()  # the trough is not negligible: the comparison is meaningful
