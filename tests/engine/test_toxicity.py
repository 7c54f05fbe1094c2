"""Toxicity as a first-class target: markers, P(toxic) by grid integration, one-sided targets, ranking."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import norm

from mipd_engine.errors import InvalidInputError
from mipd_engine.events import PatientRecord
from mipd_engine.model import parse_model
from mipd_engine.objective import Objective
from mipd_engine.regimens import (
    CandidateResult,
    Regimen,
    RegimenConstraints,
    evaluate_regimens,
    ranking_key,
    search_regimens,
)
from mipd_engine.targets import Target

TVCL, V, OMEGA_CL = 4.0, 50.0, 0.3  # L/h, L, SD of ETA_CL
N_DRAWS = 20_000


def one_cmt_model() -> dict:
    """One compartment, IV bolus, one random effect (CL): every steady-state metric is a function of CL."""
    return {
        "format": "mipd-model/1",
        "id": "tox-1cmt",
        "structure": {"preset": "1cmt"},
        "thetas": {"TVCL": TVCL, "TVV": V},
        "parameters": {"CL": "TVCL * exp(ETA_CL)", "V": "TVV"},
        "omega": {"etas": ["ETA_CL"], "type": "variance", "matrix": [[OMEGA_CL**2]]},
        "outputs": {
            "conc": {
                "compartment": "central",
                "volume": "V",
                "unit": "mg/L",
                "error": {"model": "proportional", "proportional": 0.1},
            }
        },
    }


@pytest.fixture(scope="module")
def prior():
    """No level: the posterior is the prior; 20,000 draws of ETA_CL."""
    model = parse_model(one_cmt_model())
    record = PatientRecord()
    objective = Objective(model, record)
    theta = np.random.default_rng(11).normal(0.0, OMEGA_CL, size=(N_DRAWS, 1))
    return model, record, objective, theta


def _search(prior, target, constraints):
    model, record, objective, theta = prior
    return search_regimens(
        model=model,
        record=record,
        posterior_theta=theta,
        objective=objective,
        target=target,
        constraints=constraints,
        rng=np.random.default_rng(5),
        top=50,
    )


def grid_probability(indicator, n: int = 20_001) -> float:
    """P(indicator(CL)) with ETA_CL ~ N(0, ω²), by integration over a grid of eta (±8 SD)."""
    eta = np.linspace(-8 * OMEGA_CL, 8 * OMEGA_CL, n)
    density = norm.pdf(eta, scale=OMEGA_CL)
    inside = np.array([indicator(TVCL * math.exp(e)) for e in eta], dtype=float)
    return float(np.trapezoid(inside * density, eta))


def auc24_ss(dose: float, tau: float, cl: float) -> float:
    return dose * 24.0 / tau / cl


def trough_ss(dose: float, tau: float, cl: float) -> float:
    """Textbook steady-state trough of IV boluses: D/V · e^(−kτ) / (1 − e^(−kτ))."""
    k = cl / V
    return dose / V * math.exp(-k * tau) / (1.0 - math.exp(-k * tau))


BOLUS = {"route": "iv_bolus", "dose_step_mg": 250, "max_dose_mg": 3000}


def test_p_toxic_matches_grid_integration_for_two_markers(prior) -> None:
    """P(AUC24 > 600 or trough > 5 mg/L) over the draws equals its integral over the prior of CL.

    Tolerance: 4 binomial standard errors of a probability estimated from 20,000 draws (at most 0.014).
    """
    target = Target.from_mapping(
        {
            "metric": "auc24",
            "low": 400,
            "high": 600,
            "safety": [{"metric": "auc24", "above": 600}, {"metric": "trough", "above": 5}],
        }
    )
    result = _search(prior, target, RegimenConstraints(interval_options_h=(12,), **BOLUS))
    assert result.regimens
    for candidate in result.regimens:
        dose, tau = candidate.regimen.dose_mg, candidate.regimen.interval_h

        def toxic(cl: float, dose: float = dose, tau: float = tau) -> bool:
            return auc24_ss(dose, tau, cl) > 600 or trough_ss(dose, tau, cl) > 5

        exact = grid_probability(toxic)
        tolerance = 4 * math.sqrt(max(exact * (1 - exact), 1e-4) / N_DRAWS)
        assert candidate.p_toxic == pytest.approx(exact, abs=tolerance), (dose, candidate.p_toxic, exact)
        by_label = dict(candidate.p_toxic_by_limit)
        assert set(by_label) == {"AUC24 > 600 mg·h/L", "trough > 5 mg/L"}
        auc_exact = grid_probability(lambda cl, d=dose, t=tau: auc24_ss(d, t, cl) > 600)
        assert by_label["AUC24 > 600 mg·h/L"] == pytest.approx(auc_exact, abs=tolerance)
        assert candidate.p_toxic >= max(by_label.values()) - 1e-12  # the union is at least each part


def test_pta_matches_grid_integration_too(prior) -> None:
    target = Target("auc24", 400, 600)
    result = _search(prior, target, RegimenConstraints(interval_options_h=(12,), **BOLUS))
    for candidate in result.regimens[:5]:
        dose = candidate.regimen.dose_mg
        exact = grid_probability(lambda cl, d=dose: 400 <= auc24_ss(d, 12, cl) <= 600)
        assert candidate.pta == pytest.approx(exact, abs=4 * math.sqrt(0.25 / N_DRAWS))


def test_a_one_sided_target_counts_every_value_above_its_lower_bound(prior) -> None:
    """Cmax/MIC ≥ 8: a higher peak is never a failure (a two-sided 8-10 range would count it as one)."""
    one_sided = Target.from_mapping({"metric": "cmax_mic", "low": 8, "mic_mg_per_l": 2})
    assert math.isinf(one_sided.high)
    assert one_sided.describe() == "Cmax/MIC ≥ 8 (MIC 2 mg/L)"
    constraints = RegimenConstraints(interval_options_h=(24,), **BOLUS)
    result = _search(prior, one_sided, constraints)
    by_dose = {c.regimen.dose_mg: c.pta for c in result.regimens}
    doses = sorted(by_dose)
    ptas = [by_dose[d] for d in doses]
    assert all(b >= a - 1e-12 for a, b in itertools.pairwise(ptas))  # more drug, never less PTA
    # Bolus Cmax at steady state = D/V / (1 − e^(−kτ)); P(Cmax/MIC ≥ 8) by grid integration.
    dose = doses[len(doses) // 2]
    exact = grid_probability(lambda cl: dose / V / (1 - math.exp(-cl / V * 24)) / 2 >= 8)
    assert by_dose[dose] == pytest.approx(exact, abs=4 * math.sqrt(0.25 / N_DRAWS))


def test_a_regimen_above_the_toxicity_limit_ranks_after_every_safe_one() -> None:
    """The ranking, on made-up candidates: the highest PTA loses to a safe one when it is too toxic."""
    target = Target.from_mapping(
        {"metric": "auc24", "low": 400, "high": 600, "safety": [{"metric": "trough", "above": 20}]}
    )

    def candidate(dose: float, pta: float, p_toxic: float) -> CandidateResult:
        limit = target.p_toxic_limit
        return CandidateResult(
            regimen=Regimen(dose, 12.0, 0.0, route="iv_bolus"),
            median=500.0,
            ci_low=400.0,
            ci_high=600.0,
            pta=pta,
            p_toxic=p_toxic,
            rationale="",
            exceeds_toxicity=p_toxic > limit,
        )

    toxic, safe, safer = candidate(1500, 0.9, 0.4), candidate(1000, 0.6, 0.2), candidate(750, 0.5, 0.05)
    ranked = sorted([toxic, safer, safe], key=lambda c: ranking_key(c, target))
    assert ranked == [safe, safer, toxic]


def test_the_search_never_ranks_a_too_toxic_regimen_before_a_safe_one(prior) -> None:
    target = Target.from_mapping(
        {
            "metric": "auc24",
            "low": 400,
            "high": 600,
            "safety": [{"metric": "trough", "above": 8}],
            "max_p_toxic": 0.1,
        }
    )
    result = _search(prior, target, RegimenConstraints(interval_options_h=(8, 12, 24), **BOLUS))
    flags = [c.exceeds_toxicity for c in result.regimens]
    assert False in flags and True in flags  # the case has both kinds
    assert flags == sorted(flags)  # every safe candidate before every toxic one
    best = result.regimens[0]
    assert best.p_toxic <= 0.1 + 1e-12
    better_but_toxic = [c for c in result.regimens if c.pta > best.pta + 0.01]
    assert all(c.exceeds_toxicity for c in better_but_toxic)
    assert "P(toxic: trough > 8 mg/L)" in best.rationale


def test_when_every_regimen_is_too_toxic_the_search_says_so(prior) -> None:
    target = Target.from_mapping(
        {"metric": "auc24", "low": 400, "high": 600, "safety": [{"metric": "trough", "above": 0.01}]}
    )
    result = _search(prior, target, RegimenConstraints(interval_options_h=(12,), **BOLUS))
    assert not result.success
    assert result.message.startswith("every candidate exceeds the toxicity limit (P(toxic) above 25 %)")


def test_the_figures_of_a_given_regimen_equal_its_row_in_the_search(prior) -> None:
    """What-if and the candidate table: the same regimen on the same draws gives the same figures."""
    model, record, objective, theta = prior
    target = Target.from_mapping(
        {"metric": "auc24", "low": 400, "high": 600, "safety": [{"metric": "trough", "above": 5}]}
    )
    result = _search(prior, target, RegimenConstraints(interval_options_h=(12,), **BOLUS))
    row = result.regimens[3]
    (same,) = evaluate_regimens(
        model=model,
        record=record,
        posterior_theta=theta,
        objective=objective,
        target=target,
        regimens=[row.regimen],
        rng=np.random.default_rng(5),
    )
    assert same.median == pytest.approx(row.median, rel=1e-9)
    assert same.pta == pytest.approx(row.pta, abs=1e-12)
    assert same.p_toxic == pytest.approx(row.p_toxic, abs=1e-12)
    assert [e["median"] for e in same.exposure] == pytest.approx(
        [e["median"] for e in row.exposure], rel=1e-9
    )


def test_exposure_gives_the_steady_state_auc_trough_and_peak(prior) -> None:
    model, record, objective, theta = prior
    regimen = Regimen(1000.0, 12.0, 0.0, route="iv_bolus")
    (result,) = evaluate_regimens(
        model=model,
        record=record,
        posterior_theta=theta,
        objective=objective,
        target=Target("auc24", 400, 600),
        regimens=[regimen],
        rng=np.random.default_rng(1),
    )
    exposure = {e["metric"]: e for e in result.exposure}
    median_cl = TVCL  # the median of a log-normal CL
    assert exposure["auc24"]["median"] == pytest.approx(auc24_ss(1000, 12, median_cl), rel=0.02)
    # Trough and peak are monotone in CL: their medians are those of the median CL.
    assert exposure["trough"]["median"] == pytest.approx(trough_ss(1000, 12, median_cl), rel=0.02)
    peak = 1000 / V / (1 - math.exp(-median_cl / V * 12))  # a bolus: the peak right after the dose
    assert exposure["cmax"]["median"] == pytest.approx(peak, rel=0.02)
    low_cl = brentq(lambda cl: auc24_ss(1000, 12, cl) - exposure["auc24"]["ci90"][1], 0.01, 100)
    assert low_cl == pytest.approx(TVCL * math.exp(norm.ppf(0.05) * OMEGA_CL), rel=0.03)


@pytest.mark.parametrize(
    ("safety", "path"),
    [
        ([{"metric": "trough"}], "target.safety[0].above"),
        ([{"metric": "trough", "above": 1, "colour": "red"}], "target.safety[0].colour"),
        ([{"metric": "nonsense", "above": 1}], "target.safety[0].metric"),
        ("trough > 1", "target.safety"),
    ],
)
def test_a_malformed_marker_is_refused_with_its_path(safety, path) -> None:
    with pytest.raises(InvalidInputError) as refusal:
        Target.from_mapping({"metric": "auc24", "low": 400, "high": 600, "safety": safety})
    assert refusal.value.path == path


def test_the_p_toxic_limit_must_be_a_probability() -> None:
    with pytest.raises(InvalidInputError, match="max_p_toxic"):
        Target.from_mapping({"metric": "auc24", "low": 400, "max_p_toxic": 1.5})
