"""Observations with their own residual error model: the points of a continuous monitoring device.

The likelihood is checked against a hand-written Gaussian log-density (numpy only), and a fit of 500 dense
points against the true individual parameters they were simulated from.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from mipd_engine.case import parse_case
from mipd_engine.errors import InvalidInputError
from mipd_engine.estimation import fit_map
from mipd_engine.events import Dose, Observation, PatientRecord
from mipd_engine.model import ErrorModel, parse_model
from mipd_engine.objective import Objective

from .conftest import make_model

DEVICE_ERROR = ErrorModel("combined", additive=0.8, proportional=0.12)


def _one_compartment_conc(t_h: np.ndarray, *, cl_l_per_h: float, v_l: float, doses) -> np.ndarray:
    """Closed-form superposition of 1-h infusions (independent of the engine's solvers)."""
    k = cl_l_per_h / v_l
    conc = np.zeros_like(t_h)
    for start_h, amount_mg, duration_h in doses:
        rate = amount_mg / duration_h
        during = (t_h > start_h) & (t_h <= start_h + duration_h)
        after = t_h > start_h + duration_h
        conc += np.where(during, rate / cl_l_per_h * (1 - np.exp(-k * (t_h - start_h))), 0.0)
        peak = rate / cl_l_per_h * (1 - math.exp(-k * duration_h))
        conc += np.where(after, peak * np.exp(-k * (t_h - start_h - duration_h)), 0.0)
    return conc


DOSES = [(0.0, 1000.0, 1.0), (12.0, 1000.0, 1.0), (24.0, 1000.0, 1.0)]


def _record(times_h, values, error):
    return PatientRecord(
        covariates={"WT": 70.0},
        doses=tuple(Dose(time_h=t, amount_mg=a, route="iv_infusion", duration_h=d) for t, a, d in DOSES),
        observations=tuple(
            Observation(time_h=float(t), value=float(v), error=error)
            for t, v in zip(times_h, values, strict=True)
        ),
    )


def test_an_observation_with_its_own_error_uses_it_in_the_likelihood():
    model = parse_model(make_model())  # the output's error: proportional 20 %
    times = np.array([2.0, 6.0, 30.0])
    values = np.array([14.0, 9.0, 11.0])
    record = PatientRecord(
        covariates={"WT": 70.0},
        doses=tuple(Dose(time_h=t, amount_mg=a, route="iv_infusion", duration_h=d) for t, a, d in DOSES),
        observations=(
            Observation(time_h=2.0, value=14.0),  # the assay: the output's error
            Observation(time_h=6.0, value=9.0, error=DEVICE_ERROR),
            Observation(time_h=30.0, value=11.0, error=DEVICE_ERROR),
        ),
    )
    objective = Objective(model, record)
    theta = np.array([[0.1, -0.2]])
    f = _one_compartment_conc(times, cl_l_per_h=4.0 * math.exp(0.1), v_l=50.0 * math.exp(-0.2), doses=DOSES)
    var = np.array(
        [(0.2 * f[0]) ** 2, 0.8**2 + (0.12 * f[1]) ** 2, 0.8**2 + (0.12 * f[2]) ** 2],
    )
    expected = np.sum((values - f) ** 2 / var + np.log(var))
    assert objective.data_terms(objective.predictions(theta))[0] == pytest.approx(expected, rel=1e-6)


def test_a_fit_of_500_device_points_recovers_the_true_parameters():
    model = parse_model(make_model())
    true_cl, true_v = 4.0 * math.exp(0.35), 50.0 * math.exp(-0.15)
    times = np.linspace(1.5, 36.0, 500)
    truth = _one_compartment_conc(times, cl_l_per_h=true_cl, v_l=true_v, doses=DOSES)
    rng = np.random.default_rng(20261203)
    sd = np.sqrt(DEVICE_ERROR.variance(truth))
    measured = np.maximum(truth + rng.normal(size=truth.shape) * sd, 0.01)
    fit = fit_map(model, _record(times, measured, DEVICE_ERROR))
    assert fit.success, fit.message
    fitted_cl = 4.0 * math.exp(fit.eta[0])
    fitted_v = 50.0 * math.exp(fit.eta[1])
    # 500 points, ~12 % noise: standard error ~1 %; 5 % leaves room for the prior's pull.
    assert fitted_cl == pytest.approx(true_cl, rel=0.05)
    assert fitted_v == pytest.approx(true_v, rel=0.05)


def test_the_case_file_reads_an_observation_error_and_names_a_bad_one():
    model = make_model()
    case = parse_case(
        {
            "model": model,
            "covariates": {"WT": 70},
            "doses": [{"time_h": 0, "amount_mg": 1000, "route": "iv_infusion", "duration_h": 1}],
            "observations": [
                {"time_h": 4, "value": 10.0},
                {
                    "time_h": 5,
                    "value": 9.0,
                    "error": {"model": "combined", "additive": 0.8, "proportional": 0.12},
                },
            ],
        }
    )
    assert case.record.observations[0].error is None
    assert case.record.observations[1].error == DEVICE_ERROR
    with pytest.raises(InvalidInputError) as caught:
        parse_case(
            {
                "model": model,
                "covariates": {"WT": 70},
                "doses": [{"time_h": 0, "amount_mg": 1000, "route": "iv_infusion", "duration_h": 1}],
                "observations": [{"time_h": 4, "value": 10.0, "error": {"model": "additive", "additive": 0}}],
            }
        )
    assert caught.value.path == "observations[0].error.additive"
