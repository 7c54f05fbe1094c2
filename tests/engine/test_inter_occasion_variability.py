"""Inter-occasion variability: kappas estimated per observed occasion, fresh kappas for future occasions."""

from __future__ import annotations

import numpy as np
import pytest

from mipd_engine.estimation import fit_map
from mipd_engine.events import Dose, Observation, PatientRecord
from mipd_engine.model import parse_model
from mipd_engine.objective import Objective
from mipd_engine.posterior import credible_band, sample_posterior
from mipd_engine.simulation import simulate

MODEL = {
    "format": "mipd-model/1",
    "id": "iov-test",
    "structure": {"preset": "1cmt"},
    "thetas": {"TVCL": 4.0, "TVV": 40.0},
    "parameters": {"CL": "TVCL * exp(ETA_CL + KAPPA_CL)", "V": "TVV * exp(ETA_V)"},
    "omega": {"etas": ["ETA_CL", "ETA_V"], "type": "variance", "matrix": [[0.2, 0.0], [0.0, 0.1]]},
    "iov": {"kappas": ["KAPPA_CL"], "type": "variance", "matrix": [[0.04]]},
    "outputs": {
        "conc": {
            "compartment": "central",
            "volume": "V",
            "unit": "mg/L",
            "error": {"model": "proportional", "proportional": 0.1},
        }
    },
}
DOSES = tuple(Dose(24.0 * day, 1000.0, route="iv_infusion", duration_h=1.0) for day in range(3))


def test_each_dose_opens_an_occasion_with_its_own_clearance():
    model = parse_model(MODEL)
    record = PatientRecord(doses=DOSES)
    kappa = np.array([[[0.0], [0.3], [0.0]]])  # occasion 2 has a higher clearance
    base = simulate(model, record, [47.0], eta=np.zeros(2)).outputs["conc"][0, 0]
    shifted = simulate(model, record, [47.0], eta=np.zeros(2), kappa=kappa).outputs["conc"][0, 0]
    assert shifted < base
    # Occasion 1 is untouched by the kappa of occasion 2.
    first = simulate(model, record, [23.0], eta=np.zeros(2), kappa=kappa).outputs["conc"][0, 0]
    assert first == pytest.approx(
        simulate(model, record, [23.0], eta=np.zeros(2)).outputs["conc"][0, 0], rel=1e-12
    )


def test_it_estimates_kappas_for_observed_occasions_only():
    model = parse_model(MODEL)
    record = PatientRecord(
        doses=DOSES,
        observations=(
            Observation(2.0, 20.0),
            Observation(12.0, 6.0),
            Observation(26.0, 18.0),
            Observation(36.0, 4.0),
        ),
    )
    objective = Objective(model, record)
    assert objective.n_occasions_estimated == 2  # the third dose (48 h) comes after the last level
    fit = fit_map(model, record)
    assert fit.success
    assert fit.kappa.shape == (2, 1)
    # Occasion 2's levels fall faster: its kappa is the larger one.
    assert fit.kappa[1, 0] > fit.kappa[0, 0]


def test_forecasts_of_a_future_occasion_include_day_to_day_variability():
    model = parse_model(MODEL)
    record = PatientRecord(
        doses=DOSES,
        observations=(
            Observation(2.0, 20.0),
            Observation(12.0, 6.0),
            Observation(26.0, 18.0),
            Observation(36.0, 4.0),
        ),
    )
    objective = Objective(model, record)
    fit = fit_map(model, record)
    sample = sample_posterior(objective, fit, n_samples=4000, rng=np.random.default_rng(7))
    band = credible_band(objective, sample, [60.0], quantiles=(0.05, 0.95), rng=np.random.default_rng(8))
    width = band.quantiles[0.95]["conc"][0] - band.quantiles[0.05]["conc"][0]
    # The same draws with the future occasion's kappa at 0 (reusing nothing, adding no IOV) are narrower.
    eta, kappa = objective.split(sample.theta)
    no_iov = objective.simulator.predict([60.0], eta, kappa).outputs["conc"][:, 0]
    width_without = np.quantile(no_iov, 0.95) - np.quantile(no_iov, 0.05)
    assert width > 1.2 * width_without
