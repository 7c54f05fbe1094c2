"""Plausibility of a new drug level: its score against the predictive distribution of the data before it.

References are independent of ``mipd_engine.plausibility``: scipy.stats distributions for one draw and for
mixtures, numerical integration over the random effect for the prior predictive, closed-form concentrations
(one compartment, IV bolus: C = D/V · exp(-CL/V · t)) for simulated patients. The hold rule is checked
statistically: levels drawn from the model's own predictive distribution are rarely held, and their predictive
quantiles are uniform.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from mipd_engine.estimation import fit_map
from mipd_engine.events import Dose, Observation, PatientRecord
from mipd_engine.model import ErrorModel, PopulationModel, parse_model
from mipd_engine.objective import Objective
from mipd_engine.plausibility import PredictiveDistribution, Reading, judge, score_level
from mipd_engine.posterior import predictive_draws, sample_posterior

from .conftest import PROPERTY_SETTINGS, make_model

LIBRARY = Path(__file__).resolve().parents[2] / "models_catalog" / "library" / "models"
TVCL, TVV = 4.0, 50.0  # L/h, L: k = 0.08 /h, half-life 8.7 h
ERRORS = {
    "additive": ErrorModel("additive", additive=1.5),
    "proportional": ErrorModel("proportional", proportional=0.2),
    "combined": ErrorModel("combined", additive=1.0, proportional=0.2),
    "exponential": ErrorModel("exponential", additive=0.3),
}


def one_compartment(error: dict, *, cv_cl: float = 0.4) -> PopulationModel:
    """One compartment, IV bolus, one eta on CL (log-normal, CV ``cv_cl``), V fixed."""
    return parse_model(
        make_model(
            id="plausibility-1cmt",
            covariates=None,
            thetas={"TVCL": TVCL, "TVV": TVV},
            parameters={"CL": "TVCL * exp(ETA_CL)", "V": "TVV"},
            omega={"etas": ["ETA_CL"], "type": "variance", "matrix": [[math.log1p(cv_cl**2)]]},
            outputs={"conc": {"compartment": "central", "volume": "V", "unit": "mg/L", "error": error}},
        )
    )


def concentration(dose_mg: float, time_h: float, eta_cl: np.ndarray | float) -> np.ndarray:
    """Closed form of the model above (written independently of the engine)."""
    return dose_mg / TVV * np.exp(-TVCL * np.exp(eta_cl) / TVV * time_h)


def residual_sd(error: ErrorModel, f: np.ndarray | float) -> np.ndarray:
    """SD on the concentration scale (additive, proportional, combined) or on the log scale (exponential)."""
    f = np.asarray(f, dtype=float)
    if error.model in ("additive", "exponential"):
        return np.full_like(f, error.additive)
    if error.model == "proportional":
        return error.proportional * f
    return np.sqrt(error.additive**2 + (error.proportional * f) ** 2)


def measured(error: ErrorModel, f: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Levels with residual error around true concentrations ``f``."""
    noise = rng.standard_normal(f.shape)
    if error.model == "exponential":
        return f * np.exp(error.additive * noise)
    return f + residual_sd(error, f) * noise


def unit_slips(value: float, molar_factor: float = 1.4493) -> list[Reading]:
    """The readings a laboratory slip could explain: ×1000 (ng/mL), ÷1000, and molar units."""
    return [
        Reading("1000 times the number", value * 1000.0),
        Reading("a thousandth of the number", value / 1000.0),
        Reading("the molar unit", value * molar_factor),
    ]


# -- PredictiveDistribution ------------------------------------------------------------------------------


def scipy_component(error: ErrorModel, f: float):
    if error.model == "exponential":
        return stats.lognorm(s=error.additive, scale=f)
    return stats.norm(loc=f, scale=float(residual_sd(error, f)))


@pytest.mark.parametrize("name", ERRORS)
def test_with_one_draw_it_is_the_residual_error_distribution(name: str) -> None:
    error = ERRORS[name]
    predictive = PredictiveDistribution(np.array([10.0]), error)
    reference = scipy_component(error, 10.0)
    x = np.array([2.0, 5.0, 8.5, 10.0, 12.0, 18.0, 30.0])

    np.testing.assert_allclose(predictive.cdf(x), reference.cdf(x), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(predictive.logpdf(x), reference.logpdf(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ERRORS)
def test_a_mixture_is_the_mean_of_its_components(name: str) -> None:
    error = ERRORS[name]
    f = np.array([4.0, 9.0, 12.5, 30.0])
    predictive = PredictiveDistribution(f, error)
    x = np.array([1.0, 3.0, 6.0, 10.0, 14.0, 25.0, 40.0])

    components = [scipy_component(error, value) for value in f]
    expected_cdf = np.mean([c.cdf(x) for c in components], axis=0)
    expected_logpdf = np.log(np.mean([c.pdf(x) for c in components], axis=0))

    np.testing.assert_allclose(predictive.cdf(x), expected_cdf, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(predictive.logpdf(x), expected_logpdf, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", ERRORS)
def test_the_quantile_inverts_the_cdf(name: str) -> None:
    error = ERRORS[name]
    rng = np.random.default_rng(20240611)
    predictive = PredictiveDistribution(20.0 * np.exp(0.3 * rng.standard_normal(500)), error)
    # Points across the body and the tails (each well away from 0, where a relative error means nothing).
    x = np.array([5.0, 10.0, 15.0, 20.0, 25.0, 35.0, 45.0])
    q = predictive.cdf(x)
    assert np.all((q > 1e-6) & (q < 1 - 1e-6))

    inverted = np.array([predictive.quantile(float(p)) for p in q])

    np.testing.assert_allclose(inverted, x, rtol=1e-9)
    low, high = predictive.interval(0.9)
    np.testing.assert_allclose(predictive.cdf([low, high]), [0.05, 0.95], rtol=1e-9)


# -- score_level on a prior basis, against numerical integration ---------------------------------------------


def brute_force_cdf(y: float, *, dose_mg: float, time_h: float, error: ErrorModel, omega: float):
    """(P(level <= y), E[Φ²]) by integrating Φ((y - f(η)) / sd(f(η))) φ(η/ω)/ω over η."""

    def phi_of_eta(eta: float) -> float:
        f = float(concentration(dose_mg, time_h, eta))
        if error.model == "exponential":
            return float(stats.norm.cdf((math.log(y) - math.log(f)) / error.additive))
        return float(stats.norm.cdf((y - f) / float(residual_sd(error, f))))

    def weight(eta: float) -> float:
        return float(stats.norm.pdf(eta / omega)) / omega

    span = (-10 * omega, 10 * omega)
    first, _ = integrate.quad(lambda e: phi_of_eta(e) * weight(e), *span, epsabs=1e-12, epsrel=1e-10)
    second, _ = integrate.quad(lambda e: phi_of_eta(e) ** 2 * weight(e), *span, epsabs=1e-12, epsrel=1e-10)
    return first, second


@pytest.mark.parametrize(
    "error_doc",
    [{"model": "combined", "additive": 1.0, "proportional": 0.2}, {"model": "exponential", "additive": 0.25}],
    ids=["combined", "exponential"],
)
def test_a_prior_score_matches_the_predictive_cdf_by_numerical_integration(error_doc: dict) -> None:
    """The score's quantile is the mean of Φ over 2000 prior draws of η: a Monte Carlo estimate of the CDF.

    Its standard error is sd_η(Φ) / sqrt(2000), with sd_η(Φ)² = E[Φ²] − E[Φ]² computed by the same
    integration; every comparison allows 4 standard errors (a chance failure ~1e-4 per comparison; the seed
    is fixed, so the run is reproducible and the tolerance says the agreement is not luck).
    """
    model = one_compartment(error_doc, cv_cl=0.4)
    error = model.outputs["conc"].error
    omega = math.sqrt(model.omega[0, 0])
    dose_mg, time_h, n_draws = 1000.0, 6.0, 2000
    record = PatientRecord(doses=(Dose(0.0, dose_mg, route="iv_bolus"),))

    def allowed(y: float) -> tuple[float, float]:
        cdf, second = brute_force_cdf(y, dose_mg=dose_mg, time_h=time_h, error=error, omega=omega)
        return cdf, 4.0 * math.sqrt(max(second - cdf**2, 0.0) / n_draws)

    for y in (4.0, 8.0, 12.0, 16.0, 22.0):
        score = score_level(
            model, record, Observation(time_h, y), rng=np.random.default_rng(11), n_samples=n_draws
        )
        assert score.success and score.basis == "prior" and score.n_draws == n_draws
        expected, tolerance = allowed(y)
        assert abs(score.quantile - expected) <= tolerance, (y, score.quantile, expected, tolerance)

    # Its median and 90 % interval (same draws: same seed) sit at the right probabilities of the exact CDF.
    assert score.median is not None and score.interval_90 is not None
    for value, probability in ((score.median, 0.5), *zip(score.interval_90, (0.05, 0.95), strict=True)):
        expected, tolerance = allowed(value)
        assert abs(expected - probability) <= tolerance, (value, expected, probability)


# -- the false-hold rate ----------------------------------------------------------------------------------


# No shrinking: each example costs ~0.4 s, and the failing example is reported as drawn.
@settings(PROPERTY_SETTINGS, max_examples=12, phases=(Phase.explicit, Phase.generate))
@given(
    error_model=st.sampled_from(["additive", "proportional", "combined", "exponential"]),
    additive_mg_per_l=st.floats(0.2, 2.0),
    proportional=st.floats(0.08, 0.35),
    log_sd=st.floats(0.08, 0.4),
    cv_cl=st.floats(0.2, 0.6),
    dose_mg=st.floats(250.0, 2000.0),
    time_h=st.floats(0.5, 24.0),
    molar_factor=st.floats(0.2, 2.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_levels_from_the_models_own_predictive_distribution_are_rarely_held(
    error_model: str,
    additive_mg_per_l: float,
    proportional: float,
    log_sd: float,
    cv_cl: float,
    dose_mg: float,
    time_h: float,
    molar_factor: float,
    seed: int,
) -> None:
    """Fewer than 0.5 % of 4000 levels drawn from the model itself are held (nominally ~0.1 %).

    The prior predictive is built once as ``score_level`` builds it (prior draws of η, the engine's
    predictions, the output's error model); the levels come from fresh prior draws of η, the closed-form
    concentration and the residual error. Non-positive levels are dropped (a laboratory reports them as
    below the LLOQ, a different path).
    """
    error_doc = {
        "additive": {"model": "additive", "additive": additive_mg_per_l},
        "proportional": {"model": "proportional", "proportional": proportional},
        "combined": {"model": "combined", "additive": additive_mg_per_l, "proportional": proportional},
        "exponential": {"model": "exponential", "additive": log_sd},
    }[error_model]
    model = one_compartment(error_doc, cv_cl=cv_cl)
    error = model.outputs["conc"].error
    record = PatientRecord(doses=(Dose(0.0, dose_mg, route="iv_bolus"),))
    rng = np.random.default_rng(seed)
    objective = Objective(model, record)
    fit = fit_map(model, record, objective=objective)
    sample = sample_posterior(objective, fit, n_samples=2000, rng=rng)
    draws = predictive_draws(objective, sample.theta, np.array([time_h]), rng=rng, outputs=["conc"])
    predictive = PredictiveDistribution(draws["conc"][:, 0], error)

    eta = math.sqrt(model.omega[0, 0]) * rng.standard_normal(4000)
    levels = measured(error, concentration(dose_mg, time_h, eta), rng)
    levels = levels[levels > 0]
    assert levels.size >= 2000

    held = []
    for value in levels:
        verdict = judge(
            predictive, value=float(value), lloq=None, unit="mg/L", readings=unit_slips(value, molar_factor)
        )
        if verdict[0]:
            held.append((float(value), verdict[1]))

    assert len(held) < 0.005 * levels.size, (len(held), levels.size, held[:5])


# -- score_level on a posterior basis ------------------------------------------------------------------------


def test_posterior_predictive_quantiles_of_a_second_level_are_uniform() -> None:
    """150 simulated patients, one earlier level each: the PIT of the second level is U(0, 1).

    Each patient's η is drawn from the prior; both levels come from that η with independent residual error.
    The importance-sampling posterior is exact, so the predictive quantile of the second level given the
    first is uniform; at most 1 % of such levels may be held (nominally ~0.1 %).
    """
    error_doc = {"model": "combined", "additive": 0.5, "proportional": 0.15}
    model = one_compartment(error_doc, cv_cl=0.4)
    error = model.outputs["conc"].error
    omega = math.sqrt(model.omega[0, 0])
    dose_mg, first_h, second_h = 1000.0, 2.0, 12.0
    rng = np.random.default_rng(7)
    quantiles, held = [], []
    for patient in range(150):
        eta = omega * rng.standard_normal()
        first, second = measured(error, concentration(dose_mg, np.array([first_h, second_h]), eta), rng)
        assert first > 0 and second > 0
        record = PatientRecord(
            doses=(Dose(0.0, dose_mg, route="iv_bolus"),), observations=(Observation(first_h, float(first)),)
        )
        score = score_level(
            model,
            record,
            Observation(second_h, float(second)),
            rng=np.random.default_rng(1000 + patient),
            unit="mg/L",
            readings=unit_slips(float(second)),
            n_samples=1000,
        )
        assert score.success and score.basis == "posterior"
        quantiles.append(score.quantile)
        if score.held:
            held.append((patient, float(second), score.reason))

    assert stats.kstest(quantiles, "uniform").pvalue > 0.001
    assert len(held) <= 0.01 * 150, held


# -- unit slips on vancomycin (Goti 2018) -------------------------------------------------------------------

GOTI_COVARIATES = {"WT": 80.0, "CRCL": 80.0, "DIAL": 0.0}
GOTI_DOSES = (Dose(0.0, 1000.0, route="iv_infusion", duration_h=1.0, interval_h=12.0, additional=5),)
TROUGH_H = 35.5  # before the fourth dose (36 h)
THIRTEEN_MIN_LATER_H = TROUGH_H + 13.0 / 60.0


@pytest.fixture(scope="module")
def goti() -> PopulationModel:
    document = json.loads((LIBRARY / "vancomycin-goti-2018.json").read_text(encoding="utf-8"))
    return parse_model(document["model"])


def goti_score(model: PopulationModel, earlier: tuple[Observation, ...], level: Observation):
    record = PatientRecord(covariates=GOTI_COVARIATES, doses=GOTI_DOSES, observations=earlier)
    readings = unit_slips(level.value) if level.value else ()
    return score_level(model, record, level, rng=np.random.default_rng(5), unit="mg/L", readings=readings)


def test_a_first_level_entered_in_ng_per_ml_is_held_as_a_unit_slip(goti: PopulationModel) -> None:
    score = goti_score(goti, (), Observation(TROUGH_H, 0.018))

    assert score.success and score.basis == "prior"
    assert score.held
    assert score.unit_slip is not None
    assert score.unit_slip.value == pytest.approx(18.0, rel=1e-12)
    assert score.bayes_factor is not None and score.bayes_factor >= 100
    assert "0.018 mg/L" in score.reason


def test_a_level_in_ng_per_ml_13_minutes_after_one_in_mg_per_l_is_held(goti: PopulationModel) -> None:
    accepted = (Observation(TROUGH_H, 18.0),)

    slip = goti_score(goti, accepted, Observation(THIRTEEN_MIN_LATER_H, 0.018))
    same = goti_score(goti, accepted, Observation(THIRTEEN_MIN_LATER_H, 18.0))

    assert slip.success and slip.basis == "posterior"
    assert slip.held
    assert slip.unit_slip is not None and slip.unit_slip.value == pytest.approx(18.0, rel=1e-12)
    assert slip.bayes_factor is not None and slip.bayes_factor > 100
    assert same.success and not same.held
    assert same.unit_slip is None and same.reason == ""


def test_a_level_far_above_the_999_interval_is_held(goti: PopulationModel) -> None:
    accepted = (Observation(TROUGH_H, 18.0),)

    score = goti_score(goti, accepted, Observation(THIRTEEN_MIN_LATER_H, 150.0))

    assert score.interval_999 is not None and score.interval_999[1] < 150.0 / 2
    assert score.held
    assert score.quantile is not None and score.quantile > 0.9995
    assert "far above" in score.reason and "99.9 % interval" in score.reason


@pytest.mark.parametrize("basis", ["prior", "posterior"])
@pytest.mark.parametrize("value", [60.0, 100.0, 200.0, 400.0])
def test_a_thousandth_of_a_high_value_is_never_the_favoured_slip(
    goti: PopulationModel, basis: str, value: float
) -> None:
    """A high level read as 1000 times smaller lands near 0 mg/L: never the explanation offered."""
    earlier = (Observation(TROUGH_H, 18.0),) if basis == "posterior" else ()

    score = goti_score(goti, earlier, Observation(THIRTEEN_MIN_LATER_H, value))

    assert score.success and score.held
    assert score.unit_slip is None or score.unit_slip.value != pytest.approx(value / 1000.0), score.reason


def test_below_the_lloq_where_the_model_expects_15_to_30_mg_per_l_is_held(goti: PopulationModel) -> None:
    accepted = (Observation(TROUGH_H, 18.0),)

    score = goti_score(goti, accepted, Observation(38.0, None, lloq=2.0))

    assert score.median is not None and 15.0 <= score.median <= 30.0
    assert score.held
    assert score.quantile is not None and score.quantile < 0.0005
    assert "below the LLOQ (2 mg/L)" in score.reason


def test_below_the_lloq_at_a_late_trough_near_the_lloq_is_not_held(goti: PopulationModel) -> None:
    accepted = (Observation(TROUGH_H, 18.0),)

    score = goti_score(goti, accepted, Observation(170.0, None, lloq=2.0))  # 98 h after the last dose

    assert score.median is not None and 1.0 <= score.median <= 4.0
    assert not score.held and score.reason == ""
    assert score.quantile is not None and 0.2 < score.quantile < 0.8
