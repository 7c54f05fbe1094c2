"""The posterior: exact textbook case, sampling against numerical integration, calibration, edge cases."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats

from mipd_engine.errors import InvalidInputError
from mipd_engine.estimation import fit_map
from mipd_engine.events import Dose, Observation, PatientRecord
from mipd_engine.model import parse_model
from mipd_engine.objective import Objective
from mipd_engine.posterior import credible_band, quantiles_over_draws, sample_posterior


def _model(parameters, etas, omega, error, structure=None, thetas=None):
    return parse_model(
        {
            "format": "mipd-model/1",
            "id": "posterior-test",
            "structure": structure or {"preset": "1cmt"},
            "thetas": thetas or {},
            "parameters": parameters,
            "omega": {"etas": etas, "type": "variance", "matrix": omega},
            "outputs": {"conc": {"compartment": "central", "volume": "V", "unit": "mg/L", "error": error}},
        }
    )


def test_continuous_infusion_posterior_is_the_precision_weighted_average():
    """Prior 1/CL ~ N(0.400 h/L, sd 0.01); a steady-state level implying 0.417 h/L, 2.4x as precise.

    Css = R * (1/CL) is linear in 1/CL, so with a Gaussian prior and additive Gaussian error the posterior is
    Gaussian with mean (0.400 * 1 + 0.417 * 2.4) / 3.4 = 0.412 h/L and precision 3.4x the prior's.
    """
    rate_mg_per_h = 100.0
    prior_sd = 0.01
    precision_ratio = 2.4
    # Data precision on the 1/CL scale is R^2 / sigma^2 = 2.4 / prior_sd^2.
    sigma = rate_mg_per_h * prior_sd / math.sqrt(precision_ratio)
    model = _model(
        {"CLINV": "TVCLINV + ETA_CLINV", "CL": "1 / CLINV", "V": "10"},
        ["ETA_CLINV"],
        [[prior_sd**2]],
        {"model": "additive", "additive": sigma},
        thetas={"TVCLINV": 0.400},
    )
    level = rate_mg_per_h * 0.417  # the value implied by the level alone
    # A 2,000-h infusion sampled at 1,000 h: k = CL/V ~ 0.25/h, so the level is at steady state to e^-250.
    record = PatientRecord(
        doses=(Dose(0.0, rate_mg_per_h * 2000, route="iv_infusion", duration_h=2000.0),),
        observations=(Observation(1000.0, level),),
    )
    fit = fit_map(model, record)
    assert fit.success
    expected_mean = (0.400 * 1 + 0.417 * precision_ratio) / (1 + precision_ratio)
    assert expected_mean == pytest.approx(0.412, abs=5e-4)
    assert 0.400 + fit.eta[0] == pytest.approx(expected_mean, rel=1e-6)
    # Laplace covariance = exact posterior variance: prior variance / (1 + 2.4).
    assert fit.eta_covariance[0, 0] == pytest.approx(prior_sd**2 / (1 + precision_ratio), rel=1e-4)
    # Sampling reproduces the Gaussian posterior (tolerance: 4 Monte Carlo standard errors).
    sample = sample_posterior(Objective(model, record), fit, n_samples=4000, rng=np.random.default_rng(3))
    posterior_sd = prior_sd / math.sqrt(1 + precision_ratio)
    draws = 0.400 + sample.theta[:, 0]
    assert abs(draws.mean() - expected_mean) < 4 * posterior_sd / math.sqrt(4000) * 2
    assert draws.std() == pytest.approx(posterior_sd, rel=0.06)


def _grid_posterior_1d(objective, fit, n=40001, width=8.0):
    # Span 8 prior standard deviations: the posterior's tails can reach far beyond the Laplace width.
    sd = math.sqrt(objective.model.omega[0, 0])
    grid = np.linspace(-width * sd, width * sd, n)
    ofv = objective(grid[:, None])
    density = np.exp(-(ofv - ofv.min()) / 2)
    return grid, density / density.sum()


def _weighted_quantile(values, weights, q):
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(np.interp(q, cumulative, values[order]))


def test_sampled_posterior_quantiles_agree_with_numerical_integration_in_one_dimension():
    """A skewed posterior (one level, large omega) sampled by importance resampling vs a fine grid: 2 %."""
    model = _model(
        {"CL": "3 * exp(ETA_CL)", "V": "30"},
        ["ETA_CL"],
        [[0.5]],
        {"model": "proportional", "proportional": 0.3},
    )
    record = PatientRecord(
        doses=(Dose(0.0, 500.0, route="iv_bolus"),), observations=(Observation(12.0, 3.2),)
    )
    objective = Objective(model, record)
    fit = fit_map(model, record)
    grid, weights = _grid_posterior_1d(objective, fit)
    # 100,000 draws: the 95 % quantile of this heavy-tailed posterior has ~1 % Monte Carlo error.
    sample = sample_posterior(objective, fit, n_samples=100_000, rng=np.random.default_rng(11))
    cl_grid = 3 * np.exp(grid)
    cl_draws = 3 * np.exp(sample.theta[:, 0])
    conc_grid = objective.simulator.predict([24.0], grid[:, None]).outputs["conc"][:, 0]
    conc_draws = objective.simulator.predict([24.0], sample.theta).outputs["conc"][:, 0]
    for q in (0.05, 0.25, 0.5, 0.75, 0.95):
        assert np.quantile(cl_draws, q) == pytest.approx(_weighted_quantile(cl_grid, weights, q), rel=0.02)
        assert np.quantile(conc_draws, q) == pytest.approx(
            _weighted_quantile(conc_grid, weights, q), rel=0.02
        )
    assert sample.effective_sample_size > 0.3 * sample.n_proposals


def test_sampled_posterior_quantiles_agree_with_numerical_integration_in_two_dimensions():
    model = _model(
        {"CL": "4 * exp(ETA_CL)", "V": "40 * exp(ETA_V)"},
        ["ETA_CL", "ETA_V"],
        [[0.3, 0.05], [0.05, 0.2]],
        {"model": "combined", "additive": 0.5, "proportional": 0.15},
    )
    record = PatientRecord(
        doses=(Dose(0.0, 1000.0, route="iv_infusion", duration_h=1.0),),
        observations=(Observation(2.0, 21.0), Observation(10.0, 8.5)),
    )
    objective = Objective(model, record)
    fit = fit_map(model, record)
    sd = np.sqrt(np.diag(model.omega))
    axes = [np.linspace(-7 * sd[i], 7 * sd[i], 601) for i in range(2)]
    mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 2)
    ofv = objective(mesh)
    weights = np.exp(-(ofv - ofv.min()) / 2)
    weights /= weights.sum()
    sample = sample_posterior(objective, fit, n_samples=50_000, rng=np.random.default_rng(5))
    conc_grid = objective.simulator.predict([18.0], mesh).outputs["conc"][:, 0]
    conc_draws = objective.simulator.predict([18.0], sample.theta).outputs["conc"][:, 0]
    for q in (0.05, 0.5, 0.95):
        assert np.quantile(conc_draws, q) == pytest.approx(
            _weighted_quantile(conc_grid, weights, q), rel=0.02
        )
        for i, scale in ((0, 4.0), (1, 40.0)):
            grid_q = _weighted_quantile(scale * np.exp(mesh[:, i]), weights, q)
            assert np.quantile(scale * np.exp(sample.theta[:, i]), q) == pytest.approx(grid_q, rel=0.02)


def test_credible_intervals_of_a_future_concentration_are_calibrated():
    """Simulate 300 patients from the model, fit two levels each, and check that the 90 % credible interval of
    the true concentration at 36 h covers it about 90 % of the time.

    Tolerance: with 300 patients the binomial standard error of the coverage is 1.7 points; we accept
    0.85-0.95 (about three standard errors).
    """
    model = _model(
        {"CL": "4 * exp(ETA_CL)", "V": "40 * exp(ETA_V)"},
        ["ETA_CL", "ETA_V"],
        [[0.2, 0.0], [0.0, 0.1]],
        {"model": "combined", "additive": 0.2, "proportional": 0.1},
    )
    rng = np.random.default_rng(2026)
    doses = (Dose(0.0, 1000.0, route="iv_infusion", duration_h=1.0, interval_h=12.0, additional=3),)
    covered = 0
    n_patients = 300
    for _ in range(n_patients):
        eta = rng.multivariate_normal(np.zeros(2), model.omega)
        truth = PatientRecord(doses=doses)
        from mipd_engine.simulation import simulate

        true_conc = simulate(model, truth, [2.0, 11.5, 36.0], eta=eta).outputs["conc"][0]
        sd = np.sqrt(model.outputs["conc"].error.variance(true_conc[:2]))
        levels = np.maximum(true_conc[:2] + rng.normal(size=2) * sd, 0.05)
        record = PatientRecord(
            doses=doses,
            observations=(Observation(2.0, float(levels[0])), Observation(11.5, float(levels[1]))),
        )
        objective = Objective(model, record)
        fit = fit_map(model, record)
        assert fit.success
        sample = sample_posterior(objective, fit, n_samples=1000, rng=rng)
        band = credible_band(objective, sample, [36.0], quantiles=(0.05, 0.95))
        low, high = band.quantiles[0.05]["conc"][0], band.quantiles[0.95]["conc"][0]
        covered += low <= true_conc[2] <= high
    coverage = covered / n_patients
    print(f"90% credible interval coverage: {coverage:.3f}")
    assert 0.85 <= coverage <= 0.95


def test_prediction_interval_is_wider_than_the_credible_band():
    model = _model(
        {"CL": "4 * exp(ETA_CL)", "V": "40"},
        ["ETA_CL"],
        [[0.2]],
        {"model": "proportional", "proportional": 0.2},
    )
    record = PatientRecord(
        doses=(Dose(0.0, 1000.0, route="iv_bolus"),), observations=(Observation(6.0, 12.0),)
    )
    objective = Objective(model, record)
    fit = fit_map(model, record)
    sample = sample_posterior(objective, fit, n_samples=3000, rng=np.random.default_rng(1))
    credible = credible_band(objective, sample, [12.0], quantiles=(0.05, 0.95))
    prediction = credible_band(
        objective,
        sample,
        [12.0],
        quantiles=(0.05, 0.95),
        rng=np.random.default_rng(2),
        prediction_interval=True,
    )
    assert credible.kind == "credible" and prediction.kind == "prediction"
    width = lambda band: band.quantiles[0.95]["conc"][0] - band.quantiles[0.05]["conc"][0]  # noqa: E731
    # Residual error widens the interval; it does not move its centre much (the error is symmetric).
    assert width(prediction) > width(credible)
    assert prediction.quantiles[0.05]["conc"][0] < credible.quantiles[0.05]["conc"][0]
    assert prediction.quantiles[0.95]["conc"][0] > credible.quantiles[0.95]["conc"][0]


def test_without_levels_the_posterior_is_the_prior_and_says_so():
    model = _model(
        {"CL": "4 * exp(ETA_CL)", "V": "40"},
        ["ETA_CL"],
        [[0.2]],
        {"model": "proportional", "proportional": 0.2},
    )
    record = PatientRecord(doses=(Dose(0.0, 1000.0, route="iv_bolus"),))
    fit = fit_map(model, record)
    assert fit.success and fit.prior_only
    assert "prior" in fit.message
    np.testing.assert_allclose(fit.eta, [0.0])
    np.testing.assert_allclose(fit.eta_covariance, [[0.2]], rtol=1e-12)
    sample = sample_posterior(Objective(model, record), fit, n_samples=20000, rng=np.random.default_rng(4))
    # Prior draws: the sample variance of 20,000 normal draws is within 4 % of 0.2 (about 4 standard errors).
    assert np.var(sample.theta[:, 0]) == pytest.approx(0.2, rel=0.04)
    assert stats.kstest(sample.theta[:, 0] / math.sqrt(0.2), "norm").pvalue > 0.001


def test_it_rejects_a_level_before_the_first_dose():
    model = _model(
        {"CL": "4 * exp(ETA_CL)", "V": "40"},
        ["ETA_CL"],
        [[0.2]],
        {"model": "proportional", "proportional": 0.2},
    )
    record = PatientRecord(
        doses=(Dose(5.0, 1000.0, route="iv_bolus"),), observations=(Observation(2.0, 10.0),)
    )
    with pytest.raises(
        InvalidInputError, match=r"observations\[0\].time_h: level at 2 h precedes the first dose"
    ):
        fit_map(model, record)


def test_it_rejects_a_negative_concentration():
    with pytest.raises(InvalidInputError, match="cannot be negative"):
        Observation(2.0, -1.0)


def test_it_warns_about_a_level_where_the_model_predicts_no_drug():
    model = parse_model(
        {
            "format": "mipd-model/1",
            "id": "lag",
            "structure": {"preset": "1cmt", "absorption": "first-order"},
            "parameters": {"CL": "4 * exp(ETA_CL)", "V": "40", "KA": "1", "ALAG": "2"},
            "inputs": {"depot": {"lag_h": "ALAG"}},
            "omega": {"etas": ["ETA_CL"], "matrix": [[0.2]]},
            "outputs": {
                "conc": {
                    "compartment": "central",
                    "volume": "V",
                    "error": {"model": "proportional", "proportional": 0.2},
                }
            },
        }
    )
    record = PatientRecord(
        doses=(Dose(0.0, 1000.0, route="oral"),), observations=(Observation(1.0, 3.0), Observation(6.0, 12.0))
    )
    fit = fit_map(model, record)
    assert any("predicts no drug" in w and "1 h" in w for w in fit.warnings)


def test_prior_weight_below_one_lets_the_level_pull_harder():
    model = _model(
        {"CL": "4 * exp(ETA_CL)", "V": "40"},
        ["ETA_CL"],
        [[0.1]],
        {"model": "proportional", "proportional": 0.2},
    )
    record = PatientRecord(
        doses=(Dose(0.0, 1000.0, route="iv_bolus"),), observations=(Observation(12.0, 2.0),)
    )
    full = fit_map(model, record)
    flattened = fit_map(model, record, prior_weight=0.2)
    assert flattened.success and full.success
    assert abs(flattened.eta[0]) > abs(full.eta[0])
    with pytest.raises(InvalidInputError, match="prior_weight"):
        fit_map(model, record, prior_weight=0.0)


def test_a_persistently_low_effective_sample_size_warns_instead_of_failing():
    """Regression: after the last widening the resampling used a stale proposal count and crashed.

    A covariance 10^4 times too wide makes every proposal poor: the sample must still come back, with a
    warning, and with draws taken from the proposals actually made.
    """
    model = _model(
        {"CL": "3 * exp(ETA_CL)", "V": "30"},
        ["ETA_CL"],
        [[0.1]],
        {"model": "proportional", "proportional": 0.02},
    )
    record = PatientRecord(
        doses=(Dose(0.0, 500.0, route="iv_bolus"),),
        observations=(Observation(6.0, 9.0), Observation(12.0, 5.0), Observation(24.0, 1.6)),
    )
    objective = Objective(model, record)
    fit = fit_map(model, record)
    wide = dataclasses.replace(fit, covariance=fit.covariance * 1e4)
    sample = sample_posterior(objective, wide, n_samples=2000, rng=np.random.default_rng(5))
    assert sample.theta.shape == (2000, 1)
    assert sample.effective_sample_size < 2000 / 4
    assert any("effective sample size" in warning for warning in sample.warnings)


def test_quantiles_over_sorted_draws_equal_numpys_quantiles_bit_for_bit():
    """Resampled draws repeat (ties), a column may be constant or hold a NaN, and draws may be 3-D."""
    rng = np.random.default_rng(11)
    draws = np.exp(rng.standard_normal((2000, 57)))[rng.integers(0, 2000, 2000)]
    draws[:, 0] = 0.0
    draws[3, 5] = np.nan
    qs = [0.05, 0.25, 0.5, 0.75, 0.95]
    for values in (draws, draws.reshape(2000, 3, 19), draws[:, 7]):
        expected = np.quantile(values, qs, axis=0)
        got = quantiles_over_draws(values, qs)
        assert got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)  # NaN where numpy gives NaN, every other number equal
